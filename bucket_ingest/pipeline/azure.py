"""The Azure path: Azurite → (Event Grid, rebuilt here) → the function app's Event Grid webhook.

Azurite has no Event Grid, so ``BlobChanges`` plays the storage account's system topic: it lists the watched
containers every ``interval`` seconds and, for each blob that appeared or changed (new ETag) or disappeared,
builds the ``Microsoft.Storage.BlobCreated`` / ``BlobDeleted`` event Event Grid would send, from the blob's real
properties (``data.api``, ``url``, ``subject``, ``contentType``, ``contentLength``, ``eTag``, ``sequencer``).
https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage

Polling rather than hooking the demo's own uploads: it sees every change whoever makes it (the demo, the tests,
the user's az CLI or Storage Explorer under ``--watch``), as Event Grid does. The price is latency (up to one
interval; see ``benchmarks/bench_pipeline_latency.py``), a list call per container per interval, and coalescing:
two writes of one blob within an interval give one event, and a delete followed by a re-upload within one
interval looks like an overwrite. Blobs present when watching starts give no event, as for a new subscription.

``EventGridPush`` delivers each event to the function app's webhook, one per request, retrying failures with
Event Grid's schedule (``retry.EVENT_GRID``) and dead-lettering past its limits.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bucket_ingest.pipeline.retry import PushDelivery, RetryPolicy, post

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"  # the topic path of a local, pretend subscription
RESOURCE_GROUP = "bucket-ingest-local"
CREATED, DELETED = "Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"
# Event Grid's data.api for a committed block blob written in one request, by blob type (others: PutBlockList
# for block-by-block uploads, CopyBlob, ...; a listing cannot tell them apart).
CREATED_APIS = {"BlockBlob": "PutBlob", "AppendBlob": "AppendFile", "PageBlob": "PutBlob"}


@dataclass(frozen=True, slots=True)
class BlobState:
    """What a listing says about one blob: enough to tell a change and to fill the event."""

    etag: str
    size: int
    content_type: str | None
    blob_type: str


class BlobChanges:
    """Watches ``containers`` (every container of the account when None) and calls ``on_event`` with the Event
    Grid event (a JSON-ready dict, Event Grid schema) of every change seen."""

    def __init__(
        self,
        service: Any,
        account: str,
        on_event: Callable[[dict[str, Any]], None],
        *,
        containers: Collection[str] | None = None,
        interval: float = 0.2,
    ) -> None:
        self.account = account
        self.interval = interval
        self.last_error = ""  # the last failed listing, if any (shown by the demo)
        self._service = service
        self._on_event = on_event
        self._containers = None if containers is None else list(containers)
        self._seen: dict[str, dict[str, BlobState]] = {}
        # Event Grid's sequencer orders the events of one blob; a listing has nothing like it, so events take
        # increasing numbers in the order they are seen (the order of the changes, up to coalescing).
        self._sequence = itertools.count(time.time_ns())
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"BlobChanges({self.account}, containers={self._containers or 'all'}, interval={self.interval})"

    def start(self) -> None:
        self._seen = {name: self._list(name) for name in self._container_names()}  # the baseline: no events
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="azure-blob-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.scan()
            except Exception as exc:  # Azurite restarting, a container deleted mid-listing: try again next time
                self.last_error = f"{type(exc).__name__}: {exc}"

    def _container_names(self) -> list[str]:
        if self._containers is not None:
            return self._containers
        return [c.name for c in self._service.list_containers()]

    def _list(self, container: str) -> dict[str, BlobState]:
        blobs = self._service.get_container_client(container).list_blobs()
        return {
            b.name: BlobState(
                etag=b.etag,
                size=b.size,
                content_type=b.content_settings.content_type,
                blob_type=str(getattr(b.blob_type, "value", b.blob_type)),
            )
            for b in blobs
        }

    def scan(self) -> None:
        """One look at every watched container; events for the differences since the last look."""
        for container in self._container_names():
            now = self._list(container)
            before = self._seen.get(container, {})
            for name, state in now.items():
                if name not in before or before[name].etag != state.etag:
                    self._on_event(self.event(CREATED, container, name, state))
            for name, state in before.items():
                if name not in now:
                    self._on_event(self.event(DELETED, container, name, state))
            self._seen[container] = now

    def event(self, event_type: str, container: str, name: str, state: BlobState) -> dict[str, Any]:
        """The Event Grid event for one change (Event Grid schema)."""
        blob = self._service.get_container_client(container).get_blob_client(name)
        data: dict[str, Any] = {
            "api": CREATED_APIS.get(state.blob_type, "PutBlob") if event_type == CREATED else "DeleteBlob",
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "contentType": state.content_type or "application/octet-stream",
            "blobType": state.blob_type,
            "url": blob.url,
            "sequencer": f"{next(self._sequence):032X}",
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        }
        if event_type == CREATED:
            data["eTag"] = state.etag
            data["contentLength"] = state.size
        return {
            "topic": (
                f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
                f"/providers/Microsoft.Storage/storageAccounts/{self.account}"
            ),
            "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
            "eventType": event_type,
            "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "id": str(uuid.uuid4()),
            "data": data,
            "dataVersion": "",
            "metadataVersion": "1",
        }


class EventGridPush:
    """An Event Grid subscription delivering to an Azure Function: one event per POST to the host's webhook."""

    def __init__(
        self,
        host_url: str,
        policy: RetryPolicy,
        *,
        function_name: str = "on_blob_event",
        workers: int = 4,
        timeout_s: float = 60.0,
        duplicates: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.url = f"{host_url}/runtime/webhooks/eventgrid?functionName={quote(function_name)}"
        self.timeout_s = timeout_s
        self.delivery: PushDelivery[dict[str, Any]] = PushDelivery(
            "event-grid", self._post, policy, workers=workers, duplicates=duplicates, seed=seed
        )

    def __repr__(self) -> str:
        return f"EventGridPush({self.url})"

    def start(self) -> None:
        self.delivery.start()

    def stop(self) -> None:
        self.delivery.stop()

    def submit(self, event: dict[str, Any]) -> None:
        self.delivery.submit(event)

    def _post(self, event: dict[str, Any]) -> str | None:
        body = json.dumps([event], ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
        return post(self.url, body, headers, self.timeout_s)
