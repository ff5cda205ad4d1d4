"""Buckets on the three emulators for the backfill tests: objects with awkward names, and the live path's events.

Each ``EmulatedBucket`` uploads through the cloud's own client and collects the events the live function would
have received for those uploads, from the emulator where it emits them:

- S3 (moto): a real S3 → SQS event notification per upload, read back from the queue.
- GCS (fake-gcs-server): a real ``OBJECT_FINALIZE`` Pub/Sub notification per upload (``PubSubPublisher``).
- Azure (Azurite): no Event Grid exists here, so each ``BlobCreated`` event is built as Event Grid builds it,
  from the blob's real properties (url of the account's blob endpoint, subject with the raw name, eTag,
  contentType, contentLength).

``expected_rows`` then says what the live path makes of those events (``decide``), for comparison with what a
backfill registered. ``run_backfill`` / ``backfill_summary`` run the command in this process; the ``catalog``
fixture (import ``catalog_fixture``) is the catalog a backfill registers into.
"""

from __future__ import annotations

import itertools
import json
import mimetypes
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import pytest

from bucket_ingest.cli import main
from bucket_ingest.emulators import Azurite, FakeGcs, Moto, PublishedMessage
from shared.decision import Register, Skip, decide
from shared.events import aws as aws_events
from shared.events import azure as azure_events
from shared.events import gcp as gcp_events
from shared.events.model import Cloud, ObjectEvent, ParsedEvent
from shared.payloads import Payload
from shared.settings import Settings
from tests.support.handlers import Catalog

EVENT_WAIT_S = 20.0
DEEP = "deep/" + "/".join("abcdefghijklmnop") + "/leaf.jpg"

# name → body. Awkward names, every media type, and objects the live path skips, each for its own reason.
AWKWARD_OBJECTS: Mapping[str, bytes] = {
    "plain.jpg": b"jpeg",
    "with space/my photo.jpg": b"jpeg",
    "plus+sign+and space.png": b"png",
    "percent%20literal%2Bnot-a-space.png": b"png",
    "unicode/日本語/画像.jpeg": b"jpeg",
    "café/ünïcödé naïve.png": b"png",
    DEEP: b"jpeg",
    "UPPER/Case Mixed.JPG": b"jpeg",
    "punctuation/(1) [2] {3} !$&'=;,@~.png": b"png",
    "question?mark.jpg": b"jpeg",
    "long/" + "x" * 230 + ".jpg": b"jpeg",
    "text/notes.txt": b"hello",
    "docs/report.pdf": b"%PDF",
    "video/clip.mp4": b"mp4",
    "audio/song.mp3": b"mp3",
    "web/page.html": b"<html>",
    "chat/conversation.json": b"{}",
    "medical/scan.dcm": b"dicom",
    "hash#tag.jpg": b"jpeg",  # unservable_key
    "archive/bundle.zip": b"zip",  # unknown_media_type
    "bin/program.exe": b"exe",  # unknown_media_type
    "empty/zero.jpg": b"",  # zero_byte
    "folder/": b"",  # folder_marker
}
# Plain images in numbered folders: enough objects for several batches and listing pages.
FILLER_OBJECTS: Mapping[str, bytes] = {f"bulk/{i // 10:02d}/img-{i:03d}.png": b"png" for i in range(40)}
ALL_OBJECTS: Mapping[str, bytes] = {**AWKWARD_OBJECTS, **FILLER_OBJECTS}
_names = itertools.count(1)


def content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def unique_name(prefix: str) -> str:
    """A bucket or container name no other test of this run uses (3-63 lower-case characters)."""
    return f"{prefix}-{int(time.time() * 1000) % 10**8}-{next(_names)}"


@pytest.fixture(name="catalog")
def catalog_fixture(tmp_path: Path) -> Iterator[Catalog]:
    """The catalog a backfill registers into (dataset ``backfilled``), in this test's tmp_path."""
    catalog = Catalog(tmp_path, dataset="backfilled")
    yield catalog
    catalog.close()


def run_backfill(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """`bucket-ingest backfill ARGV --progress-interval 0` in this process: its exit code, output and errors."""
    capsys.readouterr()
    code = main(["backfill", *argv, "--progress-interval", "0"])
    out, err = capsys.readouterr()
    return code, out, err


def backfill_summary(capsys: Any, *argv: str) -> dict[str, Any]:
    """The ``--json`` summary of a backfill run that must succeed."""
    code, out, err = run_backfill(capsys, *argv, "--json")
    assert code == 0, err
    summary: dict[str, Any] = json.loads(out)
    return summary


class EmulatedBucket(Protocol):
    cloud: Cloud
    name: str

    @property
    def uri(self) -> str: ...

    def env(self) -> dict[str, str]:
        """Variables that point a backfill run at the emulator."""
        ...

    def put(self, objects: Mapping[str, bytes]) -> None: ...

    def live_events(self) -> list[ParsedEvent]:
        """The events the live function would have received for every upload so far."""
        ...


# ----------------------------------------------------------------------------------------------------------- S3


@dataclass
class S3Bucket:
    moto: Moto
    name: str
    cloud: Cloud = Cloud.AWS
    puts: int = 0
    _queue_url: str = ""
    _received: list[ParsedEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        s3, sqs = self.moto.client("s3"), self.moto.client("sqs")
        s3.create_bucket(Bucket=self.name)
        self._queue_url = sqs.create_queue(QueueName=self.name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=self.name,
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
        )

    @property
    def uri(self) -> str:
        return f"s3://{self.name}/"

    def env(self) -> dict[str, str]:
        return self.moto.env()

    def put(self, objects: Mapping[str, bytes]) -> None:
        s3 = self.moto.client("s3")
        for key, body in objects.items():
            s3.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type(key))
            self.puts += 1

    def live_events(self) -> list[ParsedEvent]:
        """Every object event notified to the queue (the s3:TestEvent of the configuration left out)."""
        sqs = self.moto.client("sqs")
        end = time.monotonic() + EVENT_WAIT_S
        while len(self._received) < self.puts and time.monotonic() < end:
            reply = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in reply.get("Messages", []):
                events = aws_events.parse_message(message["Body"])
                self._received.extend(e for e in events if not (isinstance(e, ObjectEvent) and e.key is None))
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        assert len(self._received) == self.puts, f"moto notified {len(self._received)} of {self.puts} uploads"
        return list(self._received)


# ---------------------------------------------------------------------------------------------------------- GCS


@dataclass
class GcsBucket:
    gcs: FakeGcs
    name: str
    cloud: Cloud = Cloud.GCP
    puts: int = 0
    _messages: list[PublishedMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        assert self.gcs.publisher is not None, "start FakeGcs with a PubSubPublisher"
        self.gcs.publisher.subscribe(self._on_message)
        self.gcs.client().create_bucket(self.name)

    def _on_message(self, message: PublishedMessage) -> None:
        attributes = message.attributes
        if (
            message.topic == f"projects/{self.gcs.project}/topics/{self.gcs.topic}"
            and attributes.get("bucketId") == self.name
            and attributes.get("eventType") == "OBJECT_FINALIZE"
        ):
            with self._lock:
                self._messages.append(message)

    def close(self) -> None:
        assert self.gcs.publisher is not None
        self.gcs.publisher.unsubscribe(self._on_message)

    @property
    def uri(self) -> str:
        return f"gs://{self.name}/"

    def env(self) -> dict[str, str]:
        return self.gcs.env()

    def put(self, objects: Mapping[str, bytes]) -> None:
        bucket = self.gcs.client().bucket(self.name)
        for name, body in objects.items():
            bucket.blob(name).upload_from_string(body, content_type=content_type(name))
            self.puts += 1

    def live_events(self) -> list[ParsedEvent]:
        """Each upload's Pub/Sub notification, as the function's Pub/Sub path parses it."""
        end = time.monotonic() + EVENT_WAIT_S
        while time.monotonic() < end:
            with self._lock:
                if len(self._messages) >= self.puts:
                    break
            time.sleep(0.05)
        with self._lock:
            messages = list(self._messages)
        assert len(messages) == self.puts, f"fake-gcs-server published {len(messages)} of {self.puts} uploads"
        return [gcp_events.parse_pubsub_message(m.as_dict()) for m in messages]


# -------------------------------------------------------------------------------------------------------- Azure


@dataclass
class AzureContainer:
    azurite: Azurite
    name: str
    cloud: Cloud = Cloud.AZURE
    _events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.azurite.client().create_container(self.name)

    @property
    def uri(self) -> str:
        return f"https://{self.azurite.account}.blob.core.windows.net/{self.name}/"

    def env(self) -> dict[str, str]:
        return self.azurite.env()

    def put(self, objects: Mapping[str, bytes]) -> None:
        from azure.storage.blob import ContentSettings

        container = self.azurite.client().get_container_client(self.name)
        for name, body in objects.items():
            blob = container.upload_blob(name, body, content_settings=ContentSettings(content_type=content_type(name)))
            self._events.append(self._blob_created(name, blob.get_blob_properties()))

    def _blob_created(self, name: str, properties: Any) -> dict[str, Any]:
        """The BlobCreated event Event Grid delivers for this upload (Event Grid schema):
        https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage"""
        account = self.azurite.account
        return {
            "topic": f"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{account}",
            "subject": f"/blobServices/default/containers/{self.name}/blobs/{name}",
            "eventType": "Microsoft.Storage.BlobCreated",
            "eventTime": properties.last_modified.isoformat(),
            "id": f"{self.name}-{len(self._events)}",
            "data": {
                "api": "PutBlob",
                "eTag": properties.etag,
                "contentType": properties.content_settings.content_type,
                "contentLength": properties.size,
                "blobType": "BlockBlob",
                "url": f"https://{account}.blob.core.windows.net/{self.name}/{quote(name)}",
                "sequencer": f"{len(self._events):032x}",
            },
            "dataVersion": "",
            "metadataVersion": "1",
        }

    def live_events(self) -> list[ParsedEvent]:
        return azure_events.parse(json.dumps(self._events))


# ------------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True, slots=True)
class Expected:
    """What the live path makes of the events: payloads by global key, skip reasons by object location."""

    payloads: dict[str, Payload]
    skipped: dict[str, str]


def expected_rows(events: list[ParsedEvent], settings: Settings) -> Expected:
    payloads: dict[str, Payload] = {}
    skipped: dict[str, str] = {}
    for event in events:
        decision = decide(event, settings)
        assert isinstance(event, ObjectEvent), f"the live path could not read an event: {event}"
        if isinstance(decision, Register):
            payloads[decision.payload.global_key] = decision.payload
        elif isinstance(decision, Skip):
            skipped[event.location] = decision.reason.value
    return Expected(payloads, skipped)


# Metadata the listing and the event both carry; event_time differs by design (the event's time vs the object's
# last-modified time), and S3 listings carry no version id (none here: the buckets are unversioned).
COMPARED_METADATA = ("cloud", "bucket", "size", "etag", "version", "content_type")


def row_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog row's payload fields, with the metadata both paths carry."""
    metadata = row["metadata"]
    return {
        "global_key": row["global_key"],
        "row_data": row["row_data"],
        "external_id": row["external_id"],
        "media_type": row["media_type"],
        "dataset_id": row["dataset_id"],
        "metadata": {k: metadata[k] for k in COMPARED_METADATA if k in metadata},
    }


def payload_fields(payload: Payload) -> dict[str, Any]:
    fields = payload.as_dict()
    fields["metadata"] = {k: fields["metadata"][k] for k in COMPARED_METADATA if k in fields["metadata"]}
    return fields
