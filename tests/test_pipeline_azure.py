"""The Azure path: Event Grid's BlobCreated / BlobDeleted events rebuilt from what Azurite lists, and their push
to the function app's webhook with Event Grid's retries."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from bucket_ingest.emulators import Azurite
from bucket_ingest.pipeline.azure import CREATED, DELETED, BlobChanges, EventGridPush
from bucket_ingest.pipeline.retry import RetryPolicy
from shared.events.azure import parse_event
from shared.events.model import EventKind
from tests.support.pipeline import Emulators, emulators_fixture  # noqa: F401 (fixture)
from tests.support.recorder import Recorder, recorder_fixture  # noqa: F401 (fixture)

NAME = "dir/a b+c%41 é 日本.png"


@pytest.fixture
def azurite(emulators: Emulators) -> Azurite:
    return emulators[2]


def watcher(azurite: Azurite, containers: list[str] | None) -> tuple[BlobChanges, list[dict[str, Any]]]:
    """A BlobChanges that the test scans by hand (its own thread would wait an hour)."""
    events: list[dict[str, Any]] = []
    changes = BlobChanges(azurite.client(), azurite.account, events.append, containers=containers, interval=3600)
    return changes, events


def test_each_change_gives_the_event_event_grid_sends_and_the_function_reads_back_exactly(azurite: Azurite) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    container = azurite.client().create_container(name)
    container.upload_blob("already there.txt", b"old")
    changes, events = watcher(azurite, [name])
    changes.start()
    try:
        changes.scan()
        assert events == []  # what was there before the subscription gives no event
        container.upload_blob(NAME, b"png!", content_settings=_png())
        changes.scan()
        container.upload_blob(NAME, b"png, again", overwrite=True, content_settings=_png())
        changes.scan()
        changes.scan()  # nothing changed since
        container.delete_blob(NAME)
        changes.scan()
    finally:
        changes.stop()

    created, overwritten, deleted = events
    assert [e["eventType"] for e in events] == [CREATED, CREATED, DELETED]
    assert created["subject"] == f"/blobServices/default/containers/{name}/blobs/{NAME}"
    assert created["data"]["url"] == container.get_blob_client(NAME).url
    assert (created["data"]["api"], created["data"]["blobType"]) == ("PutBlob", "BlockBlob")
    assert created["data"]["eTag"] != overwritten["data"]["eTag"]
    assert created["data"]["sequencer"] < overwritten["data"]["sequencer"] < deleted["data"]["sequencer"]
    assert deleted["data"]["api"] == "DeleteBlob" and "contentLength" not in deleted["data"]
    first, second, gone = (parse_event(e) for e in events)
    assert (first.kind, first.account, first.bucket, first.key) == (EventKind.CREATED, azurite.account, name, NAME)
    assert (first.size, second.size, first.content_type) == (4, 10, "image/png")
    assert first.etag == created["data"]["eTag"].strip('"')
    assert (gone.kind, gone.key) == (EventKind.DELETED, NAME)


def test_watching_every_container_sees_new_containers(azurite: Azurite) -> None:
    changes, events = watcher(azurite, None)
    changes.start()
    try:
        name = f"t-{uuid.uuid4().hex[:8]}"
        azurite.client().create_container(name).upload_blob("new.txt", b"x")
        changes.scan()
    finally:
        changes.stop()
    assert [(e["eventType"], e["subject"]) for e in events] == [
        (CREATED, f"/blobServices/default/containers/{name}/blobs/new.txt")
    ]


def test_the_push_posts_one_event_per_request_to_the_webhook_and_retries_a_failure(recorder: Recorder) -> None:
    push = EventGridPush(recorder.url, RetryPolicy("test", (0.05,), max_attempts=3))
    event = {"id": "e1", "eventType": CREATED, "subject": "/blobServices/default/containers/c/blobs/x"}
    push.start()
    try:
        push.submit(event)
        end = time.monotonic() + 10
        while not push.delivery.idle() or len(recorder.requests) < 2:
            assert time.monotonic() < end
            time.sleep(0.02)
    finally:
        push.stop()
    first, second = recorder.requests
    assert first.path == "/runtime/webhooks/eventgrid?functionName=on_blob_event"
    assert second.headers["aeg-event-type"] == "Notification"
    assert json.loads(second.body) == [event]
    assert push.delivery.failures == 1 and push.delivery.dead_letters == []


def _png() -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="image/png")
