"""The Google Cloud function: two entry points for functions-framework.

- ``on_storage_event``: a CloudEvent function for Eventarc's ``google.cloud.storage.object.v1.*`` events
  (https://cloud.google.com/eventarc/docs/cloudevents), also reached by Eventarc Pub/Sub triggers
  (``google.cloud.pubsub.topic.v1.messagePublished`` carrying a GCS notification) and by legacy background
  events, which functions-framework converts. A retryable failure raises, so the platform retries the event when
  the function is deployed with retries on; input that can never succeed is logged and acknowledged.
- ``on_pubsub_push``: an HTTP function for a Pub/Sub push subscription on the bucket's notification topic
  (https://cloud.google.com/pubsub/docs/push#receive_push). A 2xx acknowledges the message; an error status makes
  Pub/Sub redeliver it, then dead-letter it after the subscription's max delivery attempts.

Deployed as ``main.py`` re-exporting both (Cloud Functions' default source file). Logs are one JSON object per line
with a ``severity`` field, which Cloud Logging reads as structured entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from handlers import WarmInstance, raise_for_failures, summary
from shared import logs
from shared.events import gcp
from shared.events.fields import EventShapeError, as_object
from shared.events.model import Cloud, Delivery
from shared.ingest import DeliveryStatus

PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
FINALIZED = "google.cloud.storage.object.v1.finalized"
DELETED = "google.cloud.storage.object.v1.deleted"
# Delivery status → HTTP status of a push response (Pub/Sub acknowledges 102, 200, 201, 202 and 204).
PUSH_STATUSES: Mapping[DeliveryStatus, int] = {
    DeliveryStatus.DONE: 200,
    DeliveryStatus.RETRY: 503,
    DeliveryStatus.FAILED: 500,
}

logger = logs.stdout_logger("bucket_ingest.gcp")
INSTANCE = WarmInstance(Cloud.GCP)


@functions_framework.cloud_event
def on_storage_event(cloud_event: CloudEvent) -> None:
    """Register, delete or skip the object one CloudEvent names."""
    attributes = dict(cloud_event.get_attributes())
    data = cloud_event.get_data()
    if attributes.get("type") == PUBSUB_PUBLISHED:
        events = gcp.parse(data)  # data is {"message": ..., "subscription": ...}
    else:
        if (
            attributes.get("type") == FINALIZED
            and isinstance(data, Mapping)
            and data.get("resourceState") == "not_exists"
        ):
            # functions-framework converts every legacy object.change event to "finalized"; the data still
            # says the object is gone.
            attributes["type"] = DELETED
        events = gcp.parse({**attributes, "data": data})
    report = INSTANCE.ingest_logged([Delivery(str(attributes.get("id") or ""), tuple(events))], logger)
    raise_for_failures(report)


@functions_framework.http
def on_pubsub_push(request: flask.Request) -> tuple[dict[str, Any], int]:
    """Register, delete or skip the object one pushed Cloud Storage notification names."""
    if request.method != "POST":  # Pub/Sub pushes with POST; anything else (a probe, a browser) is not a delivery
        return {"error": f"{request.method} is not a Pub/Sub push: push requests are POSTs"}, 405
    body = request.get_data()
    events = gcp.parse(body)
    report = INSTANCE.ingest_logged([Delivery(_message_id(body), tuple(events))], logger)
    return summary(report), PUSH_STATUSES[report.deliveries[0].status]


def _message_id(body: bytes) -> str:
    """The push envelope's message id, for the log lines; "push" when the body has none."""
    try:
        message = as_object(as_object(body, "push body").get("message"), "message")
    except EventShapeError:
        return "push"
    return str(message.get("messageId") or message.get("message_id") or "push")
