"""End to end on the local pipeline: uploads to emulated S3, GCS and Azure Blob become rows in the catalog, through
each platform's event path and the real functions (see bucket_ingest/pipeline/local.py for the four targets)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bucket_ingest.pipeline import TARGETS
from bucket_ingest.pipeline.samples import REGISTER, SAMPLES
from shared.uris import parse_uri
from tests.support.pipeline import Emulators, emulators_fixture, running  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def test_every_sample_reaches_its_outcome_and_each_row_names_exactly_its_object(
    emulators: Emulators, tmp_path: Path
) -> None:
    with running(emulators, tmp_path) as run:
        uploads = {
            (target, sample.key): run.pipeline.upload(target, sample.key, sample.data, sample.content_type)
            for target in TARGETS
            for sample in SAMPLES
        }
        seen = run.wait_for([u.location for u in uploads.values()])
        rows = run.rows()

    for (target, key), upload in uploads.items():
        sample = next(s for s in SAMPLES if s.key == key)
        statuses = [(o.status, o.reason) for o in seen[upload.location]]
        expected = ("created", "") if sample.expect == REGISTER else ("skipped", sample.expect)
        assert statuses == [expected], f"{target} {key!r}"

    registered = {(u.target.cloud, u.target.bucket, u.key) for (t, k), u in uploads.items() if _registers(k)}
    assert len(rows) == len(registered) == len(TARGETS) * sum(s.expect == REGISTER for s in SAMPLES)
    pointed_at = set()
    for row in rows:
        location = parse_uri(row["row_data"])
        pointed_at.add((location.cloud, location.bucket, location.key))
        sample = next(s for s in SAMPLES if s.key == location.key)
        assert row["media_type"] == sample.media_type
        assert row["metadata"]["size"] == sample.size
    assert pointed_at == registered


def _registers(key: str) -> bool:
    return next(s for s in SAMPLES if s.key == key).expect == REGISTER


def test_an_overwrite_updates_the_same_row(emulators: Emulators, tmp_path: Path) -> None:
    key = "over write/v+1.txt"
    with running(emulators, tmp_path) as run:
        first = [run.pipeline.upload(t, key, b"first version", "text/plain") for t in TARGETS]
        run.wait_for([u.location for u in first], lambda o: o.status == "created")
        second = [run.pipeline.upload(t, key, b"second, longer version", "text/plain") for t in TARGETS]
        run.wait_for([u.location for u in second], lambda o: o.status == "updated")
        rows = run.rows()

    assert len(rows) == len(TARGETS)
    assert Counter(parse_uri(r["row_data"]).key for r in rows) == {key: len(TARGETS)}
    assert {r["metadata"]["size"] for r in rows} == {len(b"second, longer version")}
    assert {r["writes"] for r in rows} == {2}


@pytest.mark.parametrize(
    ("policy", "status", "left"),
    [("ignore", "skipped", "row kept"), ("tag", "tagged", "row marked deleted"), ("delete", "deleted", "no row")],
)
def test_a_delete_follows_the_delete_policy(
    emulators: Emulators, tmp_path: Path, policy: str, status: str, left: str
) -> None:
    key = "to delete/soon+gone.jpg"
    with running(emulators, tmp_path, settings={"INGEST_DELETE_POLICY": policy}) as run:
        created = [run.pipeline.upload(t, key, b"jpeg bytes", "image/jpeg") for t in TARGETS]
        run.wait_for([u.location for u in created], lambda o: o.status == "created")
        deleted = [run.pipeline.delete(t, key) for t in TARGETS]
        seen = run.wait_for([u.location for u in deleted], lambda o: o.status != "created")
        rows = run.rows()

    for location, outcomes in seen.items():
        after = [(o.status, o.reason) for o in outcomes if o.status != "created"]
        assert after == [(status, "delete_ignored" if policy == "ignore" else "")], location
    if left == "no row":
        assert rows == []
    else:
        assert len(rows) == len(TARGETS)
        assert all((r["deleted_at"] is not None) == (left == "row marked deleted") for r in rows)


def test_duplicate_deliveries_still_give_one_row_per_object(emulators: Emulators, tmp_path: Path) -> None:
    keys = ["dup/a.png", "dup/b c.png", "dup/d+e%f.png"]
    with running(emulators, tmp_path, duplicates=1.0, seed=7) as run:
        uploads = [run.pipeline.upload(t, k, b"png bytes", "image/png") for t in TARGETS for k in keys]
        seen = run.wait_for([u.location for u in uploads], count=2)
        rows = run.rows()

    for location, outcomes in seen.items():
        assert [o.status for o in outcomes[:2]] == ["created", "present"], location
    assert len(rows) == len(uploads)
    assert all(r["writes"] == 1 for r in rows)


def test_an_overwrite_keeps_its_row_when_deletes_are_acted_on(emulators: Emulators, tmp_path: Path) -> None:
    """Cloud Storage also reports an overwrite as the deletion of the old generation (fake-gcs-server does too);
    the function checks the object is really gone before it deletes a row."""
    key = "over write/keep me.jpg"
    with running(emulators, tmp_path, settings={"INGEST_DELETE_POLICY": "delete"}) as run:
        first = [run.pipeline.upload(t, key, b"first", "image/jpeg") for t in TARGETS]
        run.wait_for([u.location for u in first], lambda o: o.status == "created")
        second = [run.pipeline.upload(t, key, b"second version", "image/jpeg") for t in TARGETS]
        run.wait_for([u.location for u in second], lambda o: o.status == "updated")
        gcp = run.pipeline.location("gcp", key)
        [stale] = run.wait_for([gcp], lambda o: o.reason == "still_exists")[gcp][-1:]
        rows = run.rows()

    assert "exists again" in stale.detail
    assert len(rows) == len(TARGETS) and all(r["deleted_at"] is None for r in rows)
    assert {r["metadata"]["size"] for r in rows} == {len(b"second version")}
