"""A Cloud Storage backfill fanned out to the deployed function: one notification per object on a Pub/Sub topic.

``bucket-ingest backfill gs://BUCKET/PREFIX --publish-to projects/P/topics/T`` lists here (checkpointed and
resumable as usual) but registers nothing itself: every object the function would register is published as the
notification Cloud Storage itself sends for a new object (``OBJECT_FINALIZE``, ``JSON_API_V1`` payload: the
object resource; https://cloud.google.com/storage/docs/pubsub-notifications). An Eventarc Pub/Sub trigger on
that topic delivers each message to the deployed ``on_storage_event`` (or a push subscription to
``on_pubsub_push``), which parses it exactly as a live notification, so the rows are the live path's, registered
with the function's own batching, retries and dead-lettering, at the scale the platform runs it.

A batch counts as done once Pub/Sub has accepted every message (``publish`` futures resolved); messages keep
until the function acknowledges them. Objects skipped here (filters, media types) are not published.
https://cloud.google.com/python/docs/reference/pubsub/latest/google.cloud.pubsub_v1.publisher.client.Client
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bucket_ingest.backfill.progress import PUBLISHED
from shared.deadline import Deadline
from shared.decision import Register, Skip, decide
from shared.events.model import Delivery, ObjectEvent
from shared.ingest import SKIPPED, DeliveryResult, DeliveryStatus, Outcome, Report
from shared.registries.base import RowStatus
from shared.settings import Settings

TOPIC_FORM = "projects/PROJECT/topics/TOPIC"
BACKFILL_ATTRIBUTE = "bucketIngestBackfill"  # marks the messages a backfill published, for anyone reading them


def notification(event: ObjectEvent) -> tuple[bytes, dict[str, str]]:
    """The message Cloud Storage publishes for this object: the object resource, and its attributes."""
    resource: dict[str, Any] = {"kind": "storage#object", "bucket": event.bucket, "name": event.key}
    optional = {
        "generation": event.version,
        "size": None if event.size is None else str(event.size),  # int64 fields travel as strings
        "md5Hash": event.etag,
        "contentType": event.content_type,
        "updated": event.time,
        "metadata": dict(event.metadata) or None,
    }
    resource.update({name: value for name, value in optional.items() if value is not None})
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": event.bucket,
        "objectId": event.key or "",
        BACKFILL_ATTRIBUTE: "true",
    }
    if event.version:
        attributes["objectGeneration"] = event.version
    if event.time:
        attributes["eventTime"] = event.time
    return json.dumps(resource, ensure_ascii=False).encode(), attributes


class PubSubFanOut:
    """Delivers backfill batches as notifications on ``topic`` (the runner's ``Deliver``)."""

    def __init__(self, topic: str, settings: Settings, publisher: Any = None) -> None:
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "topics" or not parts[1] or not parts[3]:
            raise ValueError(f"--publish-to {topic!r} should be {TOPIC_FORM}")
        self.topic = topic
        self.settings = settings
        self._publisher = publisher

    def __repr__(self) -> str:
        return f"PubSubFanOut({self.topic!r})"

    def _client(self) -> Any:
        if self._publisher is None:
            from google.cloud import pubsub_v1

            # PUBSUB_EMULATOR_HOST points the client at an emulator, as for any Pub/Sub client
            self._publisher = pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(max_messages=1000, max_latency=0.05)
            )
        return self._publisher

    def __call__(self, deliveries: Sequence[Delivery], deadline: Deadline) -> Report:
        pending: list[tuple[Delivery, ObjectEvent, str, Any]] = []
        results: dict[str, DeliveryResult] = {}
        for delivery in deliveries:
            for event in delivery.events:
                decision = decide(event, self.settings)
                if isinstance(decision, Register) and isinstance(event, ObjectEvent):
                    data, attributes = notification(event)
                    future = self._client().publish(self.topic, data, **attributes)
                    pending.append((delivery, event, decision.payload.global_key, future))
                elif isinstance(decision, Skip):
                    where = event.location if isinstance(event, ObjectEvent) else ""
                    outcome = Outcome(delivery.id, SKIPPED, where, reason=decision.reason, detail=decision.detail)
                    results[delivery.id] = DeliveryResult(delivery.id, DeliveryStatus.DONE, (outcome,))
        for delivery, event, key, future in pending:
            try:
                future.result(timeout=max(0.1, deadline.remaining()))
            except Exception as exc:  # not accepted by Pub/Sub: retry the object
                detail = f"publishing to {self.topic} failed: {exc.__class__.__name__}: {exc}"
                failed = Outcome(delivery.id, RowStatus.FAILED, event.location, key, detail=detail, retryable=True)
                results[delivery.id] = DeliveryResult(delivery.id, DeliveryStatus.RETRY, (failed,))
            else:
                outcome = Outcome(delivery.id, PUBLISHED, event.location, key)
                results[delivery.id] = DeliveryResult(delivery.id, DeliveryStatus.DONE, (outcome,))
        return Report(tuple(results[d.id] for d in deliveries))
