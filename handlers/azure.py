"""The Azure function's body; ``function_app.py`` at the app root declares the trigger (Python v2 model).

An Event Grid subscription on the storage account delivers ``Microsoft.Storage.BlobCreated`` / ``BlobDeleted``
(https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage), in the Event Grid schema or the
CloudEvents 1.0 schema; the Functions host hands them over one per invocation, as ``func.EventGridEvent`` or
``func.CloudEvent`` (https://learn.microsoft.com/azure/azure-functions/functions-bindings-event-grid-trigger).
``handle`` takes a sequence and registers it with one registry call. A failed row raises, so Event Grid retries
with backoff and finally dead-letters the event; input that can never succeed is logged and returned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import azure.functions as func

from handlers import WarmInstance, raise_for_failures
from shared.events.azure import parse_event
from shared.events.fields import guarded
from shared.events.model import Cloud, Delivery

logger = logging.getLogger("bucket_ingest.azure")  # the worker forwards it to the host and Application Insights
INSTANCE = WarmInstance(Cloud.AZURE)


def handle(events: Sequence[func.EventGridEvent | func.CloudEvent]) -> None:
    """Register, delete or skip the blobs these events name, with one registry call."""
    deliveries = [Delivery(str(event.id or ""), (guarded(parse_event, document(event)),)) for event in events]
    raise_for_failures(INSTANCE.ingest_logged(deliveries, logger))


def document(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The event back as the JSON Event Grid sent, in its own schema, for ``shared.events.azure.parse_event``."""
    if isinstance(event, func.EventGridEvent):
        fields = {
            "id": event.id,
            "topic": event.topic,
            "subject": event.subject,
            "eventType": event.event_type,
            "eventTime": _iso(event.event_time),
            "data": event.get_json(),
        }
    else:
        fields = {
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _iso(event.time),
            "data": event.get_json(),
        }
    return {name: value for name, value in fields.items() if value is not None}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
