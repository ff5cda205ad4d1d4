"""Google Cloud Storage events, in every envelope a deployment sees.

- CloudEvents from Eventarc (binary mode: ``ce-*`` headers; structured mode: one JSON object),
  ``google.cloud.storage.object.v1.{finalized,deleted,archived,metadataUpdated}``, whose data is the object
  resource: https://cloud.google.com/eventarc/docs/cloudevents ,
  https://github.com/googleapis/google-cloudevents/tree/main/proto/google/events/cloud/storage/v1
- Pub/Sub notifications (attributes ``eventType``, ``bucketId``, ``objectId``, ``objectGeneration``,
  ``overwrittenByGeneration``; data the object resource in base64), pulled or in a push envelope
  ``{"message": ..., "subscription": ...}``: https://cloud.google.com/storage/docs/pubsub-notifications
- Cloud Functions 1st-gen background events ``{"context": {...}, "data": ...}`` and the older flat form
  (``eventType`` ``providers/cloud.storage/eventTypes/object.change``, deletion told by
  ``data.resourceState == "not_exists"``): https://cloud.google.com/functions/1stgendocs/calling/storage

Object resource fields: https://cloud.google.com/storage/docs/json_api/v1/objects#resource ; ``size`` and
``generation`` are int64 and so arrive as strings (or numbers in some producers); names are never URL-encoded.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from shared.events.fields import (
    EventShapeError,
    as_object,
    guarded,
    keys_of,
    load_json,
    optional_int,
    optional_text,
    shown,
    string_map,
    text,
)
from shared.events.model import Cloud, EventKind, ObjectEvent, ParsedEvent, UnsupportedEvent

_ARCHIVED = "a noncurrent version was archived; the live object is unchanged"
_OVERWRITTEN = "generation {gen} was overwritten by generation {by}, whose finalize event updates the row"

# Event type (CloudEvents, Pub/Sub, 1st-gen) → (kind, reason). metadataUpdated re-registers: an upsert
# by global key refreshes the row's metadata.
EVENT_KINDS: Mapping[str, tuple[EventKind, str]] = {
    "google.cloud.storage.object.v1.finalized": (EventKind.CREATED, ""),
    "google.cloud.storage.object.v1.metadataUpdated": (EventKind.CREATED, ""),
    "google.cloud.storage.object.v1.deleted": (EventKind.DELETED, ""),
    "google.cloud.storage.object.v1.archived": (EventKind.IGNORED, _ARCHIVED),
    "OBJECT_FINALIZE": (EventKind.CREATED, ""),
    "OBJECT_METADATA_UPDATE": (EventKind.CREATED, ""),
    "OBJECT_DELETE": (EventKind.DELETED, ""),
    "OBJECT_ARCHIVE": (EventKind.IGNORED, _ARCHIVED),
    "google.storage.object.finalize": (EventKind.CREATED, ""),
    "google.storage.object.metadataUpdate": (EventKind.CREATED, ""),
    "google.storage.object.delete": (EventKind.DELETED, ""),
    "google.storage.object.archive": (EventKind.IGNORED, _ARCHIVED),
}
_NO_TYPE = "an object resource with no event type (a binary-mode CloudEvent body without its ce-type header)"
LEGACY_CHANGE = "providers/cloud.storage/eventTypes/object.change"


def parse(payload: Any) -> list[ParsedEvent]:
    """Any GCS event document: a structured CloudEvent, a Pub/Sub message or push envelope, a 1st-gen event."""
    try:
        doc = as_object(payload, "event")
    except EventShapeError as exc:
        return [UnsupportedEvent(str(exc))]
    if "specversion" in doc:
        attributes = {k: v for k, v in doc.items() if k != "data"}
        return [guarded(lambda d: parse_cloud_event(attributes, d), doc.get("data"))]
    if isinstance(doc.get("message"), Mapping):
        return [guarded(parse_pubsub_message, doc["message"])]
    if isinstance(doc.get("attributes"), Mapping):
        return [guarded(parse_pubsub_message, doc)]
    if isinstance(doc.get("context"), Mapping):
        context = doc["context"]
        return [guarded(lambda d: _background(context.get("eventType"), context.get("timestamp"), d), doc.get("data"))]
    if "eventType" in doc and "data" in doc:
        return [guarded(lambda d: _background(doc.get("eventType"), doc.get("timestamp"), d), doc["data"])]
    if doc.get("kind") == "storage#object":
        return [guarded(lambda d: _object_event(d, EventKind.IGNORED, None, None, _NO_TYPE), doc)]
    return [UnsupportedEvent(f"not a Cloud Storage event: an object with keys {keys_of(doc)}")]


def parse_cloud_event(attributes: Mapping[str, Any], data: Any) -> ObjectEvent:
    """A CloudEvent's attributes (type, subject, time, ...) and its data (the object resource)."""
    event_type = text(attributes, "type", "CloudEvent")
    kind, reason = _kind(event_type)
    return _object_event(as_object(data, "CloudEvent data"), kind, event_type, attributes.get("time"), reason)


def parse_pubsub_message(message: Any) -> ObjectEvent:
    """A Cloud Storage Pub/Sub notification (``JSON_API_V1`` or ``NONE`` payload)."""
    message = as_object(message, "Pub/Sub message")
    attributes = as_object(message.get("attributes"), "Pub/Sub message.attributes")
    event_type = text(attributes, "eventType", "Pub/Sub message.attributes")
    kind, reason = _kind(event_type)
    overwritten_by = optional_text(attributes, "overwrittenByGeneration")
    if kind is EventKind.DELETED and overwritten_by:
        kind = EventKind.IGNORED
        reason = _OVERWRITTEN.format(gen=attributes.get("objectGeneration"), by=overwritten_by)
    data = _pubsub_data(message.get("data"))
    resource: dict[str, Any] = dict(data) if data else {}
    resource.setdefault("bucket", attributes.get("bucketId"))
    resource.setdefault("name", attributes.get("objectId"))
    resource.setdefault("generation", attributes.get("objectGeneration"))
    return _object_event(resource, kind, event_type, attributes.get("eventTime"), reason)


def _background(event_type: Any, timestamp: Any, data: Any) -> ObjectEvent:
    resource = as_object(data, "event data")
    if not isinstance(event_type, str):
        raise EventShapeError(f"background event has no eventType (got {shown(event_type)})")
    if event_type == LEGACY_CHANGE:
        gone = resource.get("resourceState") == "not_exists"
        return _object_event(resource, EventKind.DELETED if gone else EventKind.CREATED, event_type, timestamp, "")
    kind, reason = _kind(event_type)
    return _object_event(resource, kind, event_type, timestamp, reason)


def _kind(event_type: str) -> tuple[EventKind, str]:
    if event_type in EVENT_KINDS:
        return EVENT_KINDS[event_type]
    raise EventShapeError(f"event type {shown(event_type)} is not a Cloud Storage object event")


def _object_event(
    resource: Mapping[str, Any], kind: EventKind, event_type: str | None, time: Any, reason: str
) -> ObjectEvent:
    generation = optional_text(resource, "generation")
    return ObjectEvent(
        cloud=Cloud.GCP,
        kind=kind,
        bucket=text(resource, "bucket", "object"),
        key=text(resource, "name", "object"),
        size=optional_int(resource, "size"),
        etag=optional_text(resource, "md5Hash") or optional_text(resource, "etag"),
        version=generation,
        content_type=optional_text(resource, "contentType"),
        metadata=string_map(resource.get("metadata"), "object.metadata"),
        time=time if isinstance(time, str) else optional_text(resource, "updated"),
        sequencer=generation,
        name=event_type,
        reason=reason,
    )


def _pubsub_data(data: Any) -> Mapping[str, Any] | None:
    """The base64 object resource of a JSON_API_V1 notification; None for payloadFormat NONE."""
    if data in (None, ""):
        return None
    if isinstance(data, Mapping):
        return data
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise EventShapeError(f"Pub/Sub message.data is not base64: {shown(data)}") from None
    return as_object(load_json(raw, "Pub/Sub message.data"), "Pub/Sub message.data")
