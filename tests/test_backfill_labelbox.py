"""Backfill into Labelbox: moto S3 → the Labelbox client (shared/registries/labelbox.py) → the local
Labelbox-compatible endpoint, with the endpoint answering part of the requests 429 (Retry-After) or 5xx.

Every object the live path would register ends up as exactly one data row with the live path's global key and
row_data; throttled calls are waited out, not lost; and --calls-per-minute spaces the register calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from bucket_ingest.emulators import Moto
from bucket_ingest.labelbox_endpoint import LabelboxEndpoint
from bucket_ingest.labelbox_endpoint.server import Faults
from shared.settings import Settings
from tests.support.backfill import ALL_OBJECTS, S3Bucket, backfill_summary, expected_rows, unique_name
from tests.support.handlers import clean_env
from tests.support.labelbox import (
    labelbox_endpoint_fixture,  # noqa: F401 (fixture)
    labelbox_settings,
)


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with Moto() as server:
        yield server


@pytest.fixture
def bucket(moto: Moto) -> S3Bucket:
    bucket = S3Bucket(moto, unique_name("labelbox"))
    bucket.put(ALL_OBJECTS)
    return bucket


@pytest.fixture
def dataset(labelbox_endpoint: LabelboxEndpoint, bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> str:
    dataset = labelbox_endpoint.create_dataset("backfill")
    settings = labelbox_settings(labelbox_endpoint, dataset)
    clean_env(monkeypatch, settings["INGEST_REGISTRY"], {**bucket.moto.env(), **settings})
    return dataset


def backfill(capsys: Any, tmp_path: Any, bucket: S3Bucket, *options: str) -> dict[str, Any]:
    return backfill_summary(capsys, bucket.uri, "--checkpoint", str(tmp_path / "c.json"), *options)


def test_throttled_and_failing_requests_are_retried_and_every_row_lands_once(
    bucket: S3Bucket, labelbox_endpoint: LabelboxEndpoint, dataset: str, tmp_path: Any, capsys: Any
) -> None:
    labelbox_endpoint.set_faults(Faults(throttle_rate=0.25, retry_after=0.1, error_rate=0.15, seed=11))

    summary = backfill(capsys, tmp_path, bucket, "--batch-size", "10")

    log = labelbox_endpoint.requests()
    assert summary["status"] == "complete"
    assert sum(1 for entry in log if entry["fault"] == "throttle") > 0
    assert sum(1 for entry in log if entry["fault"] == "error") > 0
    live = expected_rows(bucket.live_events(), Settings.from_env(os.environ))
    rows = labelbox_endpoint.store.rows(dataset)
    assert len(rows) == len({r["global_key"] for r in rows}) == len(live.payloads)  # one row per object
    assert {r["global_key"]: r["row_data"] for r in rows} == {k: p.row_data for k, p in live.payloads.items()}
    assert summary["totals"]["registered"] == len(live.payloads)


def test_calls_per_minute_spaces_the_register_calls(
    bucket: S3Bucket, labelbox_endpoint: LabelboxEndpoint, dataset: str, tmp_path: Any, capsys: Any
) -> None:
    summary = backfill(
        capsys, tmp_path, bucket, "--batch-size", "20", "--calls-per-minute", "120", "--concurrency", "3"
    )

    log = labelbox_endpoint.requests()
    upserts = sorted(e["at"] for e in log if any(f["name"] == "upsertDataRows" for f in e["fields"]))
    assert summary["this_run"]["register_calls"] == 3  # 58 rows in calls of 20
    assert len(upserts) == 3
    # 120 a minute: a call every 0.5 s whatever the concurrency (the first call also fetches its context first)
    assert upserts[-1] - upserts[0] >= 0.9
    assert min(b - a for a, b in pairwise(upserts)) >= 0.3
