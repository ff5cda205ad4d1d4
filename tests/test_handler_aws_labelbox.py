"""The AWS function registering in Labelbox (the local Labelbox-compatible endpoint), whose faults show how the
function hands registry failures back to Lambda: retryable ones for redelivery, refused rows for the DLQ."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bucket_ingest.commands.invoke import lambda_context
from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, LabelboxEndpoint
from handlers import RedeliveryRequested, aws
from tests.support.handlers import (
    batch_operations_event,
    batch_task,
    configured_function,
    json_lines,
    outcome_lines,
    powertools_log,
    s3_notification,
    sqs_event,
)
from tests.support.labelbox import (
    dataset_id_fixture,  # noqa: F401 (fixture)
    labelbox_endpoint_fixture,  # noqa: F401 (fixture)
    labelbox_settings,
)


@pytest.fixture
def endpoint(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LabelboxEndpoint]:
    """The local Labelbox endpoint, and the function registering in a dataset of it."""
    with configured_function(aws, monkeypatch, tmp_path, **labelbox_settings(labelbox_endpoint, dataset_id)):
        yield labelbox_endpoint


@pytest.fixture
def logs(endpoint: LabelboxEndpoint) -> Iterator[io.StringIO]:
    with powertools_log(aws.logger) as stream:
        yield stream


def call(event: object, timeout_s: float = 4.0) -> object:  # 2 s for the registry after the margin
    return aws.lambda_handler(event, lambda_context(timeout_s))


def registered(endpoint: LabelboxEndpoint) -> list[str]:
    return sorted(row["global_key"] for row in endpoint.store.rows())


def test_an_sqs_batch_becomes_labelbox_rows(endpoint: LabelboxEndpoint, logs: io.StringIO) -> None:
    assert call(sqs_event(s3_notification("a.jpg"), s3_notification("b.jpg"))) == {"batchItemFailures": []}
    assert registered(endpoint) == ["aws:ingest-bucket/a.jpg", "aws:ingest-bucket/b.jpg"]
    assert [o["outcome"] for o in outcome_lines(json_lines(logs.getvalue()))] == ["upserted", "upserted"]
    assert DEFAULT_API_KEY not in logs.getvalue()


def test_an_outage_sends_the_messages_back_and_a_redelivery_registers_them(
    endpoint: LabelboxEndpoint, logs: io.StringIO
) -> None:
    event = sqs_event(s3_notification("a.jpg"), "not json", s3_notification("b.jpg"))
    endpoint.set_faults(error_rate=1.0, error_status=503)
    assert call(event) == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}]}
    failed = [o for o in outcome_lines(json_lines(logs.getvalue())) if o["outcome"] == "failed"]
    assert len(failed) == 2 and all(o["retryable"] for o in failed)
    assert registered(endpoint) == []
    endpoint.set_faults(error_rate=0.0)
    assert call(event) == {"batchItemFailures": []}
    assert registered(endpoint) == ["aws:ingest-bucket/a.jpg", "aws:ingest-bucket/b.jpg"]


def test_throttling_within_the_deadline_is_retried_by_the_registry_not_the_platform(
    endpoint: LabelboxEndpoint, logs: io.StringIO
) -> None:
    endpoint.set_faults(throttle_rate=0.5, retry_after=0.1, seed=3)
    assert call(sqs_event(s3_notification("a.jpg")), timeout_s=30.0) == {"batchItemFailures": []}
    assert registered(endpoint) == ["aws:ingest-bucket/a.jpg"]
    assert any(entry["fault"] for entry in endpoint.requests()), "the endpoint did throttle"


def test_a_row_labelbox_refuses_goes_back_for_the_dead_letter_queue_alone(
    endpoint: LabelboxEndpoint, logs: io.StringIO
) -> None:
    endpoint.set_faults(reject={"aws:ingest-bucket/refused.jpg": "Invalid row data: unsupported URL"})
    response = call(sqs_event(s3_notification("fine.jpg"), s3_notification("refused.jpg")))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    (refused,) = [o for o in outcome_lines(json_lines(logs.getvalue())) if o["outcome"] == "failed"]
    assert refused["retryable"] is False and refused["level"] == "ERROR"
    assert "Invalid row data: unsupported URL" in refused["detail"]
    assert registered(endpoint) == ["aws:ingest-bucket/fine.jpg"]


def test_batch_operations_tell_temporary_from_permanent_failures(endpoint: LabelboxEndpoint, logs: io.StringIO) -> None:
    endpoint.set_faults(reject={"aws:ingest-bucket/refused.jpg": "Invalid row data: unsupported URL"})
    tasks = [batch_task(key, version="2.0", task_id=key) for key in ("fine.jpg", "refused.jpg")]
    response = call(batch_operations_event("2.0", *tasks))
    codes = {r["taskId"]: r["resultCode"] for r in response["results"]}  # type: ignore[index]
    assert codes == {"fine.jpg": "Succeeded", "refused.jpg": "PermanentFailure"}
    endpoint.set_faults(reject={}, error_rate=1.0)
    response = call(batch_operations_event("2.0", batch_task("later.jpg", version="2.0", task_id="later")))
    assert [r["resultCode"] for r in response["results"]] == ["TemporaryFailure"]  # type: ignore[index]


def test_a_direct_invocation_raises_while_labelbox_is_down(endpoint: LabelboxEndpoint, logs: io.StringIO) -> None:
    endpoint.set_faults(error_rate=1.0, error_status=502)
    with pytest.raises(RedeliveryRequested, match=r"aws://ingest-bucket/a\.jpg"):
        call(s3_notification("a.jpg"))
    assert DEFAULT_API_KEY not in logs.getvalue()
