"""Backfill against each cloud's emulator (moto S3, fake-gcs-server, Azurite), through `bucket-ingest backfill`.

For every cloud: a bucket of awkward names, every media type and objects the live path skips →
- the backfill registers exactly the rows the live path makes of the same uploads' events (same global keys,
  row_data, external ids, media types, datasets, and the metadata both carry), and skips the same objects for the
  same reasons;
- stopped part-way (several times, mid-page) and resumed, it loses nothing and handles no object twice;
- run again once finished, it registers nothing (no registry call); with --restart it finds every row present.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.emulators import Azurite, FakeGcs, Moto, PubSubPublisher
from shared.registries.sqlite import SqliteCatalog
from shared.settings import Settings
from tests.support.backfill import (
    ALL_OBJECTS,
    AzureContainer,
    EmulatedBucket,
    GcsBucket,
    S3Bucket,
    expected_rows,
    payload_fields,
    row_fields,
    run_backfill,
    unique_name,
)
from tests.support.handlers import clean_env

# The objects the live path skips, and why (so the comparison can never pass by both sides being empty).
SKIPPED = {
    "hash#tag.jpg": "unservable_key",
    "archive/bundle.zip": "unknown_media_type",
    "bin/program.exe": "unknown_media_type",
    "empty/zero.jpg": "zero_byte",
    "folder/": "folder_marker",
}
CLOUDS = ["aws", "gcp", "azure"]


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with Moto() as server:
        yield server


@pytest.fixture(scope="module")
def gcs() -> Iterator[FakeGcs]:
    with PubSubPublisher() as publisher, FakeGcs(publisher, events=("finalize",)) as server:
        yield server


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with Azurite() as server:
        yield server


@pytest.fixture(params=CLOUDS)
def bucket(request: pytest.FixtureRequest) -> Iterator[EmulatedBucket]:
    if request.param == "aws":
        yield S3Bucket(request.getfixturevalue("moto"), unique_name("backfill"))
    elif request.param == "gcp":
        gcs_bucket = GcsBucket(request.getfixturevalue("gcs"), unique_name("backfill"))
        yield gcs_bucket
        gcs_bucket.close()
    else:
        yield AzureContainer(request.getfixturevalue("azurite"), unique_name("backfill"))


def key_of(location: str, bucket: EmulatedBucket) -> str:
    """The object key in a log location (``aws://BUCKET/KEY``, ``azure://ACCOUNT/CONTAINER/KEY``)."""
    return location.split(f"/{bucket.name}/", 1)[1]


class Run:
    """`bucket-ingest backfill` in this process, against the bucket's emulator and a catalog in tmp_path."""

    def __init__(self, bucket: EmulatedBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
        self.bucket = bucket
        self.catalog_path = tmp_path / "catalog.sqlite"
        self.registry = f"sqlite:///{self.catalog_path}?dataset=backfilled"
        self.checkpoint = tmp_path / "checkpoint.json"
        self.outcomes = tmp_path / "outcomes.jsonl"
        self._capsys = capsys
        clean_env(monkeypatch, self.registry, bucket.env())

    def __call__(self, *options: str) -> tuple[int, dict[str, Any]]:
        argv = [self.bucket.uri, "--json", "--checkpoint", str(self.checkpoint), "--outcomes", str(self.outcomes)]
        code, out, err = run_backfill(self._capsys, *argv, *options)
        assert out, f"no summary (exit {code}): {err}"
        return code, json.loads(out)

    def rows(self) -> list[dict[str, Any]]:
        catalog = SqliteCatalog(self.catalog_path)
        try:
            return catalog.rows()
        finally:
            catalog.close()

    def outcome_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.outcomes.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def run(bucket: EmulatedBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Run:
    return Run(bucket, tmp_path, monkeypatch, capsys)


def test_backfill_registers_exactly_the_rows_the_live_path_makes(bucket: EmulatedBucket, run: Run) -> None:
    bucket.put(ALL_OBJECTS)

    code, summary = run("--batch-size", "7", "--page-size", "10")

    assert (code, summary["status"]) == (0, "complete")
    live = expected_rows(bucket.live_events(), Settings.from_env(os.environ))
    assert {key_of(location, bucket): r for location, r in live.skipped.items()} == SKIPPED  # the live path's own skips
    assert len(live.payloads) == len(ALL_OBJECTS) - len(SKIPPED)
    rows = run.rows()
    assert {r["global_key"]: row_fields(r) for r in rows} == {k: payload_fields(p) for k, p in live.payloads.items()}
    skipped = {o["object"]: o["reason"] for o in run.outcome_lines() if o["outcome"] == "skipped"}
    assert skipped == live.skipped
    assert summary["totals"]["listed"] == len(ALL_OBJECTS)
    assert summary["totals"]["created"] == len(rows)
    assert summary["this_run"]["register_calls"] == -(-len(rows) // 7)  # full batches of 7, then the rest


def test_interrupted_runs_resume_without_losing_or_repeating_an_object(bucket: EmulatedBucket, run: Run) -> None:
    bucket.put(ALL_OBJECTS)
    small = ("--batch-size", "3", "--page-size", "4")  # stops fall mid-page and mid-batch

    stops = [run(*small, "--max-objects", "10"), run(*small, "--max-objects", "7"), run(*small, "--max-objects", "11")]
    code, final = run(*small)

    assert [(c, s["status"]) for c, s in stops] == [(0, "limit")] * 3
    assert [s["this_run"]["listed"] for _, s in stops] == [10, 7, 11]
    assert (code, final["status"]) == (0, "complete")
    assert final["this_run"]["listed"] == len(ALL_OBJECTS) - 28
    handled = Counter(key_of(o["object"], bucket) for o in run.outcome_lines())
    assert handled == Counter(ALL_OBJECTS.keys())  # every object exactly once across the four runs
    rows = run.rows()
    assert len(rows) == len(ALL_OBJECTS) - len(SKIPPED)
    assert {r["writes"] for r in rows} == {1}
    assert final["totals"]["created"] == len(rows)
    assert final["totals"]["listed"] == len(ALL_OBJECTS)


def test_a_finished_backfill_run_again_registers_nothing(bucket: EmulatedBucket, run: Run) -> None:
    bucket.put(ALL_OBJECTS)
    run("--batch-size", "10")
    before = {r["global_key"]: r["updated_at"] for r in run.rows()}

    code, again = run("--batch-size", "10")
    code_restart, restart = run("--batch-size", "10", "--restart")

    assert (code, again["status"], again["this_run"]["register_calls"]) == (0, "already_complete", 0)
    assert again["this_run"]["listed"] == 0
    assert (code_restart, restart["status"]) == (0, "complete")
    assert restart["totals"]["created"] == 0
    assert restart["totals"]["present"] == len(before)  # listed again, every row found as it was
    assert {r["global_key"]: r["updated_at"] for r in run.rows()} == before
