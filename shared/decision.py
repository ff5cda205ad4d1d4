"""The decision for one parsed event: register a row, delete (or tag) one, or skip with a reason.

Filters, allowed buckets, routing and the delete policy live here and nowhere else; the live functions and
backfill both call ``decide``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from shared.events.model import Cloud, EventKind, ObjectEvent, ParsedEvent, UnsupportedEvent
from shared.global_keys import global_key
from shared.media_types import extension_of, media_type_of
from shared.payloads import Payload, build_payload, location_of
from shared.settings import Choice, DeletePolicy, Settings
from shared.uris import UNSERVABLE_CHARACTERS


class SkipReason(StrEnum):
    """Why an event leads to no registry call; the values are metric dimensions and log fields."""

    UNSUPPORTED_EVENT = "unsupported_event"
    TEST_EVENT = "test_event"
    IGNORED_EVENT = "ignored_event"
    BUCKET_NOT_ALLOWED = "bucket_not_allowed"
    FOLDER_MARKER = "folder_marker"
    EXCLUDED = "excluded"
    ZERO_BYTE = "zero_byte"
    TOO_LARGE = "too_large"
    UNSERVABLE_KEY = "unservable_key"
    UNKNOWN_MEDIA_TYPE = "unknown_media_type"
    NO_ROUTE = "no_route"
    NO_REGION = "no_region"
    DELETE_IGNORED = "delete_ignored"
    KEY_TOO_LONG = "key_too_long"
    SUPERSEDED = "superseded"
    STILL_EXISTS = "still_exists"


class Register(NamedTuple):
    event: ObjectEvent
    payload: Payload


class Delete(NamedTuple):
    event: ObjectEvent
    global_key: str
    tag_only: bool  # the "tag" policy: mark the row deleted instead of deleting it


class Skip(NamedTuple):
    event: ParsedEvent
    reason: SkipReason
    detail: str


# Module constants for the enum members tested on every object: enum attribute look-ups are slow-ish.
_CREATED, _SKIP, _AWS = EventKind.CREATED, Choice.SKIP, Cloud.AWS
MAX_KEY_BYTES = 1024  # the longest object name S3, GCS and Azure Blob accept (UTF-8)

# Decisions are NamedTuples, like the other per-object values on the hot path: immutable and cheap to build.
Decision = Register | Delete | Skip


def decide(event: ParsedEvent, settings: Settings) -> Decision:
    if isinstance(event, UnsupportedEvent):
        return Skip(event, SkipReason.UNSUPPORTED_EVENT, f"unsupported event: {event.reason}")
    if event.kind is _CREATED and event.key is not None:
        return _created(event, event.key, settings)
    if event.kind is EventKind.DELETED and event.key is not None:
        return _deleted(event, event.key, settings)
    if event.kind is EventKind.TEST:
        return Skip(event, SkipReason.TEST_EVENT, event.reason)
    return Skip(event, SkipReason.IGNORED_EVENT, event.reason or "the event names no object")


def _created(event: ObjectEvent, key: str, settings: Settings) -> Decision:
    if skip := _filtered(event, key, settings):
        return skip
    if settings.skip_zero_byte and event.size == 0:
        return Skip(event, SkipReason.ZERO_BYTE, "the object is empty (INGEST_SKIP_ZERO_BYTE)")
    if settings.max_size is not None and event.size is not None and event.size > settings.max_size:
        return Skip(
            event, SkipReason.TOO_LARGE, f"{event.size} bytes is over INGEST_MAX_SIZE ({settings.max_size} bytes)"
        )
    if settings.unservable_keys is _SKIP and (bad := _unservable(key)):
        return Skip(
            event,
            SkipReason.UNSERVABLE_KEY,
            f"Labelbox cannot serve URLs whose key holds {bad} (INGEST_UNSERVABLE_KEYS=register to try anyway)",
        )
    media_type = media_type_of(key, event.content_type, settings.media_types)
    if media_type is None and settings.unknown_media is _SKIP:
        extension = extension_of(key)
        what = f"extension '.{extension}'" if extension else "no extension"
        return Skip(
            event,
            SkipReason.UNKNOWN_MEDIA_TYPE,
            f"no Labelbox media type for {what} and content type {event.content_type or 'unknown'} "
            "(add it with INGEST_MEDIA_TYPES, or INGEST_UNKNOWN_MEDIA=register)",
        )
    dataset = route(event.bucket, key, settings)
    if dataset is None:
        return Skip(event, SkipReason.NO_ROUTE, "no INGEST_ROUTES rule matches and the registry names no dataset")
    return Register(event, build_payload(event, location_of(event, settings.aws_region), dataset, media_type))


def _deleted(event: ObjectEvent, key: str, settings: Settings) -> Decision:
    if skip := _filtered(event, key, settings):  # an object that was never registered has no row to delete
        return skip
    if settings.delete_policy is DeletePolicy.IGNORE:
        return Skip(
            event,
            SkipReason.DELETE_IGNORED,
            "INGEST_DELETE_POLICY=ignore keeps the rows of deleted objects (and their labels)",
        )
    location = location_of(event, settings.aws_region)
    return Delete(event, global_key(location), tag_only=settings.delete_policy is DeletePolicy.TAG)


def _filtered(event: ObjectEvent, key: str, settings: Settings) -> Skip | None:
    """The filters every object event passes, created or deleted."""
    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return Skip(
            event, SkipReason.KEY_TOO_LONG, f"the key is over {MAX_KEY_BYTES} bytes, which no storage service allows"
        )
    if settings.allowed_buckets and event.bucket not in settings.allowed_buckets:
        return Skip(event, SkipReason.BUCKET_NOT_ALLOWED, f"bucket {event.bucket!r} is not in INGEST_ALLOWED_BUCKETS")
    if settings.skip_folder_markers and key.endswith("/"):
        return Skip(event, SkipReason.FOLDER_MARKER, "a folder marker ('key/') is not a file")
    if settings.include and not any(glob.matches(key) for glob in settings.include):
        return Skip(event, SkipReason.EXCLUDED, "the key matches no INGEST_INCLUDE pattern")
    if settings.exclude and (excluded := next((g.pattern for g in settings.exclude if g.matches(key)), None)):
        return Skip(event, SkipReason.EXCLUDED, f"the key matches INGEST_EXCLUDE pattern {excluded!r}")
    if event.cloud is _AWS and not (event.region or settings.aws_region):
        return Skip(event, SkipReason.NO_REGION, "the event names no region: set INGEST_AWS_REGION to the bucket's")
    return None


def route(bucket: str, key: str, settings: Settings) -> str | None:
    """The dataset an object goes to: the first matching INGEST_ROUTES rule, else the registry's dataset."""
    if not settings.routes:
        return settings.default_dataset
    path = f"{bucket}/{key}"
    return next((r.dataset for r in settings.routes if r.glob.matches(path)), settings.default_dataset)


_UNSERVABLE = re.compile(f"[{re.escape(''.join(sorted(UNSERVABLE_CHARACTERS)))}\x00-\x1f\x7f]")


def _unservable(key: str) -> str:
    """What in the key Labelbox cannot serve, named for the skip message; '' when nothing."""
    if not _UNSERVABLE.search(key):
        return ""
    found = sorted({c for c in key if c in UNSERVABLE_CHARACTERS})
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        found.append("control characters")
    return ", ".join(repr(c) if len(c) == 1 else c for c in found)
