"""The decision for each event: register, delete or tag, or skip with a reason (one test per reason)."""

from __future__ import annotations

import pytest

from shared.decision import Delete, Register, Skip, SkipReason, decide, route
from shared.events.model import Cloud, EventKind, ObjectEvent, UnsupportedEvent
from shared.media_types import MediaType
from shared.settings import Settings
from shared.uris import parse_uri

BASE = {"AWS_REGION": "us-east-1"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env})


def event(key: str = "photos/cat.jpg", **changes: object) -> ObjectEvent:
    base = ObjectEvent(cloud=Cloud.AWS, kind=EventKind.CREATED, bucket="bkt", key=key, size=10, region="eu-west-1")
    return base._replace(**changes)  # type: ignore[arg-type]


def skipped(decision: object, reason: SkipReason) -> str:
    assert isinstance(decision, Skip), decision
    assert decision.reason is reason, decision
    assert decision.detail
    return decision.detail


def test_register_builds_the_payload() -> None:
    d = decide(event("dir/my file+1.jpg", etag="abc", version="v1", time="2024-01-01T00:00:00Z"), settings())
    assert isinstance(d, Register)
    p = d.payload
    assert p.row_data == "https://bkt.s3.eu-west-1.amazonaws.com/dir/my%20file%2B1.jpg"
    assert p.global_key == "aws:bkt/dir/my file+1.jpg"
    assert p.external_id == "aws:bkt/dir/my file+1.jpg"
    assert p.media_type is MediaType.IMAGE
    assert p.dataset_id == "default"
    assert p.metadata == {
        "cloud": "aws",
        "bucket": "bkt",
        "size": 10,
        "etag": "abc",
        "version": "v1",
        "event_time": "2024-01-01T00:00:00Z",
    }
    assert (parse_uri(p.row_data).bucket, parse_uri(p.row_data).key) == ("bkt", "dir/my file+1.jpg")


def test_overwrites_map_to_the_same_row() -> None:
    a = decide(event(version="v1", size=10), settings())
    b = decide(event(version="v2", size=99), settings())
    assert isinstance(a, Register) and isinstance(b, Register)
    assert a.payload.global_key == b.payload.global_key


def test_account_id_does_not_change_the_row() -> None:
    """EventBridge names the AWS account, S3 notifications don't: both must land on one row."""
    a = decide(event(), settings())
    b = decide(event(account="123456789012"), settings())
    assert isinstance(a, Register) and isinstance(b, Register)
    assert a.payload == b.payload


def test_region_falls_back_to_settings_and_is_required() -> None:
    d = decide(event(region=None), settings())
    assert isinstance(d, Register) and ".s3.us-east-1." in d.payload.row_data
    detail = skipped(decide(event(region=None), Settings.from_env({})), SkipReason.NO_REGION)
    assert "INGEST_AWS_REGION" in detail


def test_unsupported_test_and_ignored_events() -> None:
    assert "no idea" in skipped(decide(UnsupportedEvent("no idea"), settings()), SkipReason.UNSUPPORTED_EVENT)
    skipped(decide(event(kind=EventKind.TEST, key=None, reason="test"), settings()), SkipReason.TEST_EVENT)
    skipped(decide(event(kind=EventKind.IGNORED, reason="tier change"), settings()), SkipReason.IGNORED_EVENT)


def test_filters() -> None:
    assert "INGEST_ALLOWED_BUCKETS" in skipped(
        decide(event(), settings(INGEST_ALLOWED_BUCKETS="other")), SkipReason.BUCKET_NOT_ALLOWED
    )
    assert isinstance(decide(event(), settings(INGEST_ALLOWED_BUCKETS="other,bkt")), Register)
    skipped(decide(event("photos/"), settings()), SkipReason.FOLDER_MARKER)
    skipped(decide(event(size=0), settings()), SkipReason.ZERO_BYTE)
    assert isinstance(decide(event(size=0), settings(INGEST_SKIP_ZERO_BYTE="false")), Register)
    assert "INGEST_MAX_SIZE" in skipped(
        decide(event(size=2_000_001), settings(INGEST_MAX_SIZE="2MB")), SkipReason.TOO_LARGE
    )
    assert isinstance(decide(event(size=2_000_000), settings(INGEST_MAX_SIZE="2MB")), Register)
    skipped(decide(event("a/b.jpg"), settings(INGEST_INCLUDE="*.png")), SkipReason.EXCLUDED)
    assert "thumbs/**" in skipped(
        decide(event("thumbs/a/b.jpg"), settings(INGEST_EXCLUDE="thumbs/**")), SkipReason.EXCLUDED
    )
    assert isinstance(decide(event("x/thumbs/b.jpg"), settings(INGEST_EXCLUDE="thumbs/**")), Register)


@pytest.mark.parametrize("key", ["a#b.jpg", "a<b.jpg", "a>b.jpg", "a|b.jpg", "a\nb.jpg", "a\x7fb.jpg"])
def test_keys_labelbox_cannot_serve(key: str) -> None:
    skipped(decide(event(key), settings()), SkipReason.UNSERVABLE_KEY)
    forced = decide(event(key), settings(INGEST_UNSERVABLE_KEYS="register"))
    assert isinstance(forced, Register)
    assert parse_uri(forced.payload.row_data).key == key


def test_media_types() -> None:
    detail = skipped(decide(event("a/b.xyz"), settings()), SkipReason.UNKNOWN_MEDIA_TYPE)
    assert ".xyz" in detail and "INGEST_MEDIA_TYPES" in detail
    by_content_type = decide(event("a/noext", content_type="video/mp4"), settings())
    assert isinstance(by_content_type, Register) and by_content_type.payload.media_type is MediaType.VIDEO
    registered = decide(event("a/b.xyz"), settings(INGEST_UNKNOWN_MEDIA="register"))
    assert isinstance(registered, Register) and registered.payload.media_type is None
    added = decide(event("a/b.TIF"), settings(INGEST_MEDIA_TYPES="tif=IMAGE"))
    assert isinstance(added, Register) and added.payload.media_type is MediaType.IMAGE
    skipped(decide(event("a/b.json"), settings(INGEST_MEDIA_TYPES="json=skip")), SkipReason.UNKNOWN_MEDIA_TYPE)


def test_routes() -> None:
    s = settings(INGEST_ROUTES="bkt/raw/**=ckraw;*.mp4=ckvideo", INGEST_REGISTRY="sqlite:///tmp/x.sqlite?dataset=d0")
    assert route("bkt", "raw/a/b.jpg", s) == "ckraw"
    assert route("bkt", "clips/a.mp4", s) == "ckvideo"
    assert route("bkt", "other/a.jpg", s) == "d0"
    assert route("bkt", "raw.jpg", s) == "d0"
    no_default = Settings.from_env(
        {**BASE, "INGEST_REGISTRY": "labelbox://", "LABELBOX_API_KEY": "k", "INGEST_ROUTES": "*.mp4=ckvideo"}
    )
    skipped(decide(event("a.jpg"), no_default), SkipReason.NO_ROUTE)
    routed = decide(event("a.mp4"), no_default)
    assert isinstance(routed, Register) and routed.payload.dataset_id == "ckvideo"


def test_delete_policy() -> None:
    gone = event(kind=EventKind.DELETED, size=None)
    assert "INGEST_DELETE_POLICY" in skipped(decide(gone, settings()), SkipReason.DELETE_IGNORED)
    tag = decide(gone, settings(INGEST_DELETE_POLICY="tag"))
    delete = decide(gone, settings(INGEST_DELETE_POLICY="delete"))
    assert isinstance(tag, Delete) and tag.tag_only
    assert isinstance(delete, Delete) and not delete.tag_only
    created = decide(event(), settings())
    assert isinstance(created, Register) and created.payload.global_key == delete.global_key
    # filters still apply to deletes: an excluded object never had a row to delete
    skipped(decide(gone, settings(INGEST_DELETE_POLICY="delete", INGEST_EXCLUDE="photos/**")), SkipReason.EXCLUDED)


def test_keys_longer_than_any_storage_service_allows() -> None:
    longest = "k/" + "é" * 509 + ".jpg"  # 1,024 bytes in UTF-8
    assert len(longest.encode()) == 1024
    assert isinstance(decide(event(longest), settings()), Register)
    assert "1024 bytes" in skipped(decide(event("é" + longest), settings()), SkipReason.KEY_TOO_LONG)
    gone = event("é" + longest, kind=EventKind.DELETED)
    skipped(decide(gone, settings(INGEST_DELETE_POLICY="delete")), SkipReason.KEY_TOO_LONG)
