"""The data-row payload: what a registry stores for one object.

Field meanings follow Labelbox's data-row reference (https://docs.labelbox.com/reference/data-row):
``row_data`` the IAM-delegated URI, ``global_key`` the organisation-unique key, ``media_type``,
``external_id`` a readable name, ``metadata`` sent by schema id when configured, ``attachments``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from shared.events.model import Cloud, ObjectEvent
from shared.global_keys import global_key, readable_path
from shared.media_types import MediaType
from shared.uris import ObjectLocation, object_uri


class Payload(NamedTuple):
    """One data row's fields (immutable, built per object)."""

    global_key: str
    row_data: str
    external_id: str
    dataset_id: str
    media_type: MediaType | None = None
    metadata: Mapping[str, str | int] = MappingProxyType({})

    def as_dict(self) -> dict[str, Any]:
        """The payload as plain JSON-ready fields (used by `map`, `rows --json` and the catalog)."""
        return {
            "global_key": self.global_key,
            "row_data": self.row_data,
            "media_type": self.media_type.value if self.media_type else None,
            "external_id": self.external_id,
            "dataset_id": self.dataset_id,
            "metadata": dict(self.metadata),
        }


_AWS = Cloud.AWS  # a module constant: enum attribute look-ups cost on the per-object path


def location_of(event: ObjectEvent, default_region: str | None = None) -> ObjectLocation:
    """Where the event's object lives. Only Azure's account is part of the location: an S3 or GCS bucket name
    is unique on its own, so an event that happens to name the AWS account maps to the same row."""
    if event.key is None:
        raise ValueError(f"{event.name or event.kind} event names no object")
    if event.cloud is _AWS:
        return ObjectLocation(_AWS, event.bucket, event.key, None, event.region or default_region)
    if event.cloud is Cloud.AZURE:
        return ObjectLocation(event.cloud, event.bucket, event.key, account=event.account, endpoint=event.endpoint)
    return ObjectLocation(event.cloud, event.bucket, event.key)


def build_payload(
    event: ObjectEvent,
    location: ObjectLocation,
    dataset_id: str,
    media_type: MediaType | None,
) -> Payload:
    metadata: dict[str, str | int] = {"cloud": event.cloud, "bucket": event.bucket}
    if event.size is not None:
        metadata["size"] = event.size
    if event.content_type is not None:
        metadata["content_type"] = event.content_type
    if event.etag is not None:
        metadata["etag"] = event.etag
    if event.version is not None:
        metadata["version"] = event.version
    if event.time is not None:
        metadata["event_time"] = event.time
    readable = readable_path(location)
    # Positional, in Payload's field order (global key, row data, external id, dataset, media type, metadata):
    # built once per object on the hot path, where keyword arguments cost (benchmarks/bench_core_throughput.py).
    return Payload(global_key(location, readable), object_uri(location), readable, dataset_id, media_type, metadata)
