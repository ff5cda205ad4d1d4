"""The AWS Lambda function: ``handlers.aws.lambda_handler``.

One function takes every way S3 events reach Lambda, told apart by shape (``shared.events.aws``), and answers
each the way its invoker reads failures:

- SQS (S3→SQS, S3→SNS→SQS, S3→EventBridge→SQS): a partial batch response naming the messages to redeliver,
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
  (the event source mapping needs ``FunctionResponseTypes: [ReportBatchItemFailures]``). A malformed or unsupported
  message is logged with its reason, counted and acknowledged: it never poisons the batch.
- S3 Batch Operations ``LambdaInvoke`` (invocation schema 1.0 and 2.0): a result code per task,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html
- Direct S3 notifications, SNS and EventBridge (asynchronous invocations): raise when anything must be retried,
  so Lambda retries and then sends the event to the on-failure destination / DLQ,
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html

Observability is Powertools': ``Logger`` (JSON, one line per object outcome, correlation id), ``Metrics`` (EMF),
and ``Tracer`` only when switched on with ``POWERTOOLS_TRACE_DISABLED=false`` (tracing is off by default and then
costs nothing: the X-Ray SDK is not imported). https://docs.powertools.aws.dev/lambda/python/latest/
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from handlers import WarmInstance, outcome_level, raise_for_failures, summary
from shared.deadline import Deadline
from shared.decision import SkipReason
from shared.events.aws import LambdaEvent, LambdaSource, split_lambda_event
from shared.events.model import Cloud
from shared.ingest import SKIPPED, DeliveryResult, DeliveryStatus, Report
from shared.registries.base import RowStatus
from shared.settings import SettingsError

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "bucket-ingest"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "BucketIngest"
# The id that ties this invocation's lines to its source: Batch Operations invocation, EventBridge event,
# S3 request, SNS message. (SQS lines carry each message id as "delivery" instead.)
CORRELATION_ID_PATH = 'invocationId || id || Records[0].responseElements."x-amz-request-id" || Records[0].Sns.MessageId'
# Row outcome → EMF metric name. Skipped objects are counted as "Skipped", in total and with a "reason" dimension.
METRIC_NAMES: Mapping[str, str] = {
    RowStatus.CREATED: "Registered",
    RowStatus.UPSERTED: "Registered",
    RowStatus.UPDATED: "Updated",
    RowStatus.PRESENT: "Unchanged",
    RowStatus.DELETED: "Deleted",
    RowStatus.TAGGED: "Deleted",
    RowStatus.ABSENT: "Deleted",
    RowStatus.FAILED: "Failed",
}
# Delivery status → Batch Operations result code.
BATCH_RESULT_CODES: Mapping[DeliveryStatus, str] = {
    DeliveryStatus.DONE: "Succeeded",
    DeliveryStatus.RETRY: "TemporaryFailure",
    DeliveryStatus.FAILED: "PermanentFailure",
}
TRACE_DISABLED_FALSE = {"false", "0", "no", "off"}  # POWERTOOLS_TRACE_DISABLED values that switch tracing on

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
INSTANCE = WarmInstance(Cloud.AWS)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Register the objects of one invocation; answer in the invoker's failure format."""
    return _traced(_handle)(event, context)


def _handle(event: Any, context: Any) -> dict[str, Any]:
    deadline = Deadline.from_remaining_ms(context.get_remaining_time_in_millis())
    lambda_event = split_lambda_event(event)
    try:
        report = INSTANCE.ingest(lambda_event.deliveries, deadline)
    except SettingsError as exc:  # fails this invocation; the message names each bad variable
        logger.error("invalid configuration", extra={"error": str(exc)})
        metrics.add_metric(name="InvalidConfiguration", unit=MetricUnit.Count, value=1)  # something to alarm on
        raise
    _log(report, lambda_event.source)
    _count(report)
    return RESPONSES[lambda_event.source](lambda_event, report)


def _sqs_response(event: LambdaEvent, report: Report) -> dict[str, Any]:
    """Only messages with a failed row come back; the rest (registered or skipped) are deleted from the queue."""
    return {"batchItemFailures": [{"itemIdentifier": d.id} for d in report.failed()]}


def _batch_operations_response(event: LambdaEvent, report: Report) -> dict[str, Any]:
    return {
        "invocationSchemaVersion": event.invocation_schema_version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event.invocation_id,
        "results": [
            {"taskId": d.id, "resultCode": _result_code(d), "resultString": _result_string(d)}
            for d in report.deliveries
        ],
    }


def _async_response(event: LambdaEvent, report: Report) -> dict[str, Any]:
    raise_for_failures(report)
    return summary(report)


RESPONSES: Mapping[LambdaSource, Callable[[LambdaEvent, Report], dict[str, Any]]] = {
    LambdaSource.SQS: _sqs_response,
    LambdaSource.BATCH_OPERATIONS: _batch_operations_response,
    LambdaSource.ASYNC: _async_response,
}


def _result_code(delivery: DeliveryResult) -> str:
    # A task that can never be read is a permanent failure in the job's completion report, not a silent success.
    unreadable = any(o.status == SKIPPED and o.reason == SkipReason.UNSUPPORTED_EVENT for o in delivery.outcomes)
    return "PermanentFailure" if unreadable else BATCH_RESULT_CODES[delivery.status]


def _result_string(delivery: DeliveryResult) -> str:
    return (
        "; ".join(" ".join(filter(None, (o.status, o.reason, o.detail))) for o in delivery.outcomes)
        or "no object in this task"
    )


def _log(report: Report, source: LambdaSource) -> None:
    write = {logging.WARNING: logger.warning, logging.ERROR: logger.error}
    for outcome in report.outcomes:
        fields = {"source": source.value, **outcome.log_fields()}
        write.get(outcome_level(outcome), logger.info)("object outcome", extra=fields)
    logger.info("invocation done", extra={"source": source.value, **summary(report)})


def _count(report: Report) -> None:
    rows: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for outcome in report.outcomes:
        if outcome.status == SKIPPED:
            skipped[outcome.reason] += 1
        else:
            rows[METRIC_NAMES.get(outcome.status, outcome.status)] += 1
    if skipped:
        rows["Skipped"] = skipped.total()
    for name, count in rows.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    for reason, count in skipped.items():  # one EMF document each: a dimension applies to a whole document
        with single_metric(
            name="Skipped",
            unit=MetricUnit.Count,
            value=count,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="reason", value=reason)


@functools.cache
def _traced(handle: Callable[[Any, Any], dict[str, Any]]) -> Callable[[Any, Any], dict[str, Any]]:
    """The handler under X-Ray when tracing is switched on; built on the first invocation, never at import."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() not in TRACE_DISABLED_FALSE:
        return handle
    if importlib.util.find_spec("aws_xray_sdk") is None:  # Powertools' "tracer" extra; ingest without it
        logger.warning("tracing is switched on but aws-xray-sdk is not installed: running untraced")
        return handle
    from aws_lambda_powertools import Tracer

    traced: Callable[[Any, Any], dict[str, Any]] = Tracer(service=SERVICE).capture_lambda_handler(handle)
    return traced
