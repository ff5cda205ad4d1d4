"""The Google Cloud function registering in Labelbox (the local Labelbox-compatible endpoint): an outage or a
refused row is answered so that Eventarc retries the CloudEvent and Pub/Sub redelivers the pushed message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

from bucket_ingest.commands.invoke import gcp_app, write_gcp_source
from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, LabelboxEndpoint
from handlers import gcp
from tests.support.handlers import Catalog, function_env, gcs_object, push_envelope, storage_cloud_event


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    source = write_gcp_source(tmp_path_factory.mktemp("gcp-source"))
    return {target: gcp_app(source, target).test_client() for target in ("on_storage_event", "on_pubsub_push")}


@pytest.fixture
def endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabelboxEndpoint]:
    endpoint = LabelboxEndpoint().start()
    dataset = endpoint.create_dataset("ingest")
    function_env(monkeypatch, Catalog(tmp_path), INGEST_REGISTRY=f"labelbox://{dataset}", INGEST_TIMEOUT_SECONDS="2")
    monkeypatch.setenv("LABELBOX_ENDPOINT", endpoint.url)
    monkeypatch.setenv("LABELBOX_API_KEY", DEFAULT_API_KEY)
    gcp.INSTANCE.reset()
    yield endpoint
    gcp.INSTANCE.reset()
    endpoint.stop()


def send(clients: dict[str, Any], event: dict[str, Any]) -> int:
    headers, body = to_structured(CloudEvent({k: v for k, v in event.items() if k != "data"}, event["data"]))
    status: int = clients["on_storage_event"].post("/", data=body, headers=headers).status_code
    return status


def test_a_cloud_event_is_retried_until_labelbox_answers(clients: dict[str, Any], endpoint: LabelboxEndpoint) -> None:
    event = storage_cloud_event(gcs_object("a.jpg"))
    endpoint.set_faults(error_rate=1.0, error_status=503)
    assert send(clients, event) == 500
    endpoint.set_faults(error_rate=0.0)
    assert send(clients, event) == 200
    assert [row["global_key"] for row in endpoint.store.rows()] == ["gcp:ingest-bucket/a.jpg"]


def test_pushed_messages_are_redelivered_on_outages_and_refusals(
    clients: dict[str, Any], endpoint: LabelboxEndpoint
) -> None:
    push = clients["on_pubsub_push"]
    endpoint.set_faults(throttle_rate=1.0, retry_after=5.0)  # throttled past the deadline
    assert push.post("/", json=push_envelope(gcs_object("a.jpg"))).status_code == 503
    endpoint.set_faults(throttle_rate=0.0, reject={"gcp:ingest-bucket/refused.jpg": "Invalid row data"})
    response = push.post("/", json=push_envelope(gcs_object("refused.jpg"), message_id="r1"))
    assert (response.status_code, response.json["redeliver"]) == (500, ["r1"])  # to the dead-letter topic, in time
    assert push.post("/", json=push_envelope(gcs_object("a.jpg"))).status_code == 200
    assert [row["global_key"] for row in endpoint.store.rows()] == ["gcp:ingest-bucket/a.jpg"]
