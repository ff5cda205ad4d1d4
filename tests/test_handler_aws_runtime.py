"""The AWS Lambda function under the real Lambda bootstrap: ``python -m awslambdaric handlers.aws.lambda_handler``
against a local Runtime API (``bucket_ingest.pipeline.functions.LambdaRuntime``), so handler resolution, the
context object, response marshalling and error serialisation are the runtime's own. One runtime process per test;
it is gone when the runtime stops.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bucket_ingest.pipeline.functions import LAMBDA_HANDLER, LambdaRuntime
from tests import fixtures
from tests.support.handlers import (
    Catalog,
    batch_operations_event,
    batch_task,
    json_lines,
    outcome_lines,
    s3_notification,
    sqs_event,
    wait_for,
)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(tmp_path)
    yield catalog
    catalog.close()


@pytest.fixture
def lines() -> list[str]:
    """What the function process writes (its log records and metrics, and the runtime's own lines)."""
    return []


def runtime(
    catalog: Catalog, lines: list[str], handler: str = LAMBDA_HANDLER, *, tracing: bool = False, **env: str
) -> LambdaRuntime:
    """The function on this test's catalog, its output kept in ``lines``."""
    env = {"INGEST_REGISTRY": catalog.url, **env}
    return LambdaRuntime(env, handler=handler, tracing=tracing, on_line=lines.append)


def test_an_sqs_batch_is_answered_with_a_partial_batch_response(catalog: Catalog, lines: list[str]) -> None:
    with runtime(catalog, lines) as lam:
        result = lam.invoke(fixtures.load("aws-sqs-s3-put.json"))
        assert result.error is None
        assert result.response == {"batchItemFailures": []}
        assert catalog.external_ids() == ["aws:xxx/test.pdf"]
        assert wait_for(lambda: len(outcome_lines(json_lines(lines))) == 1)
        (line,) = outcome_lines(json_lines(lines))
        [pid] = lam.pids
    # the context the runtime built reached the logger
    assert line["function_request_id"] == result.request_id
    assert line["function_arn"] == lam.function_arn == "arn:aws:lambda:us-east-1:123456789012:function:bucket-ingest"
    assert line["function_name"] == "bucket-ingest"
    assert line["cold_start"] is True
    assert line["delivery"] == "ca3e7a89-c358-40e5-8aa0-5da01403c267"
    assert not Path(f"/proc/{pid}").exists(), "the runtime process is gone once the function stops"


def test_a_warm_runtime_keeps_its_instance_and_retries_only_failed_messages(catalog: Catalog, lines: list[str]) -> None:
    event = sqs_event(s3_notification("a.jpg"), s3_notification("b.jpg"))
    with runtime(catalog, lines) as lam:
        with catalog.locked():
            failed = lam.invoke(event, timeout_s=3)  # the deadline leaves the registry one second
        assert failed.response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
        assert lam.invoke(event).response == {"batchItemFailures": []}
        assert wait_for(lambda: len(outcome_lines(json_lines(lines))) == 4)
    outcomes = outcome_lines(json_lines(lines))
    assert [o["outcome"] for o in outcomes] == ["failed", "failed", "created", "created"]
    assert [o["cold_start"] for o in outcomes] == [True, True, False, False]
    assert outcomes[0]["retryable"] is True and "catalog busy" in outcomes[0]["detail"]
    assert catalog.external_ids() == ["aws:ingest-bucket/a.jpg", "aws:ingest-bucket/b.jpg"]


def test_an_asynchronous_event_that_must_be_retried_is_reported_as_a_function_error(
    catalog: Catalog, lines: list[str]
) -> None:
    with runtime(catalog, lines) as lam, catalog.locked():
        result = lam.invoke(s3_notification("later.jpg"), timeout_s=3)
    assert result.response is None and result.error is not None
    assert result.error["errorType"] == "RedeliveryRequested"
    assert result.error["errorMessage"] == (
        "1 of 1 deliveries must be redelivered (event): aws://ingest-bucket/later.jpg: "
        "catalog busy or unavailable: database is locked"
    )
    assert catalog.rows() == []


def test_a_bad_setting_is_a_function_error_naming_the_variable(catalog: Catalog, lines: list[str]) -> None:
    with runtime(catalog, lines, INGEST_DELETE_POLICY="sometimes", LABELBOX_API_KEY="lb-secret-value-123") as lam:
        result = lam.invoke(s3_notification("a.jpg"))
        assert wait_for(lambda: any("invalid configuration" in line for line in lines))
    assert result.error is not None
    assert result.error["errorType"] == "SettingsError"
    assert "INGEST_DELETE_POLICY: 'sometimes' is not one of ignore, tag, delete" in result.error["errorMessage"]
    assert not any("lb-secret-value-123" in line for line in lines)


def test_batch_operations_through_the_runtime(catalog: Catalog, lines: list[str]) -> None:
    event = batch_operations_event("1.0", batch_task("scans/page 1.png", version="1.0", task_id="dGFzaw"))
    with runtime(catalog, lines) as lam:
        result = lam.invoke(event)
    assert result.response == {
        "invocationSchemaVersion": "1.0",
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [{"taskId": "dGFzaw", "resultCode": "Succeeded", "resultString": "created"}],
    }


@pytest.mark.parametrize("switched_on", [False, True])
def test_tracing_is_off_unless_switched_on_and_sends_segments_when_it_is(
    switched_on: bool, catalog: Catalog, lines: list[str]
) -> None:
    env = {"POWERTOOLS_TRACE_DISABLED": "false"} if switched_on else {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:  # stands in for the X-Ray daemon (UDP)
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(5.0)
        env["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{daemon.getsockname()[1]}"
        probe = "tests.support.handlers.xray_probe_handler"
        with runtime(catalog, lines, probe, tracing=True, **env) as lam:  # Lambda's active tracing: all sampled
            result = lam.invoke(s3_notification("traced.jpg"))
        assert result.error is None, result.error
        assert result.response["response"]["outcomes"] == {"created": 1}
        assert result.response["xray_loaded"] is switched_on
        if switched_on:  # the handler's subsegment reached the daemon, beside those of the patched libraries
            names = set()
            while "## _handle" not in names:
                _header, _, segment = daemon.recv(65536).decode().partition("\n")
                names.add(json.loads(segment)["name"])
            assert any(name.endswith("catalog.sqlite") for name in names), names
