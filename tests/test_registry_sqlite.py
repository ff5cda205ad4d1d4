"""The embedded catalog: Labelbox's data-row semantics in SQLite, safe for concurrent writers, bounded by deadlines."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from shared.deadline import Deadline
from shared.registries.base import RowStatus
from shared.registries.sqlite import SqliteCatalog
from tests.support.labelbox import payload, payloads

DATASET = "catalog-dataset"


@pytest.fixture
def catalog(tmp_path: Path) -> SqliteCatalog:
    return SqliteCatalog(tmp_path / "catalog.sqlite")


def test_upsert_semantics(catalog: SqliteCatalog) -> None:
    item = payload(1, DATASET)
    assert catalog.register([item], Deadline(5))[0].status is RowStatus.CREATED
    assert catalog.register([item], Deadline(5))[0].status is RowStatus.PRESENT
    moved = payload(1, DATASET, row_data="https://bucket.s3.us-east-1.amazonaws.com/objects/1-v2.jpg")
    assert catalog.register([moved], Deadline(5))[0].status is RowStatus.UPDATED
    [row] = catalog.rows()
    assert (row["row_data"], row["writes"], row["metadata"]["size"]) == (moved.row_data, 2, 1234)


def test_global_keys_are_unique_case_insensitively(catalog: SqliteCatalog) -> None:
    catalog.register([payload(1, DATASET, global_key="aws:bucket/Photo.JPG")], Deadline(5))
    [result] = catalog.register([payload(2, DATASET, global_key="AWS:BUCKET/photo.jpg")], Deadline(5))
    assert result.status is RowStatus.UPDATED
    assert len(catalog.rows()) == 1


def test_delete_frees_the_key(catalog: SqliteCatalog) -> None:
    item = payload(1, DATASET)
    catalog.register([item], Deadline(5))
    assert [r.status for r in catalog.delete([item.global_key, "aws:bucket/none"], Deadline(5))] == [
        RowStatus.DELETED,
        RowStatus.ABSENT,
    ]
    assert catalog.rows() == []
    assert catalog.register([item], Deadline(5))[0].status is RowStatus.CREATED


def test_tagging_keeps_the_row_and_a_new_upload_clears_the_tag(catalog: SqliteCatalog) -> None:
    item = payload(1, DATASET)
    catalog.register([item], Deadline(5))
    assert catalog.mark_deleted([item.global_key], Deadline(5))[0].status is RowStatus.TAGGED
    assert catalog.mark_deleted([item.global_key], Deadline(5))[0].status is RowStatus.PRESENT
    assert catalog.mark_deleted(["aws:bucket/none"], Deadline(5))[0].status is RowStatus.ABSENT
    assert catalog.rows(include_deleted=False) == []
    assert catalog.register([item], Deadline(5))[0].status is RowStatus.UPDATED
    assert [r["deleted_at"] for r in catalog.rows(include_deleted=False)] == [None]


def test_bad_rows_fail_alone(catalog: SqliteCatalog) -> None:
    batch = [payload(1, DATASET), payload(2, DATASET, global_key=" edge"), payload(3, DATASET), payload(1, DATASET)]
    results = catalog.register(batch, Deadline(5))
    assert [r.status for r in results] == [RowStatus.CREATED, RowStatus.FAILED, RowStatus.CREATED, RowStatus.FAILED]
    assert not results[1].retryable and "invalid global key" in results[1].message
    assert "twice in one batch" in results[3].message
    assert len(catalog.rows()) == 2


def test_an_expired_deadline_writes_nothing_and_asks_for_a_retry(catalog: SqliteCatalog) -> None:
    results = catalog.register(payloads(2, DATASET), Deadline(0))
    assert all(r.status is RowStatus.FAILED and r.retryable for r in results)
    assert catalog.rows() == []


def test_a_locked_catalog_fails_retryably_by_the_deadline(catalog: SqliteCatalog) -> None:
    blocker = sqlite3.connect(catalog.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        started = time.monotonic()
        results = catalog.register(payloads(2, DATASET), Deadline(0.5))
        assert time.monotonic() - started < 0.8
        assert all(r.status is RowStatus.FAILED and r.retryable and "busy" in r.message for r in results)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert {r.status for r in catalog.register(payloads(2, DATASET), Deadline(5))} == {RowStatus.CREATED}


def _write_range(path: str, start: int, count: int) -> list[str]:
    """One writer process: register rows start..start+count in batches of 10 (overlapping other writers)."""
    catalog = SqliteCatalog(path)
    statuses = []
    for first in range(start, start + count, 10):
        statuses += [r.status.value for r in catalog.register(payloads(10, DATASET, start=first), Deadline(30))]
    catalog.close()
    return statuses


def test_concurrent_writer_processes_register_each_key_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    SqliteCatalog(path).close()  # schema and WAL mode before the writers race
    ranges = [(0, 150), (50, 150), (100, 150), (0, 250)]  # every key written by two or more writers
    with multiprocessing.get_context("spawn").Pool(len(ranges)) as pool:
        outcomes = pool.starmap(_write_range, [(path, start, count) for start, count in ranges])
    statuses = Counter(status for outcome in outcomes for status in outcome)
    assert statuses[RowStatus.FAILED.value] == 0
    assert statuses[RowStatus.CREATED.value] == 250  # exactly one writer created each key
    rows = SqliteCatalog(path).rows()
    assert len(rows) == 250 and len({r["global_key"] for r in rows}) == 250


def test_concurrent_writer_threads_register_each_key_once(catalog: SqliteCatalog) -> None:
    results: list[list[RowStatus]] = []

    def write(start: int) -> None:
        results.append([r.status for r in catalog.register(payloads(40, DATASET, start=start), Deadline(30))])

    threads = [threading.Thread(target=write, args=(start,)) for start in (0, 20, 40, 0, 20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = Counter(status for outcome in results for status in outcome)
    assert flat[RowStatus.FAILED] == 0 and flat[RowStatus.CREATED] == 80
    assert len(catalog.rows()) == 80
