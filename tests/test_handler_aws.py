"""The AWS Lambda function called directly, with the Lambda runtime's own context class, for every event shape.

(The same function under the real bootstrap, awslambdaric, is in test_handler_aws_runtime.py.)
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.commands.invoke import lambda_context
from handlers import RedeliveryRequested, aws
from shared.settings import SettingsError
from tests import fixtures
from tests.support.handlers import (
    EVERYTHING,
    Catalog,
    batch_operations_event,
    batch_task,
    configured_function,
    expected_outcome,
    json_lines,
    modules_loaded_at_import,
    outcome_lines,
    powertools_log,
    s3_notification,
    s3_record,
    sqs_event,
)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    with configured_function(aws, monkeypatch, tmp_path) as catalog:  # a new function instance per test
        yield catalog


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    with powertools_log(aws.logger) as stream:
        yield stream


def call(event: Any, timeout_s: float = 30.0) -> Any:
    return aws.lambda_handler(event, lambda_context(timeout_s))


@pytest.mark.parametrize("name", fixtures.names("aws"))
def test_every_vendor_fixture_comes_to_its_expected_rows(
    name: str, catalog: Catalog, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in EVERYTHING.items():
        monkeypatch.setenv(variable, value)
    response = call(fixtures.load(name))
    rows, skipped = expected_outcome(name)
    assert set(catalog.external_ids()) == rows
    outcomes = outcome_lines(json_lines(logs.getvalue()))
    assert len(outcomes) == len(fixtures.expected()[name]["records"])
    assert sorted(o["reason"] for o in outcomes if o["outcome"] == "skipped") == skipped
    assert all(o["detail"] for o in outcomes if o["outcome"] == "skipped"), "every skip says why"
    if "batchItemFailures" in response:
        assert response == {"batchItemFailures": []}
    else:
        assert response["redeliver"] == []


def test_sqs_batch_with_bad_messages_registers_the_good_ones_and_acknowledges_the_rest(
    catalog: Catalog, logs: io.StringIO
) -> None:
    other_service = {"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {}}]}
    no_bucket = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "x.jpg", "size": 1}}}]}
    wrong_type = s3_notification("typed.jpg")
    wrong_type["Records"][0]["s3"]["object"]["size"] = "large"
    two_megabytes = {"padding": "x" * 2_000_000}
    event = sqs_event(
        s3_notification("photos/cat.jpg"),
        "{this is not json",
        no_bucket,
        wrong_type,
        other_service,
        two_megabytes,
        s3_notification("photos/bell\x07ringing.jpg"),  # a control character in the key
        s3_notification("photos/dog.jpg"),
    )
    response = call(event)
    assert response == {"batchItemFailures": []}  # nothing in this batch can ever succeed by retrying
    assert catalog.external_ids() == ["aws:ingest-bucket/photos/cat.jpg", "aws:ingest-bucket/photos/dog.jpg"]
    by_message = {o["delivery"]: o for o in outcome_lines(json_lines(logs.getvalue()))}
    assert by_message["m0"]["outcome"] == by_message["m7"]["outcome"] == "created"
    reasons = {m: (by_message[m]["reason"], by_message[m]["detail"]) for m in ("m1", "m2", "m3", "m4", "m5", "m6")}
    assert reasons["m1"][0] == "unsupported_event" and "not JSON" in reasons["m1"][1]
    assert reasons["m2"][0] == "unsupported_event" and "record.s3 has no 'bucket'" in reasons["m2"][1]
    assert reasons["m3"][0] == "unsupported_event" and "'size' should be an integer" in reasons["m3"][1]
    assert reasons["m4"][0] == "unsupported_event" and "'aws:dynamodb' is not an S3 event" in reasons["m4"][1]
    assert reasons["m5"][0] == "unsupported_event" and "not an S3 event" in reasons["m5"][1]
    assert reasons["m6"][0] == "unservable_key" and "control characters" in reasons["m6"][1]
    assert all(len(line) < 2_000 for line in logs.getvalue().splitlines()), "a 2 MB body is never echoed"


@pytest.mark.parametrize("event", [None, "hello", [1, 2], {"Records": "many"}, {"detail-type": "Object Created"}])
def test_a_direct_invocation_that_is_not_an_s3_event_is_logged_and_not_retried(
    event: Any, catalog: Catalog, logs: io.StringIO
) -> None:
    response = call(event)
    assert response["redeliver"] == []
    assert response["outcomes"] == {"skipped:unsupported_event": 1}
    (outcome,) = outcome_lines(json_lines(logs.getvalue()))
    assert outcome["level"] == "WARNING" and outcome["detail"].startswith("unsupported event: ")
    assert catalog.rows() == []


def test_sqs_messages_whose_rows_failed_come_back_and_the_others_do_not(catalog: Catalog) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-25T12:00:00Z", "Bucket": "b"}
    event = sqs_event(s3_notification("a.jpg"), test_event, s3_notification("b.jpg", "c.jpg"), "not json")
    started = time.monotonic()
    with catalog.locked():
        response = call(event, timeout_s=3.0)  # 1 s of it for the registry after the 2 s margin
    assert 0.9 < time.monotonic() - started < 2.5, "the registry waited as long as the Lambda deadline allowed"
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}]}
    assert catalog.rows() == []
    redelivered = {"Records": [r for r in event["Records"] if r["messageId"] in ("m0", "m2")]}
    assert call(redelivered) == {"batchItemFailures": []}
    assert catalog.external_ids() == [f"aws:ingest-bucket/{k}.jpg" for k in "abc"]


def test_a_direct_s3_notification_raises_so_that_lambda_retries_it(catalog: Catalog) -> None:
    with catalog.locked(), pytest.raises(RedeliveryRequested, match="catalog busy") as raised:
        call(s3_notification("retry-me.jpg"), timeout_s=3.0)
    assert "aws://ingest-bucket/retry-me.jpg" in str(raised.value)
    assert call(s3_notification("retry-me.jpg"))["outcomes"] == {"created": 1}


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_batch_operations_answers_a_result_code_per_task(version: str, catalog: Catalog) -> None:
    event = batch_operations_event(version, batch_task("reports/q1 summary.pdf", version=version))
    response = call(event)
    assert response == {
        "invocationSchemaVersion": version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [{"taskId": "t0", "resultCode": "Succeeded", "resultString": "created"}],
    }
    assert catalog.external_ids() == ["aws:ingest-bucket/reports/q1 summary.pdf"]


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_batch_operations_temporary_and_permanent_failures(version: str, catalog: Catalog) -> None:
    unreadable = {"taskId": "t1", "s3VersionId": None, "s3Bucket": "b", "s3BucketArn": "arn:aws:s3:::b"}
    event = batch_operations_event(version, batch_task("a.jpg", version=version), unreadable)
    with catalog.locked():
        results = call(event, timeout_s=3.0)["results"]
    assert [(r["taskId"], r["resultCode"]) for r in results] == [("t0", "TemporaryFailure"), ("t1", "PermanentFailure")]
    assert "catalog busy" in results[0]["resultString"]
    assert "task.s3Key should be a non-empty string" in results[1]["resultString"]


def test_batch_operations_skipped_object_succeeds_with_the_reason(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGEST_EXCLUDE", "tmp/**")
    (result,) = call(batch_operations_event("2.0", batch_task("tmp/scratch.jpg", version="2.0")))["results"]
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("skipped excluded the key matches INGEST_EXCLUDE pattern 'tmp/**'")


@pytest.mark.parametrize(
    "order",
    [
        [["a", "b"], ["c", "a"], ["a"], ["b", "c", "a"]],
        [["a"], ["a"], ["a", "b", "c"], ["c"], ["b"], ["b"]],
        [["c", "b", "a"], ["a", "b", "c"], ["b", "a", "c"]],
    ],
)
def test_the_same_events_delivered_three_times_in_any_order_leave_one_row_per_object(
    order: list[list[str]], catalog: Catalog
) -> None:
    messages = {key: s3_notification(f"{key}.jpg") for key in "abc"}
    for batch in order:
        assert call(sqs_event(*(messages[key] for key in batch))) == {"batchItemFailures": []}
    rows = catalog.rows()
    assert sorted(r["external_id"] for r in rows) == [f"aws:ingest-bucket/{k}.jpg" for k in "abc"]
    assert all(r["writes"] == 1 for r in rows), "redeliveries of the same event leave the row as it was"


def test_a_bad_setting_fails_the_invocation_naming_the_variable_and_is_read_again_next_time(
    catalog: Catalog, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INGEST_MAX_SIZE", "lots")
    monkeypatch.setenv("LABELBOX_API_KEY", "lb-secret-value-123")
    with pytest.raises(SettingsError, match="INGEST_MAX_SIZE: 'lots' is not a size"):
        call(s3_notification("a.jpg"))
    assert "INGEST_MAX_SIZE" in logs.getvalue()
    assert '"InvalidConfiguration":[1.0]' in capsys.readouterr().out  # an EMF metric to alarm on
    monkeypatch.setenv("INGEST_MAX_SIZE", "5GB")
    assert call(s3_notification("a.jpg"))["outcomes"] == {"created": 1}
    assert "lb-secret-value-123" not in logs.getvalue()


def test_settings_and_registry_are_kept_by_the_warm_instance(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call(s3_notification("first.jpg"))
    other = Catalog(tmp_path / "other")
    monkeypatch.setenv("INGEST_REGISTRY", other.url)
    call(s3_notification("second.jpg"))  # same instance: same settings, same registry
    assert catalog.external_ids() == ["aws:ingest-bucket/first.jpg", "aws:ingest-bucket/second.jpg"]
    aws.INSTANCE.reset()  # a new instance reads the environment again
    call(s3_notification("third.jpg"))
    assert other.external_ids() == ["aws:ingest-bucket/third.jpg"]
    other.close()


def test_one_log_line_per_object_with_the_correlation_id(catalog: Catalog, logs: io.StringIO) -> None:
    event = s3_notification("a.jpg", "b.jpg")
    event["Records"].append(s3_record("c.jpg", size=0))
    call(event)
    records = json_lines(logs.getvalue())
    outcomes = outcome_lines(records)
    assert [(o["object"], o["outcome"]) for o in outcomes] == [
        ("aws://ingest-bucket/a.jpg", "created"),
        ("aws://ingest-bucket/b.jpg", "created"),
        ("aws://ingest-bucket/c.jpg", "skipped"),
    ]
    assert outcomes[2]["reason"] == "zero_byte"
    assert {r["correlation_id"] for r in records} == {"C3D13FE58DE4C810"}  # the S3 request id
    assert {r["function_name"] for r in records} == {"bucket-ingest"}
    (done,) = [r for r in records if r["message"] == "invocation done"]
    assert done["outcomes"] == {"created": 2, "skipped:zero_byte": 1}


def test_metrics_count_rows_and_skips_by_reason(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    event = s3_notification("a.jpg", "b.jpg")
    event["Records"] += [s3_record("empty.jpg", size=0), s3_record("notes.unknownext")]
    call(event)
    call(s3_notification("a.jpg"))  # unchanged
    emf = [r for r in json_lines(capsys.readouterr().out) if "_aws" in r]
    values = [
        (m["Name"], record.get("reason"), record[m["Name"]])
        for record in emf
        for directive in record["_aws"]["CloudWatchMetrics"]
        for m in directive["Metrics"]
    ]
    assert ("Registered", None, [2.0]) in values
    assert ("Skipped", None, [2.0]) in values
    assert ("Skipped", "zero_byte", [1.0]) in values
    assert ("Skipped", "unknown_media_type", [1.0]) in values
    assert ("Unchanged", None, [1.0]) in values
    namespaces = {d["Namespace"] for r in emf for d in r["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"BucketIngest"}


def test_importing_the_handler_needs_no_configuration_and_no_network() -> None:
    # (Powertools itself imports botocore, for its user-agent hook: the platform's cost, not the handler's)
    assert modules_loaded_at_import("handlers.aws") == []


def test_responses_are_json_as_lambda_serialises_them(catalog: Catalog) -> None:
    for event in (sqs_event(s3_notification("x.jpg")), s3_notification("y.jpg")):
        response = call(event)
        assert json.loads(json.dumps(response)) == response


def test_tracing_switched_on_without_the_xray_sdk_still_ingests(
    catalog: Catalog, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # as in a zip without Powertools' "tracer" extra
    aws._traced.cache_clear()  # the traced handler is built once per instance
    try:
        assert call(s3_notification("a.jpg"))["outcomes"] == {"created": 1}
    finally:
        aws._traced.cache_clear()
    assert "tracing is switched on but aws-xray-sdk is not installed: running untraced" in logs.getvalue()
