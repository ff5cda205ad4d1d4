"""Deletes on Google Cloud, against fake-gcs-server: acted on only once list_blobs confirms the object is gone.

The last test runs the whole GCS path: fake-gcs-server publishes real notifications (to the in-process Pub/Sub
publisher), each is pushed to ``on_pubsub_push`` as a push subscription would, and the rows follow the bucket.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

from bucket_ingest.commands.invoke import gcp_app, write_gcp_source
from bucket_ingest.emulators import FakeGcs, PublishedMessage, PubSubPublisher
from handlers import gcp
from tests.support.handlers import Catalog, function_env, gcs_object, storage_cloud_event, wait_for

BUCKET = "ingest-bucket"
ODD_NAME = "dir/my file+plus é 日本.jpg"
BUCKET_NUMBERS = itertools.count(1)


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    source = write_gcp_source(tmp_path_factory.mktemp("gcp-source"))
    return {target: gcp_app(source, target).test_client() for target in ("on_storage_event", "on_pubsub_push")}


@pytest.fixture(scope="module")
def publisher() -> Iterator[PubSubPublisher]:
    with PubSubPublisher() as running:
        yield running


@pytest.fixture(scope="module")
def gcs(publisher: PubSubPublisher) -> Iterator[FakeGcs]:
    with FakeGcs(publisher) as server:
        yield server


@pytest.fixture
def bucket(gcs: FakeGcs) -> Iterator[Any]:
    bucket = gcs.client().create_bucket(f"{BUCKET}-{next(BUCKET_NUMBERS)}")  # a bucket of its own per test
    yield bucket
    for blob in bucket.list_blobs():
        blob.delete()
    bucket.delete()


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gcs: FakeGcs) -> Iterator[Catalog]:
    catalog = Catalog(tmp_path)
    function_env(monkeypatch, catalog, INGEST_DELETE_POLICY="delete", **gcs.env())
    gcp.INSTANCE.reset()
    yield catalog
    gcp.INSTANCE.reset()
    catalog.close()


def send(clients: dict[str, Any], event: dict[str, Any]) -> int:
    attributes = {k: v for k, v in event.items() if k != "data"}
    headers, body = to_structured(CloudEvent(attributes, event["data"]))
    status: int = clients["on_storage_event"].post("/", data=body, headers=headers).status_code
    return status


def test_a_deleted_generation_of_an_object_that_still_exists_keeps_the_row(
    clients: dict[str, Any], bucket: Any, catalog: Catalog
) -> None:
    bucket.blob(ODD_NAME).upload_from_string(b"v1")
    resource = gcs_object(ODD_NAME, bucket=bucket.name)
    assert send(clients, storage_cloud_event(resource)) == 200
    bucket.blob(ODD_NAME).upload_from_string(b"v2")  # an overwrite: GCS sends "deleted" for the old generation
    assert send(clients, storage_cloud_event(resource, kind="deleted", event_id="e1")) == 200
    assert catalog.external_ids() == [f"gcp:{bucket.name}/{ODD_NAME}"]


def test_a_deleted_object_deletes_its_row(clients: dict[str, Any], bucket: Any, catalog: Catalog) -> None:
    for name in ("photo.jpg", "photo.jpg.copy.jpg"):
        bucket.blob(name).upload_from_string(b"x")
        assert send(clients, storage_cloud_event(gcs_object(name, bucket=bucket.name), event_id=name)) == 200
    bucket.blob("photo.jpg").delete()
    gone = storage_cloud_event(gcs_object("photo.jpg", bucket=bucket.name), kind="deleted", event_id="e2")
    assert send(clients, gone) == 200
    assert catalog.external_ids() == [f"gcp:{bucket.name}/photo.jpg.copy.jpg"]


def test_a_delete_that_cannot_be_confirmed_makes_the_platform_retry(clients: dict[str, Any], catalog: Catalog) -> None:
    gone = storage_cloud_event(gcs_object("x.jpg", bucket="no-such-bucket"), kind="deleted")
    assert send(clients, gone) == 500


def push_envelope_of(message: PublishedMessage) -> dict[str, Any]:
    """The body a Pub/Sub push subscription POSTs for this message."""
    return {
        "message": {
            "attributes": dict(message.attributes),
            "data": base64.b64encode(message.data).decode(),
            "messageId": message.message_id,
            "publishTime": message.publish_time.isoformat(),
        },
        "subscription": "projects/bucket-ingest-demo/subscriptions/ingest-push",
    }


def test_notifications_from_fake_gcs_server_pushed_to_the_function_follow_the_bucket(
    clients: dict[str, Any], bucket: Any, catalog: Catalog, publisher: PubSubPublisher
) -> None:
    received: list[PublishedMessage] = []
    publisher.subscribe(received.append)
    try:
        bucket.blob(ODD_NAME).upload_from_string(b"hello", content_type="image/jpeg")
        bucket.blob("b.png").upload_from_string(b"hello", content_type="image/png")
        assert wait_for(lambda: len(received) == 2)
        bucket.blob("b.png").delete()
        assert wait_for(lambda: len(received) == 3)
    finally:
        publisher.unsubscribe(received.append)
    assert [m.attributes["eventType"] for m in received] == ["OBJECT_FINALIZE", "OBJECT_FINALIZE", "OBJECT_DELETE"]
    for message in received[:2]:
        response = clients["on_pubsub_push"].post("/", json=push_envelope_of(message))
        assert response.status_code == 200, response.json
    assert catalog.external_ids() == [f"gcp:{bucket.name}/b.png", f"gcp:{bucket.name}/{ODD_NAME}"]
    response = clients["on_pubsub_push"].post("/", json=push_envelope_of(received[2]))
    assert response.json["outcomes"] == {"deleted": 1}
    assert catalog.external_ids() == [f"gcp:{bucket.name}/{ODD_NAME}"]
    (row,) = catalog.rows()
    assert row["row_data"] == f"gs://{bucket.name}/{ODD_NAME}"
    assert row["metadata"]["size"] == 5
