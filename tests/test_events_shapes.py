"""Envelopes beyond the vendor samples: the shapes emulators and real deployments produce, and bad input."""

from __future__ import annotations

import base64
import json

import pytest

from shared.events import aws, azure, gcp
from shared.events.aws import LambdaSource, split_lambda_event
from shared.events.model import EventKind, ObjectEvent, ParsedEvent, UnsupportedEvent
from tests import fixtures


def only(events: list[ParsedEvent]) -> ObjectEvent:
    (event,) = events
    assert isinstance(event, ObjectEvent), event
    return event


def unsupported(events: list[ParsedEvent]) -> str:
    (event,) = events
    assert isinstance(event, UnsupportedEvent), event
    return event.reason


def s3_record(raw_key: str, name: str = "ObjectCreated:Put") -> dict[str, object]:
    return {
        "eventSource": "aws:s3",
        "eventName": name,
        "awsRegion": "us-east-1",
        "s3": {"bucket": {"name": "bkt"}, "object": {"key": raw_key, "size": 5, "eTag": "e"}},
    }


# --- AWS -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("dir%2Fmy+file%2Bplus+%C3%A9+%C3%BC+%E6%97%A5%E6%9C%AC.txt", "dir/my file+plus é ü 日本.txt"),  # moto
        ("dir/my%20file%2Bplus%20%C3%A9.txt", "dir/my file+plus é.txt"),  # LocalStack, SAM
        ("100%25+done.png", "100% done.png"),
        ("a%3Db%3Bc%40d.jpg", "a=b;c@d.jpg"),
    ],
)
def test_s3_keys_decode_from_every_emitter(raw: str, key: str) -> None:
    assert only(aws.parse_message({"Records": [s3_record(raw)]})).key == key


def test_s3_key_that_is_not_utf8() -> None:
    assert "not URL-encoded UTF-8" in unsupported(aws.parse_message({"Records": [s3_record("%FF%FE.jpg")]}))


def test_s3_event_names() -> None:
    kinds = {
        name: only(aws.parse_message({"Records": [s3_record("k.jpg", name)]})).kind
        for name in (
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectCreated:Copy",
            "ObjectRemoved:DeleteMarkerCreated",
            "LifecycleExpiration:DeleteMarkerCreated",
            "ObjectRestore:Completed",
            "ObjectTagging:Put",
            "s3:ReducedRedundancyLostObject",
        )
    }
    assert kinds == {
        "ObjectCreated:CompleteMultipartUpload": EventKind.CREATED,
        "ObjectCreated:Copy": EventKind.CREATED,
        "ObjectRemoved:DeleteMarkerCreated": EventKind.DELETED,
        "LifecycleExpiration:DeleteMarkerCreated": EventKind.DELETED,
        "ObjectRestore:Completed": EventKind.IGNORED,
        "ObjectTagging:Put": EventKind.IGNORED,
        "s3:ReducedRedundancyLostObject": EventKind.IGNORED,
    }


def test_sqs_batch_keeps_good_messages_beside_bad_ones() -> None:
    event = {
        "Records": [
            {"eventSource": "aws:sqs", "messageId": "good", "body": json.dumps({"Records": [s3_record("a.jpg")]})},
            {"eventSource": "aws:sqs", "messageId": "not-json", "body": "{oops"},
            {"eventSource": "aws:sqs", "messageId": "other", "body": json.dumps({"hello": "world"})},
            {
                "eventSource": "aws:sqs",
                "messageId": "wrong-type",
                "body": json.dumps({"Records": [{"s3": {"bucket": {"name": 5}, "object": {"key": "k"}}}]}),
            },
            {
                "eventSource": "aws:sqs",
                "messageId": "sns-confirm",
                "body": json.dumps({"Type": "SubscriptionConfirmation", "Message": "..."}),
            },
            {
                "eventSource": "aws:sqs",
                "messageId": "test",
                "body": json.dumps(fixtures.load("aws-s3-test-event.json")),
            },
        ]
    }
    split = split_lambda_event(event)
    assert split.source is LambdaSource.SQS
    by_id = {d.id: d.events for d in split.deliveries}
    assert only(list(by_id["good"])).key == "a.jpg"
    assert "message is not JSON" in unsupported(list(by_id["not-json"]))
    assert "not an S3 event" in unsupported(list(by_id["other"]))
    assert "record.s3.bucket.name should be a non-empty string, got 5" in unsupported(list(by_id["wrong-type"]))
    assert "SubscriptionConfirmation" in unsupported(list(by_id["sns-confirm"]))
    assert only(list(by_id["test"])).kind is EventKind.TEST


def test_eventbridge_keys_are_url_encoded_like_notifications() -> None:
    body = fixtures.load("aws-eventbridge-s3-object-created.json")
    body["detail"]["object"]["key"] = "a+b%2Bc%25.jpg"
    assert only(aws.parse_message(body)).key == "a b+c%.jpg"


def test_eventbridge_other_sources_and_detail_types() -> None:
    body = fixtures.load("aws-eventbridge-s3-object-created.json")
    assert "not aws.s3" in unsupported(aws.parse_message({**body, "source": "aws.ec2"}))
    restored = only(aws.parse_message({**body, "detail-type": "Object Restore Completed"}))
    assert restored.kind is EventKind.IGNORED and "Object Restore Completed" in restored.reason


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_batch_operations_tasks(version: str) -> None:
    task = {"taskId": "t1", "s3Key": "dir/my%20file%2B1.jpg", "s3VersionId": None}
    task.update({"s3Bucket": "bkt"} if version == "2.0" else {"s3BucketArn": "arn:aws:s3:::bkt"})
    split = split_lambda_event(
        {
            "invocationSchemaVersion": version,
            "invocationId": "inv",
            "job": {"id": "j"},
            "tasks": [task, {"taskId": "t2"}],
        }
    )
    assert split.source is LambdaSource.BATCH_OPERATIONS
    assert (split.invocation_schema_version, split.invocation_id) == (version, "inv")
    good, bad = split.deliveries
    assert good.id == "t1" and only(list(good.events)).key == "dir/my file+1.jpg"
    assert only(list(good.events)).bucket == "bkt"
    assert bad.id == "t2" and "task.s3" in unsupported(list(bad.events))


def test_direct_invocations_are_one_delivery() -> None:
    for name in ("aws-s3-put.json", "aws-sns-s3-put.json", "aws-eventbridge-s3-object-created.json"):
        split = split_lambda_event(fixtures.load(name))
        assert split.source is LambdaSource.ASYNC and len(split.deliveries) == 1


def test_not_even_an_object() -> None:
    assert "should be a JSON object" in unsupported(aws.parse_message([1, 2]))
    assert split_lambda_event("text").deliveries[0].events[0] == UnsupportedEvent(
        "message is not JSON (JSONDecodeError: Expecting value: line 1 column 1 (char 0))"
    )


# --- GCP -------------------------------------------------------------------------------------------------------

RESOURCE = {
    "kind": "storage#object",
    "bucket": "bkt",
    "name": "dir/my file+é.jpg",
    "size": "9",
    "generation": "1700000000000001",
    "md5Hash": "XrY7u+Ae7tCTyyK7j1rNww==",
    "contentType": "image/jpeg",
    "metadata": {"camera": "x", "n": 3},
}


def pubsub(event_type: str, data: dict[str, object] | None = RESOURCE, **attributes: str) -> dict[str, object]:
    message: dict[str, object] = {
        "attributes": {
            "eventType": event_type,
            "bucketId": "bkt",
            "objectId": "dir/my file+é.jpg",
            "objectGeneration": "1700000000000001",
            **attributes,
        },
        "messageId": "m1",
    }
    if data is not None:
        message["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    return message


def test_pubsub_notification_pulled_and_pushed() -> None:
    pulled = only(gcp.parse(pubsub("OBJECT_FINALIZE")))
    pushed = only(gcp.parse({"message": pubsub("OBJECT_FINALIZE"), "subscription": "projects/p/subscriptions/s"}))
    assert pulled == pushed
    assert (pulled.kind, pulled.bucket, pulled.key, pulled.size) == (EventKind.CREATED, "bkt", "dir/my file+é.jpg", 9)
    assert pulled.metadata == {"camera": "x", "n": "3"}
    assert pulled.etag == "XrY7u+Ae7tCTyyK7j1rNww==" and pulled.content_type == "image/jpeg"


def test_pubsub_payload_format_none_uses_attributes() -> None:
    event = only(gcp.parse(pubsub("OBJECT_FINALIZE", data=None, payloadFormat="NONE")))
    assert (event.bucket, event.key, event.version, event.size) == (
        "bkt",
        "dir/my file+é.jpg",
        "1700000000000001",
        None,
    )


def test_an_overwrite_is_not_a_delete() -> None:
    overwritten = only(gcp.parse(pubsub("OBJECT_DELETE", overwrittenByGeneration="1700000000000002")))
    assert overwritten.kind is EventKind.IGNORED and "overwritten by generation 1700000000000002" in overwritten.reason
    assert only(gcp.parse(pubsub("OBJECT_DELETE"))).kind is EventKind.DELETED
    assert only(gcp.parse(pubsub("OBJECT_ARCHIVE"))).kind is EventKind.IGNORED


def test_cloud_event_types() -> None:
    attributes = {
        "specversion": "1.0",
        "id": "1",
        "source": "//storage.googleapis.com/projects/_/buckets/bkt",
        "subject": "objects/x",
        "time": "2024-01-01T00:00:00Z",
    }
    kinds = {
        t: gcp.parse_cloud_event({**attributes, "type": f"google.cloud.storage.object.v1.{t}"}, RESOURCE).kind
        for t in ("finalized", "deleted", "archived", "metadataUpdated")
    }
    assert kinds == {
        "finalized": EventKind.CREATED,
        "deleted": EventKind.DELETED,
        "archived": EventKind.IGNORED,
        "metadataUpdated": EventKind.CREATED,
    }
    assert "not a Cloud Storage object event" in unsupported(
        gcp.parse({**attributes, "type": "google.cloud.pubsub.topic.v1.messagePublished", "data": {}})
    )


def test_gcp_bad_input() -> None:
    assert "not a Cloud Storage event" in unsupported(gcp.parse({"foo": 1}))
    assert "not base64" in unsupported(gcp.parse({"attributes": {"eventType": "OBJECT_FINALIZE"}, "data": "***"}))
    assert "'size' should be an integer" in unsupported(
        gcp.parse(pubsub("OBJECT_FINALIZE", {**RESOURCE, "size": "nine"}))
    )
    assert "object.name should be a non-empty string" in unsupported(
        gcp.parse(pubsub("OBJECT_FINALIZE", {"bucket": "bkt"}, objectId=""))
    )


# --- Azure -----------------------------------------------------------------------------------------------------


def blob_created(subject: str | None, url: str | None, **data: object) -> dict[str, object]:
    event: dict[str, object] = {
        "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "1",
        "eventTime": "2024-01-01T00:00:00Z",
        "data": {
            "api": "PutBlob",
            "contentLength": 3,
            "contentType": "image/png",
            "eTag": '"0x1"',
            "sequencer": "00000000000000000000000000000001",
            **({"url": url} if url else {}),
            **data,
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }
    if subject is not None:
        event["subject"] = subject
    return event


def test_blob_name_from_subject_as_text_and_from_url_decoded() -> None:
    subject = "/blobServices/default/containers/c/blobs/dir/my file+100%.png"
    url = "https://acct.blob.core.windows.net/c/dir/my%20file%2B100%25.png"
    from_subject = only(azure.parse([blob_created(subject, url)]))
    from_url = only(azure.parse([blob_created(None, url)]))
    assert from_subject.key == from_url.key == "dir/my file+100%.png"
    assert from_subject.etag == "0x1" and from_subject.account == "acct"


def test_garbled_subject_falls_back_to_the_url() -> None:
    event = blob_created(
        "/blobServices/default/containers/c/blobs/log_\ufffd\ufffd.txt",
        "https://acct.blob.core.windows.net/c/log_%F0%9F%92%8E.txt",
    )
    assert only(azure.parse(event)).key == "log_💎.txt"


def test_data_lake_and_sovereign_endpoints() -> None:
    flush = only(azure.parse(blob_created(None, "https://acct.dfs.core.windows.net/fs/a/b.png", api="FlushWithClose")))
    assert flush.kind is EventKind.CREATED and flush.endpoint == "blob.core.windows.net"
    china = only(azure.parse(blob_created(None, "https://acct.blob.core.chinacloudapi.cn/c/a.png")))
    assert china.endpoint == "blob.core.chinacloudapi.cn"
    emulator = only(azure.parse(blob_created(None, "http://127.0.0.1:10000/devstoreaccount1/c/a%20b.png")))
    assert (emulator.account, emulator.bucket, emulator.key) == ("devstoreaccount1", "c", "a b.png")


def test_azure_bad_input_keeps_good_events() -> None:
    good = blob_created(None, "https://acct.blob.core.windows.net/c/a.png")
    results = azure.parse(
        [
            good,
            {"eventType": "Microsoft.Storage.BlobCreated", "data": {}},
            7,
            {"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": {}},
        ]
    )
    assert isinstance(results[0], ObjectEvent)
    assert [type(r) for r in results[1:]] == [UnsupportedEvent] * 3
    assert "no container and blob" in results[1].reason  # type: ignore[union-attr]
    assert "not a Blob Storage event" in results[3].reason  # type: ignore[union-attr]
    assert "not JSON" in unsupported(azure.parse("[{"))


def test_subscription_validation_is_a_test_event() -> None:
    event = only(
        azure.parse(
            {"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "id": "1", "data": {"validationCode": "x"}}
        )
    )
    assert event.kind is EventKind.TEST
