"""The AWS path of the local pipeline on moto: the one shim for moto's EventBridge events, and Lambda's SQS event
source mapping (batching, partial batch responses, redrive to the dead-letter queue)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bucket_ingest.emulators import Moto
from bucket_ingest.pipeline.aws import (
    AwsResources,
    SqsEventSourceMapping,
    create_resources,
    eventbridge_body_as_aws_sends_it,
    failed_message_ids,
)
from bucket_ingest.pipeline.functions import Invocation
from shared.events.aws import parse_message
from shared.events.model import EventKind, ObjectEvent
from tests.support.handlers import wait_for
from tests.support.pipeline import Emulators, emulators_fixture  # noqa: F401 (fixture)

AWKWARD_KEY = "dir/a b+c%41 é.txt"  # '+' and '%41' are where raw and encoded keys part ways


@pytest.fixture
def moto(emulators: Emulators) -> Moto:
    return emulators[0]


def resources(moto: Moto, max_receive_count: int = 3, visibility_timeout: int = 1) -> AwsResources:
    return create_resources(
        moto.client("s3"),
        moto.client("sqs"),
        moto.client("events"),
        f"t-{uuid.uuid4().hex[:8]}",
        visibility_timeout=visibility_timeout,
        max_receive_count=max_receive_count,
        region=moto.region,
        account_id=moto.account_id,
    )


def drain(moto: Moto, queue_url: str, expect: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    sqs, messages = moto.client("sqs"), []
    end = time.monotonic() + timeout
    while len(messages) < expect and time.monotonic() < end:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        messages += got
    return messages


def only_object(body: str) -> ObjectEvent:
    events = parse_message(body)
    assert len(events) == 1 and isinstance(events[0], ObjectEvent), events
    return events[0]


def test_moto_sends_eventbridge_keys_raw_and_the_shim_encodes_them_as_aws_does(moto: Moto) -> None:
    aws = resources(moto)
    drain(moto, aws.queue_url, expect=1)  # the s3:TestEvent of the direct notification
    moto.client("s3").put_object(Bucket=aws.eventbridge_bucket, Key=AWKWARD_KEY, Body=b"hello")
    [message] = drain(moto, aws.queue_url, expect=1)
    raw = json.loads(message["Body"])

    # moto's quirk, the reason for the shim: if this fails, moto encodes keys now and the shim must go
    assert raw["detail"]["object"]["key"] == AWKWARD_KEY
    assert "eTag" in raw["detail"]["object"]
    # without the shim the function would register another key: '+' → ' ' and '%41' → 'A'
    assert only_object(message["Body"]).key == "dir/a b cA é.txt"

    shimmed = eventbridge_body_as_aws_sends_it(message["Body"])
    detail = json.loads(shimmed)["detail"]["object"]
    assert detail["key"] == "dir/a%20b%2Bc%2541%20%C3%A9.txt"
    assert detail["etag"] == raw["detail"]["object"]["eTag"]
    event = only_object(shimmed)
    assert (event.kind, event.bucket, event.key) == (EventKind.CREATED, aws.eventbridge_bucket, AWKWARD_KEY)
    assert event.size == 5


def test_the_shim_leaves_s3_notifications_and_test_events_alone(moto: Moto) -> None:
    aws = resources(moto)
    moto.client("s3").put_object(Bucket=aws.notification_bucket, Key=AWKWARD_KEY, Body=b"hello")
    test_event, notification = drain(moto, aws.queue_url, expect=2)
    for message in (test_event, notification):
        assert eventbridge_body_as_aws_sends_it(message["Body"]) == message["Body"]
    assert only_object(test_event["Body"]).kind is EventKind.TEST
    assert only_object(notification["Body"]).key == AWKWARD_KEY  # moto's S3 notifications are quote_plus-encoded


@pytest.mark.parametrize(
    ("invocation", "stays"),
    [
        (Invocation("r", True, response={"batchItemFailures": []}), set()),
        (Invocation("r", True, response={"batchItemFailures": None}), set()),
        (Invocation("r", True, response=None), set()),
        (Invocation("r", True, response={}), set()),
        (Invocation("r", True, response={"batchItemFailures": [{"itemIdentifier": "b"}]}), {"b"}),
        (Invocation("r", True, response={"batchItemFailures": [{"itemIdentifier": "zzz"}]}), {"a", "b", "c"}),
        (Invocation("r", True, response={"batchItemFailures": [{"itemIdentifier": ""}]}), {"a", "b", "c"}),
        (Invocation("r", True, response={"batchItemFailures": [{"id": "b"}]}), {"a", "b", "c"}),
        (Invocation("r", True, response={"batchItemFailures": "b"}), {"a", "b", "c"}),
        (Invocation("r", True, response="not an object"), {"a", "b", "c"}),
        (Invocation("r", False, error={"errorType": "ValueError", "errorMessage": "boom"}), {"a", "b", "c"}),
    ],
)
def test_which_messages_stay_after_an_invocation(invocation: Invocation, stays: set[str]) -> None:
    """As Lambda reads a partial batch response: an invalid one fails the whole batch."""
    assert failed_message_ids(invocation, ["a", "b", "c"]) == stays


class RecordingFunction:
    """The function under the poller: records each batch, fails the message ids ``fail`` returns."""

    def __init__(self, fail: Any = lambda record: False, error: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail = fail
        self.error = error
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> Invocation:
        with self.lock:
            self.batches.append(event["Records"])
        if self.error:
            return Invocation("r", False, error={"errorType": "RuntimeError", "errorMessage": "down"})
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if self.fail(r)]
        return Invocation("r", True, response={"batchItemFailures": failures})

    def bodies(self) -> list[str]:
        with self.lock:
            return [json.loads(r["body"])["n"] for batch in self.batches for r in batch]


@pytest.fixture
def queue(moto: Moto) -> Iterator[AwsResources]:
    aws = resources(moto, max_receive_count=3, visibility_timeout=1)
    drain(moto, aws.queue_url, expect=1)  # the TestEvent
    yield aws


def send(moto: Moto, aws: AwsResources, count: int) -> None:
    sqs = moto.client("sqs")
    for n in range(count):
        sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps({"n": n}))


def mapping(moto: Moto, aws: AwsResources, function: RecordingFunction, **options: Any) -> SqsEventSourceMapping:
    return SqsEventSourceMapping(
        lambda: moto.client("sqs"), aws.queue_url, aws.queue_arn, moto.region, function, **options
    )


def queue_depth(moto: Moto, url: str) -> int:
    attributes = moto.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_batches_follow_batch_size_and_the_batching_window(moto: Moto, queue: AwsResources) -> None:
    send(moto, queue, 7)
    function = RecordingFunction()
    esm = mapping(moto, queue, function, batch_size=5, batching_window=0.5)
    esm.start()
    try:
        assert wait_for(lambda: len(function.bodies()) == 7, timeout=20.0)
    finally:
        esm.stop()
    assert [len(b) for b in function.batches] == [5, 2]
    record = function.batches[0][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == queue.queue_arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"messageId", "receiptHandle", "md5OfBody", "awsRegion", "messageAttributes"} <= set(record)
    assert queue_depth(moto, queue.queue_url) == 0


def test_only_the_named_failures_come_back_and_a_poison_message_ends_in_the_dlq(
    moto: Moto, queue: AwsResources
) -> None:
    send(moto, queue, 4)
    function = RecordingFunction(fail=lambda r: json.loads(r["body"])["n"] == 2)
    esm = mapping(moto, queue, function, batch_size=10)
    esm.start()
    try:
        assert wait_for(lambda: queue_depth(moto, queue.dlq_url) == 1, timeout=20.0)
    finally:
        esm.stop()
    assert sorted(function.bodies()) == [0, 1, 2, 2, 2, 3]  # maxReceiveCount 3: received three times
    receive_counts = [r["attributes"]["ApproximateReceiveCount"] for b in function.batches for r in b]
    assert sorted(receive_counts) == ["1", "1", "1", "1", "2", "3"]
    [dead] = moto.client("sqs").receive_message(QueueUrl=queue.dlq_url).get("Messages", [])
    assert json.loads(dead["Body"]) == {"n": 2}
    assert queue_depth(moto, queue.queue_url) == 0
    assert (esm.stats.deleted, esm.stats.returned) == (3, 3)


def test_a_function_error_returns_the_whole_batch(moto: Moto, queue: AwsResources) -> None:
    send(moto, queue, 3)
    function = RecordingFunction(error=True)
    esm = mapping(moto, queue, function)
    esm.start()
    try:
        assert wait_for(lambda: len(function.batches) >= 2, timeout=20.0)
    finally:
        esm.stop()
    first, second = function.batches[:2]
    assert len(first) == 3 and {r["attributes"]["ApproximateReceiveCount"] for r in second} == {"2"}
    assert esm.stats.function_errors >= 2 and esm.stats.deleted == 0
    assert "RuntimeError: down" in esm.stats.last_error


def test_duplicates_leave_handled_messages_for_one_more_delivery(moto: Moto, queue: AwsResources) -> None:
    send(moto, queue, 3)
    function = RecordingFunction()
    esm = mapping(moto, queue, function, duplicates=1.0, seed=1)
    esm.start()
    try:
        assert wait_for(lambda: len(function.bodies()) == 6 and queue_depth(moto, queue.queue_url) == 0, timeout=20.0)
    finally:
        esm.stop()
    assert sorted(function.bodies()) == [0, 0, 1, 1, 2, 2]
    assert esm.stats.duplicated == 3
