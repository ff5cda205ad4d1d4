"""`bucket-ingest backfill gs://... --publish-to TOPIC`: a Cloud Storage backfill fanned out to the deployed function.

fake-gcs-server holds the bucket and publishes the live notifications; the backfill lists it and publishes one
notification per object to another topic of the same local Pub/Sub publisher (through google-cloud-pubsub's own
client, ``PUBSUB_EMULATOR_HOST``); each message then reaches the real ``handlers.gcp.on_storage_event`` as the
CloudEvent an Eventarc Pub/Sub trigger delivers. The rows it makes are the ones the live notifications make, and
a stopped and resumed fan-out publishes each object once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from bucket_ingest.backfill.pubsub import BACKFILL_ATTRIBUTE
from bucket_ingest.emulators import FakeGcs, PublishedMessage, PubSubPublisher
from handlers import gcp
from shared.settings import Settings
from tests.support.backfill import ALL_OBJECTS, GcsBucket, backfill_summary, expected_rows, unique_name
from tests.support.handlers import Catalog, clean_env

TOPIC = "projects/bucket-ingest-demo/topics/backfill"
SKIPPED = 5  # tests.support.backfill: unservable, two unknown media types, zero-byte, folder marker


@pytest.fixture(scope="module")
def publisher() -> Iterator[PubSubPublisher]:
    with PubSubPublisher() as server:
        yield server


@pytest.fixture(scope="module")
def gcs(publisher: PubSubPublisher) -> Iterator[FakeGcs]:
    with FakeGcs(publisher, events=("finalize",)) as server:
        yield server


class Topic:
    """The messages published to one topic."""

    def __init__(self, publisher: PubSubPublisher, topic: str) -> None:
        self.topic = topic
        self.messages: list[PublishedMessage] = []
        self._lock = threading.Lock()
        self._publisher = publisher
        publisher.subscribe(self._on_message)

    def _on_message(self, message: PublishedMessage) -> None:
        if message.topic == self.topic:
            with self._lock:
                self.messages.append(message)

    def close(self) -> None:
        self._publisher.unsubscribe(self._on_message)


@pytest.fixture
def topic(publisher: PubSubPublisher) -> Iterator[Topic]:
    topic = Topic(publisher, TOPIC)
    yield topic
    topic.close()


@pytest.fixture
def bucket(gcs: FakeGcs) -> Iterator[GcsBucket]:
    bucket = GcsBucket(gcs, unique_name("fanout"))
    bucket.put(ALL_OBJECTS)
    yield bucket
    bucket.close()


@pytest.fixture
def catalog(
    tmp_path: Path, bucket: GcsBucket, publisher: PubSubPublisher, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Catalog]:
    catalog = Catalog(tmp_path, dataset="backfilled")
    clean_env(monkeypatch, catalog.url, {**bucket.env(), "PUBSUB_EMULATOR_HOST": publisher.host})
    gcp.INSTANCE.reset()
    yield catalog
    gcp.INSTANCE.reset()
    catalog.close()


def eventarc_event(message: PublishedMessage) -> CloudEvent:
    """The CloudEvent an Eventarc Pub/Sub trigger on the topic delivers for this message."""
    attributes = {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/{message.topic}",
        "id": message.message_id,
    }
    data = {
        "message": message.as_dict(),
        "subscription": "projects/bucket-ingest-demo/subscriptions/eventarc-backfill",
    }
    return CloudEvent(attributes, data)


def fan_out(capsys: Any, bucket: GcsBucket, tmp_path: Path, *options: str) -> dict[str, Any]:
    checkpoint = str(tmp_path / "checkpoint.json")
    return backfill_summary(capsys, bucket.uri, "--publish-to", TOPIC, "--checkpoint", checkpoint, *options)


def test_published_notifications_make_the_rows_the_live_notifications_make(
    bucket: GcsBucket, topic: Topic, catalog: Catalog, tmp_path: Path, capsys: Any
) -> None:
    summary = fan_out(capsys, bucket, tmp_path, "--batch-size", "10")

    assert summary["status"] == "complete"
    assert summary["totals"]["published"] == len(ALL_OBJECTS) - SKIPPED == len(topic.messages)
    assert summary["totals"]["skipped"] == {"unknown_media_type": 2, "unservable_key": 1, "zero_byte": 1,
                                            "folder_marker": 1}  # fmt: skip
    assert catalog.rows() == []  # nothing registered by the backfill itself
    assert all(m.attributes[BACKFILL_ATTRIBUTE] == "true" for m in topic.messages)

    for message in topic.messages:  # what Eventarc then delivers to the deployed function
        gcp.on_storage_event(eventarc_event(message))

    live = expected_rows(bucket.live_events(), Settings.from_env(os.environ))
    fields = ("global_key", "row_data", "external_id", "media_type", "dataset_id")
    rows = {r["global_key"]: ({f: r[f] for f in fields}, r["metadata"]) for r in catalog.rows()}
    assert {k: v[0] for k, v in rows.items()} == {
        k: {f: p.as_dict()[f] for f in fields} for k, p in live.payloads.items()
    }
    for key, payload in live.payloads.items():  # size, md5, generation and content type travel in the message
        want = {k: v for k, v in payload.as_dict()["metadata"].items() if k != "event_time"}
        assert {k: v for k, v in rows[key][1].items() if k != "event_time"} == want


def test_a_stopped_fan_out_resumes_publishing_each_object_once(
    bucket: GcsBucket, topic: Topic, catalog: Catalog, tmp_path: Path, capsys: Any
) -> None:
    first = fan_out(capsys, bucket, tmp_path, "--batch-size", "4", "--max-objects", "17")
    second = fan_out(capsys, bucket, tmp_path, "--batch-size", "4")
    third = fan_out(capsys, bucket, tmp_path, "--batch-size", "4")

    assert (first["status"], second["status"], third["status"]) == ("limit", "complete", "already_complete")
    names = [m.attributes["objectId"] for m in topic.messages]
    assert len(names) == len(set(names)) == len(ALL_OBJECTS) - SKIPPED
