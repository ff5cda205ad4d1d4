"""Amazon S3 events, in every envelope a deployment sees.

- S3 event notification ``Records`` (direct, or as the body of an SQS message):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
  ``s3.object.key`` is form-URL-encoded ("red flower.jpg" arrives as "red+flower.jpg"), so it is decoded with
  ``unquote_plus``; some emitters also encode ``/`` as ``%2F`` (moto, old S3), which decodes the same way.
- ``s3:TestEvent``, sent when a notification configuration is saved (same page): no object, no error.
- SNS: ``Records[].Sns.Message`` for Lambda subscriptions, ``{"Type": "Notification", "Message": ...}`` as the
  body of an SQS message; with raw message delivery the body is the S3 JSON itself.
  https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
- EventBridge ``Object Created`` / ``Object Deleted`` (direct, or as an SQS body):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html ; the key is URL-encoded like the
  notification's (as AWS-recorded LocalStack snapshots and Powertools' ``S3EventBridgeNotificationObject.key``
  show), fields are ``etag`` and ``version-id``.
- S3 Batch Operations ``LambdaInvoke`` tasks, invocation schema 1.0 (``s3BucketArn``) and 2.0 (``s3Bucket``):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html ; keys are URL-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from shared.events.fields import (
    EventShapeError,
    as_object,
    child,
    guarded,
    keys_of,
    optional_int,
    optional_text,
    shown,
    text,
)
from shared.events.model import NO_METADATA, Cloud, Delivery, EventKind, ObjectEvent, ParsedEvent, UnsupportedEvent

_AWS = Cloud.AWS  # a module constant: enum attribute look-ups cost on the per-object path

# S3 event names (without the optional "s3:" prefix) → kind; first matching prefix wins.
S3_EVENT_KINDS: tuple[tuple[str, EventKind], ...] = (
    ("ObjectCreated:", EventKind.CREATED),
    ("ObjectRemoved:", EventKind.DELETED),
    ("LifecycleExpiration:", EventKind.DELETED),  # Delete, DeleteMarkerCreated
)

# EventBridge detail-type → kind; every other S3 detail-type (restore, tags, ACL, storage class) is ignored.
EVENTBRIDGE_KINDS: Mapping[str, EventKind] = {
    "Object Created": EventKind.CREATED,
    "Object Deleted": EventKind.DELETED,
}


class LambdaSource(StrEnum):
    """How the Lambda function was invoked, which decides how it signals failure."""

    SQS = "sqs"  # partial batch response: batchItemFailures
    BATCH_OPERATIONS = "batch-operations"  # per-task result codes
    ASYNC = "async"  # direct S3 / SNS / EventBridge invocation: raise to retry the whole event


@dataclass(frozen=True, slots=True)
class LambdaEvent:
    source: LambdaSource
    deliveries: tuple[Delivery, ...]
    invocation_schema_version: str | None = None  # Batch Operations only
    invocation_id: str | None = None  # Batch Operations only


def split_lambda_event(event: Any) -> LambdaEvent:
    """Tell a Lambda invocation's shape apart and cut it into the units the platform retries."""
    if isinstance(event, dict) and "tasks" in event and "invocationSchemaVersion" in event:
        return _batch_operations(event)
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and all(_is_sqs_record(r) for r in records):
        return LambdaEvent(
            LambdaSource.SQS,
            tuple(Delivery(str(r.get("messageId") or ""), tuple(parse_message(r.get("body")))) for r in records),
        )
    return LambdaEvent(LambdaSource.ASYNC, (Delivery("event", tuple(parse_message(event))),))


def parse_message(message: Any) -> list[ParsedEvent]:
    """Every object event in one notification (S3 Records, test event, SNS envelope or EventBridge event)."""
    try:
        body = as_object(message, "message")
    except EventShapeError as exc:
        return [UnsupportedEvent(str(exc))]
    records = body.get("Records")
    if type(records) is list:
        events: list[ParsedEvent] = []
        for record in records:
            if type(record) is dict and "s3" in record:  # the common case, without _parse_record's dispatch
                events.append(guarded(_s3_record, record))
            else:
                events.extend(_parse_record(record))
        return events
    if body.get("Event") == "s3:TestEvent":
        return [_test_event(body)]
    if "Type" in body and "Message" in body:
        if body["Type"] != "Notification":
            return [UnsupportedEvent(f"SNS {shown(body['Type'])} message, not a Notification")]
        return parse_message(body["Message"])
    if "detail-type" in body:
        return [guarded(_eventbridge, body)]
    return [UnsupportedEvent(f"not an S3 event: an object with keys {keys_of(body)}")]


def _parse_record(record: Any) -> list[ParsedEvent]:
    if not isinstance(record, dict):
        return [UnsupportedEvent(f"a record should be a JSON object, got {shown(record)}")]
    if "s3" in record:
        return [guarded(_s3_record, record)]
    if isinstance(record.get("Sns"), dict):
        return parse_message(record["Sns"].get("Message"))
    if "body" in record:
        return parse_message(record["body"])
    source = record.get("eventSource") or record.get("EventSource")
    return [UnsupportedEvent(f"record from {shown(source)} is not an S3 event (keys {keys_of(record)})")]


def _s3_record(record: Mapping[str, Any]) -> ObjectEvent:
    s3 = child(record, "s3", "record")
    obj = child(s3, "object", "record.s3")
    bucket = text(child(s3, "bucket", "record.s3"), "name", "record.s3.bucket")
    key = _decode_key(text(obj, "key", "record.s3.object"))
    name = optional_text(record, "eventName")
    kind, reason = _kind_from_name(name)
    region, time = optional_text(record, "awsRegion"), optional_text(record, "eventTime")
    size, etag = optional_int(obj, "size"), optional_text(obj, "eTag")
    version, sequencer = optional_text(obj, "versionId"), optional_text(obj, "sequencer")
    # Positional, in ObjectEvent's field order: one of these is built per object on the hottest path, and keyword
    # arguments cost a third of the construction (benchmarks/bench_core_throughput.py).
    return ObjectEvent(
        _AWS, kind, bucket, key, None, region, size, etag, version, None, NO_METADATA, time, sequencer, name,
        None, None, reason,
    )  # fmt: skip


@lru_cache(maxsize=256)  # a handful of names in practice; parsed once each per warm instance
def _kind_from_name(name: str | None) -> tuple[EventKind, str]:
    if name is None:
        return (
            EventKind.IGNORED,
            "the record has no eventName, so it cannot tell a created object from a deleted one",
        )
    bare = name.removeprefix("s3:")
    for prefix, kind in S3_EVENT_KINDS:
        if bare.startswith(prefix):
            return kind, ""
    return EventKind.IGNORED, f"{name} does not change the object's content"


def _test_event(body: Mapping[str, Any]) -> ObjectEvent:
    return ObjectEvent(
        cloud=Cloud.AWS,
        kind=EventKind.TEST,
        bucket=str(body.get("Bucket") or ""),
        time=optional_text(body, "Time"),
        name="s3:TestEvent",
        reason="S3 sends this test message when a notification configuration is saved",
    )


def _eventbridge(body: Mapping[str, Any]) -> ObjectEvent:
    if body.get("source") != "aws.s3":
        raise EventShapeError(f"EventBridge event from {shown(body.get('source'))}, not aws.s3")
    detail_type = text(body, "detail-type", "event")
    detail = child(body, "detail", "event")
    obj = child(detail, "object", "event.detail")
    kind = EVENTBRIDGE_KINDS.get(detail_type, EventKind.IGNORED)
    return ObjectEvent(
        cloud=Cloud.AWS,
        kind=kind,
        bucket=text(child(detail, "bucket", "event.detail"), "name", "event.detail.bucket"),
        key=_decode_key(text(obj, "key", "event.detail.object")),
        account=optional_text(body, "account"),
        region=optional_text(body, "region"),
        size=optional_int(obj, "size"),
        etag=optional_text(obj, "etag") or optional_text(obj, "eTag"),
        version=optional_text(obj, "version-id"),
        time=optional_text(body, "time"),
        sequencer=optional_text(obj, "sequencer"),
        name=detail_type,
        reason="" if kind is not EventKind.IGNORED else f"{detail_type} does not change the object's content",
    )


def _batch_operations(event: Mapping[str, Any]) -> LambdaEvent:
    version = str(event.get("invocationSchemaVersion"))
    tasks = event.get("tasks")
    if not isinstance(tasks, Sequence) or isinstance(tasks, str):
        tasks = []
    deliveries = tuple(
        Delivery(str(task.get("taskId") or "") if isinstance(task, Mapping) else "", (guarded(_task, task),))
        for task in tasks
    )
    return LambdaEvent(
        LambdaSource.BATCH_OPERATIONS,
        deliveries,
        invocation_schema_version=version,
        invocation_id=optional_text(event, "invocationId"),
    )


def _task(task: Any) -> ObjectEvent:
    task = as_object(task, "task")
    if "s3Bucket" in task:  # invocation schema 2.0
        bucket = text(task, "s3Bucket", "task")
    else:  # 1.0: arn:aws:s3:::bucket
        bucket = text(task, "s3BucketArn", "task").rsplit(":", 1)[-1]
    return ObjectEvent(
        cloud=Cloud.AWS,
        kind=EventKind.CREATED,
        bucket=bucket,
        key=_decode_key(text(task, "s3Key", "task")),
        version=optional_text(task, "s3VersionId"),
        name="BatchOperations:LambdaInvoke",
    )


def _decode_key(raw: str) -> str:
    if "%" not in raw and "+" not in raw:  # nothing encoded: most keys
        return raw
    try:
        return unquote_plus(raw, errors="strict")
    except UnicodeDecodeError:
        raise EventShapeError(f"object key {shown(raw)} is not URL-encoded UTF-8") from None


def _is_sqs_record(record: Any) -> bool:
    return isinstance(record, dict) and record.get("eventSource") == "aws:sqs"
