"""Deletes on Google Cloud, against fake-gcs-server: acted on only once list_blobs confirms the object is gone.

The last test runs the whole GCS path: fake-gcs-server publishes real notifications (to the in-process Pub/Sub
publisher), each is pushed to ``on_pubsub_push`` as a push subscription would, and the rows follow the bucket.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.emulators import FakeGcs, PublishedMessage, PubSubPublisher
from handlers import gcp
from tests.support.handlers import (
    Catalog,
    configured_function,
    gcp_clients_fixture,  # noqa: F401 (fixture)
    gcs_object,
    post_event,
    storage_cloud_event,
    wait_for,
)

BUCKET = "ingest-bucket"
ODD_NAME = "dir/my file+plus é 日本.jpg"
BUCKET_NUMBERS = itertools.count(1)


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
    with configured_function(gcp, monkeypatch, tmp_path, INGEST_DELETE_POLICY="delete", **gcs.env()) as catalog:
        yield catalog


def test_a_deleted_generation_of_an_object_that_still_exists_keeps_the_row(
    clients: dict[str, Any], bucket: Any, catalog: Catalog
) -> None:
    bucket.blob(ODD_NAME).upload_from_string(b"v1")
    resource = gcs_object(ODD_NAME, bucket=bucket.name)
    assert post_event(clients, storage_cloud_event(resource)).status_code == 200
    bucket.blob(ODD_NAME).upload_from_string(b"v2")  # an overwrite: GCS sends "deleted" for the old generation
    assert post_event(clients, storage_cloud_event(resource, kind="deleted", event_id="e1")).status_code == 200
    assert catalog.external_ids() == [f"gcp:{bucket.name}/{ODD_NAME}"]


def test_a_deleted_object_deletes_its_row(clients: dict[str, Any], bucket: Any, catalog: Catalog) -> None:
    for name in ("photo.jpg", "photo.jpg.copy.jpg"):
        bucket.blob(name).upload_from_string(b"x")
        created = storage_cloud_event(gcs_object(name, bucket=bucket.name), event_id=name)
        assert post_event(clients, created).status_code == 200
    bucket.blob("photo.jpg").delete()
    gone = storage_cloud_event(gcs_object("photo.jpg", bucket=bucket.name), kind="deleted", event_id="e2")
    assert post_event(clients, gone).status_code == 200
    assert catalog.external_ids() == [f"gcp:{bucket.name}/photo.jpg.copy.jpg"]


def test_a_delete_that_cannot_be_confirmed_makes_the_platform_retry(clients: dict[str, Any], catalog: Catalog) -> None:
    gone = storage_cloud_event(gcs_object("x.jpg", bucket="no-such-bucket"), kind="deleted")
    assert post_event(clients, gone).status_code == 500


def push_envelope_of(message: PublishedMessage) -> dict[str, Any]:
    """The body a Pub/Sub push subscription POSTs for this message."""
    return {"message": message.as_dict(), "subscription": "projects/bucket-ingest-demo/subscriptions/ingest-push"}


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
