"""The Google Cloud function registering in Labelbox (the local Labelbox-compatible endpoint): an outage or a
refused row is answered so that Eventarc retries the CloudEvent and Pub/Sub redelivers the pushed message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.labelbox_endpoint import LabelboxEndpoint
from handlers import gcp
from tests.support.handlers import (
    configured_function,
    gcp_clients_fixture,  # noqa: F401 (fixture)
    gcs_object,
    post_event,
    push_envelope,
    storage_cloud_event,
)
from tests.support.labelbox import (
    dataset_id_fixture,  # noqa: F401 (fixture)
    labelbox_endpoint_fixture,  # noqa: F401 (fixture)
    labelbox_settings,
)


@pytest.fixture
def endpoint(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LabelboxEndpoint]:
    """The local Labelbox endpoint, and the function registering in a dataset of it."""
    settings = labelbox_settings(labelbox_endpoint, dataset_id)
    with configured_function(gcp, monkeypatch, tmp_path, **settings, INGEST_TIMEOUT_SECONDS="2"):
        yield labelbox_endpoint


def test_a_cloud_event_is_retried_until_labelbox_answers(clients: dict[str, Any], endpoint: LabelboxEndpoint) -> None:
    event = storage_cloud_event(gcs_object("a.jpg"))
    endpoint.set_faults(error_rate=1.0, error_status=503)
    assert post_event(clients, event).status_code == 500
    endpoint.set_faults(error_rate=0.0)
    assert post_event(clients, event).status_code == 200
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
