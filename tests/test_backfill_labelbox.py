"""Backfill into Labelbox: moto S3 → the Labelbox client (shared/registries/labelbox.py) → the local
Labelbox-compatible endpoint, with the endpoint answering part of the requests 429 (Retry-After) or 5xx.

Every object the live path would register ends up as exactly one data row with the live path's global key and
row_data; throttled calls are waited out, not lost; and --calls-per-minute spaces the register calls.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from bucket_ingest.cli import main
from bucket_ingest.emulators import Moto
from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, LabelboxEndpoint
from bucket_ingest.labelbox_endpoint.server import Faults
from shared.settings import Settings
from tests.support.backfill import ALL_OBJECTS, S3Bucket, clean_env, expected_rows, unique_name


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with Moto() as server:
        yield server


@pytest.fixture
def endpoint() -> Iterator[LabelboxEndpoint]:
    endpoint = LabelboxEndpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def bucket(moto: Moto) -> S3Bucket:
    bucket = S3Bucket(moto, unique_name("labelbox"))
    bucket.put(ALL_OBJECTS)
    return bucket


@pytest.fixture
def dataset(endpoint: LabelboxEndpoint, bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> str:
    dataset = endpoint.create_dataset("backfill")
    clean_env(
        monkeypatch,
        f"labelbox://{dataset}",
        {**bucket.moto.env(), "LABELBOX_ENDPOINT": endpoint.url, "LABELBOX_API_KEY": DEFAULT_API_KEY},
    )
    return dataset


def backfill(capsys: Any, tmp_path: Any, bucket: S3Bucket, *options: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main(
        ["backfill", bucket.uri, "--json", "--progress-interval", "0", "--checkpoint", str(tmp_path / "c.json"),
         *options]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary: dict[str, Any] = json.loads(captured.out)
    return summary


def test_throttled_and_failing_requests_are_retried_and_every_row_lands_once(
    bucket: S3Bucket, endpoint: LabelboxEndpoint, dataset: str, tmp_path: Any, capsys: Any
) -> None:
    endpoint.set_faults(Faults(throttle_rate=0.25, retry_after=0.1, error_rate=0.15, seed=11))

    summary = backfill(capsys, tmp_path, bucket, "--batch-size", "10")

    log = endpoint.requests()
    assert summary["status"] == "complete"
    assert sum(1 for entry in log if entry["fault"] == "throttle") > 0
    assert sum(1 for entry in log if entry["fault"] == "error") > 0
    live = expected_rows(bucket.live_events(), Settings.from_env(os.environ))
    rows = endpoint.store.rows(dataset)
    assert len(rows) == len({r["global_key"] for r in rows}) == len(live.payloads)  # one row per object
    assert {r["global_key"]: r["row_data"] for r in rows} == {k: p.row_data for k, p in live.payloads.items()}
    assert summary["totals"]["registered"] == len(live.payloads)


def test_calls_per_minute_spaces_the_register_calls(
    bucket: S3Bucket, endpoint: LabelboxEndpoint, dataset: str, tmp_path: Any, capsys: Any
) -> None:
    summary = backfill(
        capsys, tmp_path, bucket, "--batch-size", "20", "--calls-per-minute", "120", "--concurrency", "3"
    )

    log = endpoint.requests()
    upserts = sorted(e["at"] for e in log if any(f["name"] == "upsertDataRows" for f in e["fields"]))
    assert summary["this_run"]["register_calls"] == 3  # 58 rows in calls of 20
    assert len(upserts) == 3
    # 120 a minute: a call every 0.5 s whatever the concurrency (the first call also fetches its context first)
    assert upserts[-1] - upserts[0] >= 0.9
    assert min(b - a for a, b in pairwise(upserts)) >= 0.3
