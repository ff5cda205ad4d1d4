"""The Labelbox registry against the local Labelbox-compatible endpoint: requests per batch, per-row outcomes,
bad input, faults and deadlines, deletes and tags."""

from __future__ import annotations

import logging
import time
import traceback
from collections import Counter

import pytest

from bucket_ingest.labelbox_endpoint import LabelboxEndpoint
from shared.deadline import Deadline
from shared.registries import labelbox as labelbox_module
from shared.registries.base import RowStatus
from shared.secrets import Secret
from shared.settings import DeletePolicy, Settings
from tests.support.labelbox import (  # noqa: F401 (fixtures)
    API_KEY,
    dataset_id_fixture,
    labelbox_endpoint_fixture,
    labelbox_settings,
    operations,
    payload,
    payloads,
    registry,
    rows_by_key,
)

UPSERT_PATH = ["uploadFile", "uploadFile", "upsertDataRows", "user", "failedDataRowImports"]


def test_a_batch_costs_the_same_requests_whatever_its_size(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    lb = registry(labelbox_endpoint)
    first = lb.register(payloads(1, dataset_id, start=100_000), Deadline(30))
    assert [r.status for r in first] == [RowStatus.UPSERTED]
    cold = operations(labelbox_endpoint)
    assert cold == ["user,dataset", *UPSERT_PATH]  # user id and dataset fetched once per warm instance

    counts = {}
    for size in (1, 10, 1_000):
        labelbox_endpoint.clear_requests()
        results = lb.register(payloads(size, dataset_id), Deadline(30))
        assert {r.status for r in results} == {RowStatus.UPSERTED}
        assert len(results) == size
        counts[size] = operations(labelbox_endpoint)
    assert counts[1] == counts[10] == counts[1_000] == UPSERT_PATH
    assert len(rows_by_key(labelbox_endpoint)) == 1_001


def test_registered_rows_carry_the_payload_fields(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    item = payload("a b+c", dataset_id)
    [result] = registry(labelbox_endpoint).register([item], Deadline(10))
    assert result.status is RowStatus.UPSERTED
    row = rows_by_key(labelbox_endpoint)[item.global_key]
    assert (row["row_data"], row["external_id"], row["media_type"], row["dataset_id"]) == (
        item.row_data,
        item.external_id,
        "IMAGE",
        dataset_id,
    )
    assert row["metadata"] == []  # metadata goes only by schema id, and none is configured


def test_a_redelivery_updates_the_same_row(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    lb = registry(labelbox_endpoint)
    lb.register([payload(1, dataset_id)], Deadline(10))
    moved = payload(1, dataset_id, row_data="https://bucket.s3.us-east-1.amazonaws.com/objects/1-v2.jpg")
    [again] = lb.register([moved], Deadline(10))
    assert again.status is RowStatus.UPSERTED
    [row] = labelbox_endpoint.store.rows()
    assert (row["row_data"], row["writes"]) == (moved.row_data, 2)


def test_bad_rows_fail_alone_with_a_clear_reason(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    batch = [
        payload(1, dataset_id),
        payload(2, dataset_id, global_key="bad key with a trailing space "),
        payload(3, dataset_id, global_key="x" * 201),
        payload(4, dataset_id, row_data="https://bucket.s3.us-east-1.amazonaws.com/" + "k" * 70_000),
        payload(5, dataset_id, row_data="s3://bucket/objects/5.jpg"),
        payload(6, dataset_id),
        payload(1, dataset_id),  # the same key twice in one batch
    ]
    results = registry(labelbox_endpoint).register(batch, Deadline(10))
    statuses = [r.status for r in results]
    assert statuses == [RowStatus.UPSERTED, *[RowStatus.FAILED] * 4, RowStatus.UPSERTED, RowStatus.FAILED]
    assert not any(r.retryable for r in results)
    assert "invalid global key" in results[1].message and "trailing space" in results[1].message
    assert "at most 200 characters" in results[2].message
    assert "over Labelbox's limit of 65536" in results[3].message
    assert "s3:// URI" in results[4].message and "https://BUCKET.s3.REGION.amazonaws.com" in results[4].message
    assert "twice in one batch" in results[6].message
    assert set(rows_by_key(labelbox_endpoint)) == {batch[0].global_key, batch[5].global_key}


def test_a_row_labelbox_refuses_fails_for_good_and_the_others_register(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    batch = payloads(5, dataset_id)
    labelbox_endpoint.set_faults(reject={batch[2].global_key: "Invalid row_data: the URL cannot be fetched"})
    results = registry(labelbox_endpoint).register(batch, Deadline(10))
    assert [r.status for r in results] == [RowStatus.UPSERTED] * 2 + [RowStatus.FAILED] + [RowStatus.UPSERTED] * 2
    assert results[2].message == "Labelbox refused the row: Invalid row_data: the URL cannot be fetched"
    assert results[2].retryable is False
    assert set(rows_by_key(labelbox_endpoint)) == {p.global_key for p in batch} - {batch[2].global_key}


def test_a_wrong_api_key_fails_every_row_retryably_and_says_what_to_fix(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    wrong = "not-the-key-0123456789"
    results = registry(labelbox_endpoint, key=wrong).register(payloads(3, dataset_id), Deadline(10))
    assert {r.status for r in results} == {RowStatus.FAILED}
    assert all(r.retryable for r in results)  # nothing is lost while a human fixes the key
    assert all("refused the API key" in r.message and "LABELBOX_API_KEY" in r.message for r in results)
    assert not any(wrong in r.message for r in results)
    assert labelbox_endpoint.store.rows() == []
    assert len(labelbox_endpoint.requests()) == 1  # refused at once: no retries of an auth error


def test_a_missing_dataset_is_a_configuration_error_worth_retrying(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    batch = [payload(1, dataset_id), payload(2, "cnosuchdataset000000000000")]
    results = registry(labelbox_endpoint).register(batch, Deadline(10))
    assert results[0].status is RowStatus.UPSERTED
    assert results[1].status is RowStatus.FAILED and results[1].retryable
    assert "no dataset 'cnosuchdataset000000000000'" in results[1].message and "INGEST_REGISTRY" in results[1].message


def test_metadata_goes_by_schema_id_in_the_schema_kind(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    size_id = labelbox_endpoint.store.upsert_schema("object size", "CustomMetadataNumber")["id"]
    type_id = labelbox_endpoint.store.upsert_schema("content type", "CustomMetadataString")["id"]
    lb = registry(labelbox_endpoint, metadata_schemas={"size": size_id, "content_type": type_id, "etag": type_id})
    item = payload(1, dataset_id, metadata={"size": 1234, "content_type": "image/jpeg", "cloud": "aws"})
    long = payload(2, dataset_id, metadata={"size": 1, "content_type": "x" * 4_097})
    results = lb.register([item, long], Deadline(10))
    assert results[0].status is RowStatus.UPSERTED
    assert results[1].status is RowStatus.FAILED and not results[1].retryable
    assert "4097 characters, over Labelbox's limit of 4096" in results[1].message
    row = rows_by_key(labelbox_endpoint)[item.global_key]
    assert sorted(row["metadata"], key=lambda m: m["schemaId"]) == sorted(
        [{"schemaId": size_id, "value": 1234}, {"schemaId": type_id, "value": "image/jpeg"}],
        key=lambda m: str(m["schemaId"]),
    )
    upload = labelbox_endpoint.requests()[1]  # after the one-off request for user, dataset and ontology
    assert [f["name"] for f in labelbox_endpoint.requests()[0]["fields"]] == [
        "user",
        "dataset",
        "customMetadataOntology",
    ]
    assert upload["fields"][0]["name"] == "uploadFile"


def test_an_unknown_metadata_schema_is_a_configuration_error(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    lb = registry(labelbox_endpoint, metadata_schemas={"size": "cnosuchschema0000000000000"})
    [result] = lb.register([payload(1, dataset_id)], Deadline(10))
    assert result.status is RowStatus.FAILED and result.retryable
    assert "INGEST_METADATA_SCHEMAS maps size to 'cnosuchschema0000000000000'" in result.message


def test_big_batches_split_into_tasks_and_chunks(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(labelbox_module, "MAX_ROWS_PER_TASK", 4)
    monkeypatch.setattr(labelbox_module, "MAX_CHUNK_BYTES", 1_000)  # about three items per chunk
    results = registry(labelbox_endpoint).register(payloads(10, dataset_id), Deadline(30))
    assert {r.status for r in results} == {RowStatus.UPSERTED}
    counts = Counter(operations(labelbox_endpoint))
    assert counts["upsertDataRows"] == 3  # 4 + 4 + 2 rows
    manifests = [
        labelbox_endpoint.upload_json(entry["upload"]["file_id"])
        for entry in labelbox_endpoint.requests()
        if entry.get("upload", {}).get("filename") == "manifest.json"
    ]
    assert [m["item_count"] for m in manifests] == [4, 4, 2]
    assert [len(m["chunk_uris"]) for m in manifests] == [2, 2, 1]
    assert len(rows_by_key(labelbox_endpoint)) == 10


def test_metadata_lowers_the_rows_per_task(
    labelbox_endpoint: LabelboxEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(labelbox_module, "MAX_ROWS_PER_TASK_WITH_METADATA", 3)
    dataset = labelbox_endpoint.create_dataset("d")
    size_id = labelbox_endpoint.store.upsert_schema("object size", "CustomMetadataNumber")["id"]
    lb = registry(labelbox_endpoint, metadata_schemas={"size": size_id})
    assert {r.status for r in lb.register(payloads(7, dataset), Deadline(30))} == {RowStatus.UPSERTED}
    assert Counter(operations(labelbox_endpoint))["upsertDataRows"] == 3


# --- faults and deadlines ---------------------------------------------------------------------------------------


def test_with_5xx_and_429_answers_every_row_registers_exactly_once_within_deadlines(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    labelbox_endpoint.set_faults(error_rate=0.3, throttle_rate=0.1, retry_after=0.05, seed=7)
    lb = registry(labelbox_endpoint)
    pending = payloads(200, dataset_id)
    budget, overruns, deliveries = 3.0, [], 0
    while pending and deliveries < 40:  # the platform redelivers what comes back retryable
        batch, pending = pending[:25], pending[25:]
        started = time.monotonic()
        results = lb.register(batch, Deadline(budget))
        overruns.append(time.monotonic() - started - budget)
        deliveries += 1
        assert not [r for r in results if r.status is RowStatus.FAILED and not r.retryable]
        pending += [p for p, r in zip(batch, results, strict=True) if r.status is RowStatus.FAILED]
    assert pending == []
    assert max(overruns) < 0.25  # no call outlived its deadline (beyond scheduling noise)
    rows = labelbox_endpoint.store.rows()
    assert len(rows) == 200 and len({r["global_key"].lower() for r in rows}) == 200
    faults = Counter(entry["fault"] for entry in labelbox_endpoint.requests())
    assert faults["error"] > 20 and faults["throttle"] > 5  # the faults really happened


def test_dropped_connections_and_slow_answers_still_end_registered(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    labelbox_endpoint.set_faults(drop_rate=0.25, slow_rate=0.2, slow_seconds=0.3, seed=3)
    lb = registry(labelbox_endpoint)
    pending, rounds = payloads(100, dataset_id), 0
    while pending and rounds < 40:
        started = time.monotonic()
        results = lb.register(pending[:10], Deadline(4))
        assert time.monotonic() - started < 4.25
        pending = [p for p, r in zip(pending[:10], results, strict=True) if r.status is RowStatus.FAILED] + pending[10:]
        rounds += 1
    assert pending == []
    assert len(labelbox_endpoint.store.rows()) == 100
    faults = Counter(e["fault"] for e in labelbox_endpoint.requests())
    assert faults["drop"] >= 5  # each one ran on the server but its answer was lost


def test_a_slow_endpoint_cannot_hold_a_call_past_its_deadline(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    labelbox_endpoint.set_faults(slow_rate=1.0, slow_seconds=3.0)
    started = time.monotonic()
    results = registry(labelbox_endpoint).register(payloads(3, dataset_id), Deadline(1.0))
    assert time.monotonic() - started < 1.25
    assert all(r.status is RowStatus.FAILED and r.retryable for r in results)
    assert "deadline" in results[0].message


def test_throttling_longer_than_the_deadline_gives_up_at_once(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    labelbox_endpoint.set_faults(throttle_rate=1.0, retry_after=30)
    started = time.monotonic()
    results = registry(labelbox_endpoint).register(payloads(2, dataset_id), Deadline(5))
    assert time.monotonic() - started < 1.0  # no point waiting 30 s with 5 s left
    assert all(r.retryable and "HTTP 429" in r.message for r in results)


def test_retry_after_is_honoured(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    lb = registry(labelbox_endpoint)
    lb.register([payload(0, dataset_id)], Deadline(10))  # warm: user id and dataset known
    labelbox_endpoint.set_faults(throttle_rate=1.0, retry_after=0.6)
    labelbox_endpoint.clear_requests()

    def lift() -> None:
        time.sleep(0.1)
        labelbox_endpoint.set_faults(throttle_rate=0.0)

    import threading

    lifter = threading.Thread(target=lift)
    started = time.monotonic()
    lifter.start()
    results = lb.register([payload(1, dataset_id)], Deadline(10))
    lifter.join()
    assert results[0].status is RowStatus.UPSERTED
    log = labelbox_endpoint.requests()
    assert log[0]["fault"] == "throttle" and log[1]["fault"] is None
    assert log[1]["at"] - log[0]["at"] >= 0.55  # waited as told, not a short backoff
    assert time.monotonic() - started >= 0.6


def test_a_task_still_in_progress_at_the_deadline_is_retried_safely(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    labelbox_endpoint.set_faults(hold_tasks=True)
    lb = registry(labelbox_endpoint)
    batch = payloads(3, dataset_id)
    started = time.monotonic()
    results = lb.register(batch, Deadline(2.0))
    assert time.monotonic() - started < 2.1
    assert all(r.status is RowStatus.FAILED and r.retryable for r in results)
    assert "still IN_PROGRESS at the deadline" in results[0].message
    labelbox_endpoint.set_faults(hold_tasks=False)  # Labelbox finishes the first task on its own
    assert {r.status for r in lb.register(batch, Deadline(10))} == {RowStatus.UPSERTED}  # the redelivery
    rows = labelbox_endpoint.store.rows()
    assert sorted(r["global_key"] for r in rows) == sorted(p.global_key for p in batch)  # still one row per key


def test_an_expired_deadline_sends_nothing(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    results = registry(labelbox_endpoint).register(payloads(2, dataset_id), Deadline(0))
    assert all(r.status is RowStatus.FAILED and r.retryable for r in results)
    assert labelbox_endpoint.requests() == []


# --- deletes and tags ---------------------------------------------------------------------------------------------


def test_delete_frees_the_key_and_reports_absent_rows(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    lb = registry(labelbox_endpoint)
    batch = payloads(3, dataset_id)
    lb.register(batch, Deadline(10))
    old_id = rows_by_key(labelbox_endpoint)[batch[0].global_key]["id"]
    results = lb.delete([batch[0].global_key, "aws:bucket/never-registered"], Deadline(10))
    assert [r.status for r in results] == [RowStatus.DELETED, RowStatus.ABSENT]
    assert batch[0].global_key not in rows_by_key(labelbox_endpoint)
    lb.register([batch[0]], Deadline(10))  # the key is free again: a new row
    assert rows_by_key(labelbox_endpoint)[batch[0].global_key]["id"] != old_id


def test_deletes_go_in_batches_of_at_most_4000(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(labelbox_module, "MAX_DELETE_BATCH", 2)
    lb = registry(labelbox_endpoint)
    batch = payloads(5, dataset_id)
    lb.register(batch, Deadline(10))
    labelbox_endpoint.clear_requests()
    assert {r.status for r in lb.delete([p.global_key for p in batch], Deadline(10))} == {RowStatus.DELETED}
    assert Counter(operations(labelbox_endpoint))["deleteDataRows"] == 3
    assert labelbox_endpoint.store.rows() == []


def test_tag_policy_marks_rows_and_a_new_upload_clears_the_mark(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    lb = registry(labelbox_endpoint, delete_policy=DeletePolicy.TAG)
    batch = payloads(2, dataset_id)
    lb.register(batch, Deadline(10))
    results = lb.mark_deleted([batch[0].global_key, "aws:bucket/never-registered"], Deadline(10))
    assert [r.status for r in results] == [RowStatus.TAGGED, RowStatus.ABSENT]
    rows = rows_by_key(labelbox_endpoint)
    assert rows[batch[0].global_key]["metadata"] == [
        {"schemaId": labelbox_module.TAG_SCHEMA_ID, "value": labelbox_module.DELETED_TAG}
    ]
    assert rows[batch[1].global_key]["metadata"] == []
    lb.register([batch[0]], Deadline(10))  # uploaded again
    assert rows_by_key(labelbox_endpoint)[batch[0].global_key]["metadata"] == []


def test_from_settings_reads_the_endpoint_key_and_schemas(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    settings = Settings.from_env(labelbox_settings(labelbox_endpoint, dataset_id))
    lb = labelbox_module.LabelboxRegistry.from_settings(settings)
    assert lb.register([payload(1, dataset_id)], Deadline(10))[0].status is RowStatus.UPSERTED
    assert API_KEY not in repr(lb) and API_KEY not in repr(settings)


def test_the_key_never_reaches_logs_errors_or_reprs(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    labelbox_endpoint.api_keys = frozenset({API_KEY, "second-valid-key-4242"})
    labelbox_endpoint.set_faults(error_rate=0.3, throttle_rate=0.2, retry_after=0.01, drop_rate=0.1, seed=11)
    messages = []
    for key in (API_KEY, "second-valid-key-4242", "wrong-key-777777"):
        lb = registry(labelbox_endpoint, key=key)
        messages.append(repr(lb))
        for _ in range(2):
            messages += [r.message for r in lb.register(payloads(5, dataset_id), Deadline(2))]
            messages += [r.message for r in lb.delete(["aws:bucket/objects/1.jpg"], Deadline(2))]
    assert any("HTTP 503" in m or "HTTP 429" in m or "refused the API key" in m for m in messages + caplog.messages)
    text = "\n".join(messages + caplog.messages + [r.getMessage() for r in caplog.records])
    for key in (API_KEY, "second-valid-key-4242", "wrong-key-777777"):
        assert key not in text


def test_a_key_with_a_line_break_is_refused_without_quoting_it(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str
) -> None:
    [result] = registry(labelbox_endpoint, key="abc\ndef-secret").register([payload(1, dataset_id)], Deadline(5))
    assert result.status is RowStatus.FAILED and result.retryable
    assert "line breaks" in result.message and "def-secret" not in result.message


def test_exceptions_from_the_api_never_carry_the_key(labelbox_endpoint: LabelboxEndpoint) -> None:
    wrong = "wrong-key-in-a-traceback-5150"
    api = labelbox_module.LabelboxApi(labelbox_endpoint.url, Secret(wrong), None)
    with pytest.raises(labelbox_module.LabelboxError) as failure:
        api.execute("query Q {user {id}}", {}, Deadline(5))
    text = "".join(traceback.format_exception(failure.value)) + repr(failure.value)
    assert "refused the API key" in text and wrong not in text
