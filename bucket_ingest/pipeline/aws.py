"""The AWS path: S3 → SQS (and S3 → EventBridge → SQS) → Lambda's SQS event source mapping → the function.

``create_resources`` builds what a deployment has: a queue with a redrive policy to a dead-letter queue, a
bucket notifying the queue directly, and a bucket sending to EventBridge with a rule targeting the same queue.
``SqsEventSourceMapping`` then does what Lambda's poller does
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html ,
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html):

- long-polls the queue and gathers up to ``batch_size`` messages, waiting up to ``batching_window`` seconds
  once the first one is in (MaximumBatchingWindowInSeconds);
- invokes the function synchronously with the SQS event (``Records`` of ``aws:sqs`` messages);
- with ReportBatchItemFailures, deletes every message but those the response names in ``batchItemFailures``;
  a malformed response, or a function error, leaves the whole batch to come back after the queue's visibility
  timeout;
- the queue's own redrive policy (SQS, not the poller) moves a message that was received ``maxReceiveCount``
  times to the dead-letter queue.

``duplicates`` makes the poller leave that fraction of successfully handled messages in the queue on their first
receive, so SQS delivers them again (standard queues are at-least-once).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bucket_ingest.pipeline.functions import Invocation

S3_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
EVENTBRIDGE_DETAIL_TYPES = ("Object Created", "Object Deleted")
MAX_RECEIVE = 10  # SQS ReceiveMessage returns at most 10 messages per call
POLL_WAIT_S = 1  # long-poll wait of an empty receive: short, so that stop() is quick


@dataclass(frozen=True, slots=True)
class AwsResources:
    """What ``create_resources`` made, by name."""

    notification_bucket: str  # S3 event notifications → the queue
    eventbridge_bucket: str  # S3 → EventBridge → rule → the queue
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    rule: str


def create_resources(
    s3: Any,
    sqs: Any,
    events: Any,
    prefix: str,
    *,
    visibility_timeout: int,
    max_receive_count: int,
    region: str,
    account_id: str,
) -> AwsResources:
    """Two buckets feeding one queue (directly, and through EventBridge), and the queue's dead-letter queue."""
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = f"arn:aws:sqs:{region}:{account_id}:{prefix}-dlq"
    queue_name = f"{prefix}-events"
    queue_arn = f"arn:aws:sqs:{region}:{account_id}:{queue_name}"
    # The policy real S3 and EventBridge need to send to the queue (moto does not check it; AWS does).
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["s3.amazonaws.com", "events.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            }
        ],
    }
    queue_url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
            "Policy": json.dumps(policy),
        },
    )["QueueUrl"]
    notification_bucket, eventbridge_bucket = f"{prefix}-s3", f"{prefix}-eb"
    for bucket in (notification_bucket, eventbridge_bucket):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=notification_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"Id": "bucket-ingest", "QueueArn": queue_arn, "Events": list(S3_EVENTS)}]
        },
    )
    s3.put_bucket_notification_configuration(
        Bucket=eventbridge_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    rule = f"{prefix}-objects"
    pattern = {
        "source": ["aws.s3"],
        "detail-type": list(EVENTBRIDGE_DETAIL_TYPES),
        "detail": {"bucket": {"name": [eventbridge_bucket]}},
    }
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return AwsResources(notification_bucket, eventbridge_bucket, queue_url, queue_arn, dlq_url, dlq_arn, rule)


def eventbridge_body_as_aws_sends_it(body: str) -> str:
    """moto's S3 → EventBridge events, made to look like AWS's before the function sees them. The one shim.

    moto (5.2.5) writes ``detail.object.key`` raw ("a b+c.txt") and names the entity tag ``eTag``. AWS sends the
    key URL-encoded, as in S3 notifications (AWS-recorded LocalStack snapshots show "a%20b%2Bc.txt"), and
    ``etag`` (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html); the function decodes the
    key with ``unquote_plus``, as Powertools does, so a raw '+' would become a space and a raw '%41' an 'A'.
    Any other body is returned unchanged. ``tests/test_pipeline_aws.py`` fails if moto starts encoding keys.
    """
    try:
        event = json.loads(body)
    except ValueError:
        return body
    detail = event.get("detail") if isinstance(event, dict) and event.get("source") == "aws.s3" else None
    obj = detail.get("object") if isinstance(detail, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        return body
    obj["key"] = quote(obj["key"], safe="/")
    if "eTag" in obj and "etag" not in obj:
        obj["etag"] = obj.pop("eTag")
    return json.dumps(event, ensure_ascii=False)


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message as Lambda's SQS event carries it (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": eventbridge_body_as_aws_sends_it(message["Body"]),
        "attributes": {
            name: attributes[name]
            for name in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
            if name in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_message_ids(invocation: Invocation, message_ids: Sequence[str]) -> set[str]:
    """The messages that stay in the queue after an invocation: all of them unless the function answered with
    a valid partial batch response (an empty or absent ``batchItemFailures`` means all succeeded)."""
    everything = set(message_ids)
    if not invocation.ok:
        return everything
    response = invocation.response
    if response is None:
        return set()
    if not isinstance(response, dict):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    named = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything  # Lambda treats an invalid identifier as a failure of the whole batch
        named.add(identifier)
    return named


@dataclass
class MappingStats:
    invocations: int = 0
    function_errors: int = 0
    messages: int = 0
    deleted: int = 0
    returned: int = 0  # left in the queue to come back (failures)
    duplicated: int = 0  # left in the queue on purpose after a success
    last_error: str = ""


class SqsEventSourceMapping:
    """Lambda's SQS poller for one queue and one function (``invoke``), with ``concurrency`` pollers."""

    def __init__(
        self,
        sqs_client: Callable[[], Any],
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Callable[[dict[str, Any]], Invocation],
        *,
        batch_size: int = 10,
        batching_window: float = 0.0,
        concurrency: int = 1,
        duplicates: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size is 1 to 10000 (Lambda's limit for standard queues)")
        if not 0 <= batching_window <= 300:
            raise ValueError("batching_window is 0 to 300 seconds")
        self.stats = MappingStats()
        self._sqs_client = sqs_client
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._invoke = invoke
        self._batch_size = batch_size
        self._batching_window = batching_window
        self._concurrency = concurrency
        self._duplicates = duplicates
        self._random = random.Random(seed)  # noqa: S311 (test traffic shaping, not security)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqsEventSourceMapping({self._queue_arn}, batch_size={self._batch_size})"

    def start(self) -> None:
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._poll, name=f"sqs-poller-{i}", daemon=True) for i in range(self._concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(POLL_WAIT_S + 65)
        self._threads = []

    def _poll(self) -> None:
        sqs = self._sqs_client()
        while not self._stopping.is_set():
            try:
                batch = self._gather(sqs)
                if batch:
                    self._handle(sqs, batch)
            except Exception as exc:  # the poller keeps polling, as Lambda's does; the error is kept for display
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self._stopping.wait(1.0)

    def _receive(self, sqs: Any, count: int, wait: int) -> list[dict[str, Any]]:
        response = sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=min(MAX_RECEIVE, count),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _gather(self, sqs: Any) -> list[dict[str, Any]]:
        batch = self._receive(sqs, self._batch_size, POLL_WAIT_S)
        if not batch:
            return []
        window_end = time.monotonic() + self._batching_window
        while len(batch) < self._batch_size and not self._stopping.is_set():
            if time.monotonic() >= window_end:
                break
            more = self._receive(sqs, self._batch_size - len(batch), 0)
            if more:
                batch.extend(more)
            else:
                self._stopping.wait(min(0.05, max(0.0, window_end - time.monotonic())))
        return batch

    def _handle(self, sqs: Any, batch: list[dict[str, Any]]) -> None:
        records = [sqs_record(m, self._queue_arn, self._region) for m in batch]
        invocation = self._invoke({"Records": records})
        ids = [m["MessageId"] for m in batch]
        stays = failed_message_ids(invocation, ids)
        done = [m for m in batch if m["MessageId"] not in stays]
        duplicated = [
            m
            for m in done
            if self._duplicates
            and m.get("Attributes", {}).get("ApproximateReceiveCount") == "1"
            and self._random.random() < self._duplicates
        ]
        to_delete = [m for m in done if m not in duplicated]
        for start in range(0, len(to_delete), MAX_RECEIVE):
            chunk = to_delete[start : start + MAX_RECEIVE]
            sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        with self._lock:
            self.stats.invocations += 1
            self.stats.messages += len(batch)
            self.stats.deleted += len(to_delete)
            self.stats.returned += len(stays)
            self.stats.duplicated += len(duplicated)
            if not invocation.ok:
                self.stats.function_errors += 1
                self.stats.last_error = invocation.error_message
