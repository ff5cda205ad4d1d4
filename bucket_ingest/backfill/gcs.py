"""Listing a Cloud Storage bucket with ``objects.list`` (google-cloud-storage ``list_blobs``, page by page).

- https://cloud.google.com/storage/docs/json_api/v1/objects/list : each item is the object resource, the same
  resource a ``finalized`` event carries (https://cloud.google.com/storage/docs/json_api/v1/objects#resource), so
  size, md5Hash (else etag), generation, contentType and metadata are read exactly as ``shared.events.gcp`` reads
  them from an event. Names come in lexicographic order; ``startOffset`` (inclusive) resumes a listing.
- ``STORAGE_EMULATOR_HOST`` points the client at an emulator (anonymous); ``--endpoint-url`` at another API
  endpoint. Listing needs ``storage.objects.list`` (roles/storage.objectViewer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from bucket_ingest.backfill.listing import Endpoints, ListingError, Page, Position, event_time
from bucket_ingest.backfill.target import Target
from shared.events.model import Cloud, EventKind, ObjectEvent

LIST_PERMISSION = "storage.objects.list"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class GcsLister:
    def __init__(self, target: Target, endpoints: Endpoints) -> None:
        self.target = target
        self.endpoints = endpoints
        self._client: Any = None

    def __repr__(self) -> str:
        return f"GcsLister({self.target.uri!r})"

    def _storage(self) -> Any:
        if self._client is None:
            from google.cloud import storage

            url = self.endpoints.url
            if url is None:
                self._client = storage.Client()
            else:
                from google.auth.credentials import AnonymousCredentials

                anonymous = urlsplit(url).hostname in LOOPBACK_HOSTS  # a local emulator takes no credentials
                self._client = storage.Client(
                    credentials=AnonymousCredentials() if anonymous else None,  # type: ignore[no-untyped-call]
                    client_options={"api_endpoint": url},
                )
        return self._client

    def check(self) -> None:
        self._call(
            lambda: list(
                self._storage().list_blobs(self.target.bucket, prefix=self.target.prefix or None, max_results=1)
            )
        )

    def pages(self, start: Position) -> Iterator[Page]:
        blobs = self._call(
            lambda: self._storage().list_blobs(
                self.target.bucket,
                prefix=self.target.prefix or None,
                start_offset=start.last_key,
                page_size=self.endpoints.page_size,
            )
        )
        pages = iter(blobs.pages)
        while True:
            page = self._call(lambda: next(pages, None))
            if page is None:
                return
            items = self._call(lambda: list(page))  # noqa: B023 (called at once)
            events = [self._event(blob) for blob in items if blob.name != start.last_key]
            yield Page(events, token=None)

    def _event(self, blob: Any) -> ObjectEvent:
        generation = str(blob.generation) if blob.generation is not None else None
        return ObjectEvent(
            cloud=Cloud.GCP,
            kind=EventKind.CREATED,
            bucket=self.target.bucket,
            key=blob.name,
            size=blob.size,
            etag=blob.md5_hash or blob.etag,
            version=generation,
            content_type=blob.content_type,
            metadata=dict(blob.metadata or {}),
            time=event_time(blob.updated),
            sequencer=generation,
            name="objects.list",
        )

    def _call(self, call: Any) -> Any:
        from google.api_core import exceptions as api
        from google.auth.exceptions import DefaultCredentialsError, TransportError

        where = f"gs://{self.target.bucket}/{self.target.prefix}"
        try:
            return call()
        except DefaultCredentialsError:
            raise ListingError(
                f"no Google credentials to list {where}: run `gcloud auth application-default login` or set "
                "GOOGLE_APPLICATION_CREDENTIALS (or STORAGE_EMULATOR_HOST for a local emulator)"
            ) from None
        except api.NotFound:
            raise ListingError(
                f"bucket '{self.target.bucket}' does not exist: check the bucket name in the URI"
            ) from None
        except (api.Forbidden, api.Unauthorized) as exc:
            raise ListingError(
                f"no permission to list {where} ({exc.code}): the credentials in use need {LIST_PERMISSION} on the "
                "bucket (roles/storage.objectViewer)"
            ) from None
        except api.GoogleAPICallError as exc:
            raise ListingError(f"listing {where} failed: {exc.code} {exc.message}") from None
        except (TransportError, OSError) as exc:
            raise ListingError(f"cannot reach Cloud Storage to list {where}: {exc.__class__.__name__}: {exc}") from None
