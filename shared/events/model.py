"""The one normalised object event every cloud's envelope is reduced to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

NO_METADATA: Mapping[str, str] = MappingProxyType({})


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


class EventKind(StrEnum):
    CREATED = "created"  # the object now exists with this content (a new object or an overwrite)
    DELETED = "deleted"  # the object is gone
    TEST = "test"  # a configuration test message (s3:TestEvent): no object, no error
    IGNORED = "ignored"  # a storage event that does not change what should be registered


class ObjectEvent(NamedTuple):
    """What happened to one object, whatever the cloud and however it was delivered.

    ``key`` is the exact object name as the storage service knows it (decoded UTF-8 text, the string
    GetObject / download_blob take). ``version`` is the S3 version id or the GCS generation, as text.
    ``reason`` says why a TEST or IGNORED event leads to no row. Immutable (a NamedTuple: one is built per
    object on the hot path, about three times faster than a frozen dataclass); change a copy with ``_replace``.
    """

    cloud: Cloud
    kind: EventKind
    bucket: str
    key: str | None = None
    account: str | None = None  # Azure storage account; AWS account id when the envelope names it
    region: str | None = None  # AWS region of the bucket, when the envelope names it
    size: int | None = None
    etag: str | None = None
    version: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = NO_METADATA
    time: str | None = None
    sequencer: str | None = None
    name: str | None = None  # the event's own name or type, as seen (ObjectCreated:Put, ...)
    api: str | None = None  # Azure data.api (PutBlob, FlushWithClose, ...)
    endpoint: str | None = None  # Azure blob service host suffix (blob.core.windows.net, sovereign clouds)
    reason: str = ""

    @property
    def location(self) -> str:
        """A readable name for logs: cloud, account, bucket and key."""
        account = f"{self.account}/" if self.cloud is Cloud.AZURE and self.account else ""
        return f"{self.cloud}://{account}{self.bucket}/{self.key or ''}"


@dataclass(frozen=True, slots=True)
class UnsupportedEvent:
    """Input that is not a storage event this ingester understands; ``reason`` names what was seen."""

    reason: str


ParsedEvent = ObjectEvent | UnsupportedEvent


class Delivery(NamedTuple):
    """One unit the platform delivers, acknowledges and retries on its own.

    An SQS message, a Batch Operations task, a CloudEvent, an Event Grid event. Its ``events`` may be
    several objects (an S3 notification can carry several records) or none.
    """

    id: str
    events: tuple[ParsedEvent, ...]
