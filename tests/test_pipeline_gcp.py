"""The Google Cloud path: fake-gcs-server's real Pub/Sub notifications become the CloudEvents Eventarc delivers,
pushed in binary content mode and retried on failure."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote

import pytest

from bucket_ingest.emulators import FakeGcs, PublishedMessage
from bucket_ingest.pipeline.gcp import EventarcTrigger, cloud_event, header_value
from bucket_ingest.pipeline.retry import RetryPolicy
from shared.events.gcp import parse_cloud_event
from shared.events.model import EventKind
from tests.support.pipeline import Emulators, emulators_fixture  # noqa: F401 (fixture)
from tests.support.recorder import Recorder, recorder_fixture  # noqa: F401 (fixture)

NAME = "dir/a b+c%41 é 日本.txt"
FAST = RetryPolicy("test", delays=(0.05,), max_attempts=5)


@pytest.fixture
def gcs(emulators: Emulators) -> FakeGcs:
    return emulators[1]


def published(gcs: FakeGcs, act: Any, count: int) -> list[PublishedMessage]:
    """The notifications fake-gcs-server publishes while ``act()`` runs."""
    messages: list[PublishedMessage] = []
    lock = threading.Lock()

    def keep(message: PublishedMessage) -> None:
        with lock:
            messages.append(message)

    assert gcs.publisher is not None
    gcs.publisher.subscribe(keep)
    try:
        act()
        end = time.monotonic() + 10
        while len(messages) < count and time.monotonic() < end:
            time.sleep(0.02)
    finally:
        gcs.publisher.unsubscribe(keep)
    return messages


def test_a_notification_becomes_the_cloud_event_eventarc_delivers(gcs: FakeGcs) -> None:
    bucket = gcs.client().create_bucket(f"t-{uuid.uuid4().hex[:8]}")

    def act() -> None:
        bucket.blob(NAME).upload_from_string(b"hello", content_type="text/plain")
        bucket.blob(NAME).delete()

    finalize, delete = published(gcs, act, 2)
    created, deleted = cloud_event(finalize), cloud_event(delete)
    assert created is not None and deleted is not None
    assert created.attributes["type"] == "google.cloud.storage.object.v1.finalized"
    assert deleted.attributes["type"] == "google.cloud.storage.object.v1.deleted"
    assert created.attributes["source"] == f"//storage.googleapis.com/projects/_/buckets/{bucket.name}"
    assert created.attributes["subject"] == f"objects/{NAME}"
    assert created.attributes["id"] == finalize.message_id and created.attributes["bucket"] == bucket.name
    event = parse_cloud_event(created.attributes, created.data)
    assert (event.kind, event.bucket, event.key, event.size) == (EventKind.CREATED, bucket.name, NAME, 5)
    assert event.content_type == "text/plain" and event.version == created.data["generation"]
    assert parse_cloud_event(deleted.attributes, deleted.data).kind is EventKind.DELETED


def test_other_messages_are_not_storage_events() -> None:
    assert cloud_event(PublishedMessage("projects/p/topics/t", "1", b"{}", {"eventType": "SOMETHING"})) is None
    assert cloud_event(PublishedMessage("projects/p/topics/t", "1", b"[1]", {})) is None


def test_header_values_are_percent_encoded_as_the_cloudevents_http_binding_says() -> None:
    value = header_value(f"objects/{NAME}")
    assert value.isascii() and " " not in value and '"' not in value
    assert unquote(value) == f"objects/{NAME}"
    assert header_value("google.cloud.storage.object.v1.finalized") == "google.cloud.storage.object.v1.finalized"


def test_the_trigger_pushes_its_buckets_events_in_binary_mode_and_retries_a_failure(
    gcs: FakeGcs, recorder: Recorder
) -> None:
    client = gcs.client()
    mine, other = (client.create_bucket(f"t-{uuid.uuid4().hex[:8]}") for _ in range(2))
    assert gcs.publisher is not None
    trigger = EventarcTrigger(gcs.publisher, recorder.url + "/", FAST, buckets={mine.name})
    trigger.start()
    try:
        other.blob("not mine.txt").upload_from_string(b"x")
        mine.blob(NAME).upload_from_string(b"hello", content_type="text/plain")
        end = time.monotonic() + 10
        while len(recorder.requests) < 2 and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        trigger.stop()
    first, second = recorder.requests  # a 503, then the same event again; nothing from the other bucket
    assert first.body == second.body and first.headers["ce-id"] == second.headers["ce-id"]
    assert second.headers["content-type"] == "application/json"
    assert second.headers["ce-specversion"] == "1.0"
    assert second.headers["ce-type"] == "google.cloud.storage.object.v1.finalized"
    assert unquote(second.headers["ce-subject"]) == f"objects/{NAME}"
    assert json.loads(second.body)["name"] == NAME
    assert trigger.delivery.failures == 1 and trigger.delivery.dead_letters == []
