"""Azure Blob Storage events from Event Grid, in the Event Grid schema and the CloudEvents 1.0 schema.

https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage : ``Microsoft.Storage.BlobCreated`` and
``BlobDeleted``; ``data.api`` names the operation, ``data.url`` the blob, ``subject`` is
``/blobServices/default/containers/<container>/blobs/<blob>``. Webhooks receive a JSON array; the Functions
runtime hands over one event at a time.

- The account is the host label of ``data.url`` (``ACCOUNT.blob.core.windows.net``), else the last segment of
  ``topic`` / ``source`` (``.../storageAccounts/ACCOUNT``).
- Container and blob come from ``subject``, which carries the blob name as text; ``data.url`` carries it
  percent-encoded and is the fallback (and wins where the subject lost characters to U+FFFD).
- Data Lake Gen2 (hierarchical namespace) accounts send ``BlobCreated`` for ``CreateFile`` before any byte is
  written; only ``FlushWithClose`` means the content is committed, so ``CreateFile`` and directory events are
  ignored. https://learn.microsoft.com/azure/storage/blobs/storage-blob-event-overview
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.events.fields import (
    EventShapeError,
    as_object,
    guarded,
    keys_of,
    load_json,
    optional_int,
    optional_text,
    shown,
)
from shared.events.model import Cloud, EventKind, ObjectEvent, ParsedEvent, UnsupportedEvent

EVENT_KINDS: Mapping[str, EventKind] = {
    "Microsoft.Storage.BlobCreated": EventKind.CREATED,
    "Microsoft.Storage.BlobDeleted": EventKind.DELETED,
}
# Other storage events: nothing to register. Directory events come only from Data Lake Gen2 accounts.
IGNORED_EVENTS: Mapping[str, str] = {
    "Microsoft.Storage.DirectoryCreated": "a directory is not a blob",
    "Microsoft.Storage.DirectoryDeleted": "a directory is not a blob",
    "Microsoft.Storage.DirectoryRenamed": "a directory is not a blob",
    "Microsoft.Storage.BlobRenamed": "renames happen only on Data Lake Gen2 accounts, which Labelbox cannot read",
    "Microsoft.Storage.BlobTierChanged": "a tier change does not change the blob's content",
    "Microsoft.Storage.AsyncOperationInitiated": "the blob's content is not committed yet",
    "Microsoft.Storage.BlobInventoryPolicyCompleted": "an inventory run is not a blob",
    "Microsoft.Storage.LifecyclePolicyCompleted": "a lifecycle run is not a blob",
    "Microsoft.EventGrid.SubscriptionValidationEvent": "the Event Grid subscription validation handshake",
}
# data.api values of BlobCreated that do not mean committed content (Data Lake Gen2).
UNCOMMITTED_APIS: Mapping[str, str] = {
    "CreateFile": "a Data Lake Gen2 CreateFile carries no content yet; its FlushWithClose registers the file",
}
SUBJECT_PREFIX = "/blobServices/default/containers/"
DATA_LAKE_PREFIX = "dfs."  # ACCOUNT.dfs.core.windows.net serves the same data as ACCOUNT.blob.core.windows.net


def parse(payload: Any) -> list[ParsedEvent]:
    """One Event Grid delivery: a single event or an array of them, in either schema."""
    if isinstance(payload, str | bytes):
        try:
            payload = load_json(payload, "Event Grid delivery")
        except EventShapeError as exc:
            return [UnsupportedEvent(str(exc))]
    events = payload if isinstance(payload, list) else [payload]
    return [guarded(parse_event, event) for event in events]


def parse_event(event: Any) -> ObjectEvent:
    """One event in the Event Grid schema (``eventType``, ``topic``) or CloudEvents schema (``type``, ``source``)."""
    event = as_object(event, "Event Grid event")
    event_type = event.get("eventType") or event.get("type")
    if not isinstance(event_type, str):
        raise EventShapeError(f"not an Event Grid event: no eventType or type (keys {keys_of(event)})")
    ignored = IGNORED_EVENTS.get(event_type)
    if ignored is None and event_type not in EVENT_KINDS:
        raise EventShapeError(f"event type {shown(event_type)} is not a Blob Storage event")
    data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
    if ignored is None:
        data = as_object(event.get("data"), "event data")
    url = optional_text(data, "url")
    url_account, url_container, url_blob, endpoint = _url_parts(url)
    container, blob = _subject_parts(event.get("subject"))
    if blob is None or ("\ufffd" in blob and url_blob):
        container, blob = url_container, url_blob
    topic = optional_text(event, "topic") or optional_text(event, "source") or ""
    account = url_account or _account_from_topic(topic)
    api = optional_text(data, "api")
    kind, reason = EVENT_KINDS.get(event_type, EventKind.IGNORED), ignored or ""
    if "SubscriptionValidation" in event_type:
        kind = EventKind.TEST
    elif ignored is None:
        if not container or not blob:
            raise EventShapeError(
                f"event names no container and blob (subject {shown(event.get('subject'))}, url {shown(url)})"
            )
        if not account:
            raise EventShapeError(f"event names no storage account (url {shown(url)}, topic {shown(topic)})")
        if kind is EventKind.CREATED and api is not None and api in UNCOMMITTED_APIS:
            kind, reason = EventKind.IGNORED, UNCOMMITTED_APIS[api]
    etag = optional_text(data, "eTag")
    return ObjectEvent(
        cloud=Cloud.AZURE,
        kind=kind,
        bucket=container or "",
        key=blob,
        account=account,
        size=optional_int(data, "contentLength"),
        etag=etag.strip('"') if etag else None,
        content_type=optional_text(data, "contentType"),
        time=optional_text(event, "eventTime") or optional_text(event, "time"),
        sequencer=optional_text(data, "sequencer"),
        name=event_type,
        api=api,
        endpoint=endpoint,
        reason=reason,
    )


def _subject_parts(subject: Any) -> tuple[str | None, str | None]:
    """(container, blob) from ``/blobServices/default/containers/C/blobs/B``; the blob name is kept as is."""
    if not isinstance(subject, str) or not subject.startswith(SUBJECT_PREFIX):
        return None, None
    container, sep, blob = subject[len(SUBJECT_PREFIX) :].partition("/blobs/")
    return container or None, (blob or None) if sep else None


def _url_parts(url: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    """(account, container, blob, blob-service host suffix) from a blob URL, percent-decoded.

    ``https://ACCOUNT.blob.core.windows.net/C/B`` and the emulator's path style ``http://127.0.0.1:10000/ACCOUNT/C/B``.
    """
    if not url:
        return None, None, None, None
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path.lstrip("/")
    if host.count(".") >= 2 and not host.replace(".", "").isdigit():
        account, _, suffix = host.partition(".")
        if suffix.startswith(DATA_LAKE_PREFIX):
            suffix = "blob." + suffix.removeprefix(DATA_LAKE_PREFIX)
    else:  # path-style (Azurite): the first path segment is the account
        account, _, path = path.partition("/")
        suffix = None
    container, _, blob = path.partition("/")
    return account or None, unquote(container) or None, unquote(blob) or None, suffix


def _account_from_topic(topic: str) -> str | None:
    marker = "/storageAccounts/"
    index = topic.lower().rfind(marker.lower())
    return topic[index + len(marker) :].split("/", maxsplit=1)[0] or None if index >= 0 else None
