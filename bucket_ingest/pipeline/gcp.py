"""The Google Cloud path: fake-gcs-server → Pub/Sub notification → an Eventarc trigger → the Cloud Run function.

Cloud Storage publishes ``OBJECT_FINALIZE`` / ``OBJECT_DELETE`` notifications (fake-gcs-server does, to the local
``PubSubPublisher``). An Eventarc trigger for ``google.cloud.storage.object.v1.finalized`` / ``deleted`` on a
bucket turns each into the CloudEvent Eventarc delivers and POSTs it, in binary content mode (``ce-*`` headers,
the object resource as the JSON body), to the function's URL; a non-2xx answer is retried with Eventarc's backoff
(``retry.EVENTARC``). https://cloud.google.com/eventarc/docs/cloudevents ,
https://cloud.google.com/eventarc/standard/docs/workflows/cloudevents#storage ,
https://googleapis.github.io/google-cloudevents/examples/binary/storage/StorageObjectData-simple.json
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bucket_ingest.emulators import PublishedMessage, PubSubPublisher
from bucket_ingest.pipeline.retry import PushDelivery, RetryPolicy, post

# Pub/Sub notification eventType → the CloudEvent type Eventarc delivers for it.
CLOUD_EVENT_TYPES: Mapping[str, str] = {
    "OBJECT_FINALIZE": "google.cloud.storage.object.v1.finalized",
    "OBJECT_DELETE": "google.cloud.storage.object.v1.deleted",
    "OBJECT_ARCHIVE": "google.cloud.storage.object.v1.archived",
    "OBJECT_METADATA_UPDATE": "google.cloud.storage.object.v1.metadataUpdated",
}

HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


@dataclass(frozen=True, slots=True)
class StorageCloudEvent:
    """A CloudEvent as Eventarc delivers a Cloud Storage event: attributes and the object resource."""

    attributes: Mapping[str, str]
    data: Mapping[str, Any]

    @property
    def key(self) -> str:
        return str(self.data.get("name", ""))


def cloud_event(message: PublishedMessage) -> StorageCloudEvent | None:
    """The CloudEvent Eventarc makes of a Cloud Storage notification; None for other messages."""
    attributes = message.attributes
    event_type = CLOUD_EVENT_TYPES.get(attributes.get("eventType", ""))
    bucket, name = attributes.get("bucketId"), attributes.get("objectId")
    if event_type is None or not bucket or not name:
        return None
    try:
        data = json.loads(message.data) if message.data else {}
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    data.setdefault("bucket", bucket)
    data.setdefault("name", name)
    time = attributes.get("eventTime") or message.publish_time.isoformat().replace("+00:00", "Z")
    return StorageCloudEvent(
        {
            "specversion": "1.0",
            "id": message.message_id,
            "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
            "type": event_type,
            "subject": f"objects/{name}",
            "time": time,
            "datacontenttype": "application/json",
            "bucket": bucket,
        },
        data,
    )


def header_value(value: str) -> str:
    """An attribute value as a ``ce-`` header carries it: space, '"', '%' and everything outside printable ASCII
    percent-encoded as UTF-8 (CloudEvents HTTP binding 1.0.2, section 3.1.3.2). Object names with such characters
    thus reach the function's ``subject`` encoded; the function reads the name from the data."""
    return quote(value, safe=HEADER_SAFE)


class EventarcTrigger:
    """Eventarc triggers for the finalized and deleted events of ``buckets`` (all buckets when None), pushing to
    ``url`` from ``workers`` threads, retrying per ``policy``; given-up events are in ``delivery.dead_letters``."""

    def __init__(
        self,
        publisher: PubSubPublisher,
        url: str,
        policy: RetryPolicy,
        *,
        buckets: Collection[str] | None = None,
        event_types: Collection[str] = ("OBJECT_FINALIZE", "OBJECT_DELETE"),
        workers: int = 4,
        timeout_s: float = 60.0,
        duplicates: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.url = url
        self.buckets = None if buckets is None else set(buckets)
        self.event_types = {CLOUD_EVENT_TYPES[t] for t in event_types}
        self.timeout_s = timeout_s
        self.delivery: PushDelivery[StorageCloudEvent] = PushDelivery(
            "eventarc", self._post, policy, workers=workers, duplicates=duplicates, seed=seed
        )
        self._publisher = publisher

    def __repr__(self) -> str:
        return f"EventarcTrigger({self.url}, buckets={sorted(self.buckets) if self.buckets else 'all'})"

    def start(self) -> None:
        self.delivery.start()
        self._publisher.subscribe(self._on_message)

    def stop(self) -> None:
        self._publisher.unsubscribe(self._on_message)
        self.delivery.stop()

    def _on_message(self, message: PublishedMessage) -> None:
        event = cloud_event(message)
        if event is None or event.attributes["type"] not in self.event_types:
            return
        if self.buckets is not None and event.attributes["bucket"] not in self.buckets:
            return
        self.delivery.submit(event)

    def _post(self, event: StorageCloudEvent) -> str | None:
        """Binary content mode: each attribute as a ``ce-`` header, the data as the body."""
        headers = {f"ce-{name}": header_value(value) for name, value in event.attributes.items()}
        del headers["ce-datacontenttype"]
        headers["Content-Type"] = event.attributes["datacontenttype"]
        body = json.dumps(event.data, ensure_ascii=False).encode("utf-8")
        return post(self.url, body, headers, self.timeout_s)
