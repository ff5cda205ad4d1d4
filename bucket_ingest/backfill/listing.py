"""Listing a bucket page by page, each object as the ``ObjectEvent`` the live path would have built for it.

One lister per cloud (``s3``, ``gcs``, ``azure`` in this package), each importing its client library only when
used. A lister yields ``Page``s; a ``Position`` (the last object handled, and the token of its page) is where a
later run resumes:

- S3 resumes with ``StartAfter`` (keys are listed in UTF-8 binary order, so this is exact),
- GCS with ``startOffset`` (lexicographic order; the offset itself is dropped),
- Azure, whose markers are opaque, from the page's continuation token, dropping the page's objects up to and
  including the last one handled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from bucket_ingest.backfill.target import Target
from shared.events.model import Cloud, ObjectEvent


class ListingError(Exception):
    """The bucket cannot be listed; the message names the bucket, the cause and what to fix."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a listing stands: after ``last_key``, found in the page that ``page_token`` fetches."""

    last_key: str | None = None
    page_token: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"last_key": self.last_key, "page_token": self.page_token}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Position:
        last_key, token = data.get("last_key"), data.get("page_token")
        return cls(last_key if isinstance(last_key, str) else None, token if isinstance(token, str) else None)


@dataclass(frozen=True, slots=True)
class Page:
    events: list[ObjectEvent]
    token: str | None  # the token that fetched this page (None: the first page)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the clients connect: overrides for emulators and private endpoints (None: the SDK's default)."""

    url: str | None = None  # --endpoint-url: S3 endpoint, GCS API endpoint or Azure account URL
    region: str | None = None  # S3 bucket region, when not asked of S3
    azure_connection_string: str | None = field(default=None, repr=False)  # holds a key: never shown
    azure_account_key: str | None = field(default=None, repr=False)
    azure_sas_token: str | None = field(default=None, repr=False)
    page_size: int = 1000


class Lister(Protocol):
    target: Target

    def check(self) -> None:
        """List at most one object, to fail early (no bucket, no permission) with a ``ListingError``."""
        ...

    def pages(self, start: Position) -> Iterator[Page]:
        """Pages from ``start`` on (objects up to ``start.last_key`` excluded); raises ``ListingError``."""
        ...


def open_lister(target: Target, endpoints: Endpoints) -> Lister:
    if target.cloud is Cloud.AWS:
        from bucket_ingest.backfill.s3 import S3Lister

        return S3Lister(target, endpoints)
    if target.cloud is Cloud.GCP:
        from bucket_ingest.backfill.gcs import GcsLister

        return GcsLister(target, endpoints)
    from bucket_ingest.backfill.azure import AzureLister

    return AzureLister(target, endpoints)


def event_time(moment: datetime | None) -> str | None:
    """An object's last-modified time in the events' form (RFC 3339, UTC, milliseconds, 'Z')."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
