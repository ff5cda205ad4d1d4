"""Listing an Azure Blob container with List Blobs (azure-storage-blob ``list_blobs(...).by_page``).

- https://learn.microsoft.com/rest/api/storageservices/list-blobs : committed blobs only (what ``BlobCreated``
  reports), with ``Content-Length``, ``Etag``, ``Content-Type``, ``Last-Modified``; markers (continuation tokens)
  are opaque, so a resumed listing restarts from its page's token and drops what it already handled.
- Data Lake Gen2 directories are listed as empty blobs with metadata ``hdi_isfolder=true``; the live path ignores
  ``DirectoryCreated``, and so does backfill, with the same reason.
- Credentials, first found: a connection string (``--connection-string`` or ``AZURE_STORAGE_CONNECTION_STRING``),
  an account key or SAS token (``AZURE_STORAGE_KEY`` / ``AZURE_STORAGE_SAS_TOKEN``), ``DefaultAzureCredential``
  when azure-identity is installed, else anonymous (public containers). The account URL is the URI's, or
  ``--endpoint-url``. Listing needs the ``Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read``
  data action (Storage Blob Data Reader) or a SAS with the list permission.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bucket_ingest.backfill.listing import Endpoints, ListingError, Page, Position, event_time
from bucket_ingest.backfill.target import Target
from shared.events.azure import IGNORED_EVENTS
from shared.events.model import Cloud, EventKind, ObjectEvent

LIST_ROLE = "Storage Blob Data Reader"
DIRECTORY_REASON = IGNORED_EVENTS["Microsoft.Storage.DirectoryCreated"]


class AzureLister:
    def __init__(self, target: Target, endpoints: Endpoints) -> None:
        self.target = target
        self.endpoints = endpoints
        self._container: Any = None

    def __repr__(self) -> str:
        return f"AzureLister({self.target.uri!r})"

    @property
    def account_url(self) -> str:
        if self.endpoints.url:
            return self.endpoints.url
        return self.target.service_url or f"https://{self.target.account}.{self.target.endpoint}"

    def _client(self) -> Any:
        if self._container is None:
            from azure.storage.blob import ContainerClient

            connection = self.endpoints.azure_connection_string
            if connection:
                account = _connection_account(connection)
                if account and account != self.target.account:
                    raise ListingError(
                        f"the Azure connection string is for account '{account}' but the URI names "
                        f"'{self.target.account}': use that account's connection string"
                    )
                self._container = ContainerClient.from_connection_string(connection, self.target.bucket)
            else:
                self._container = ContainerClient(self.account_url, self.target.bucket, credential=self._credential())
        return self._container

    def check(self) -> None:
        self._call(
            lambda: next(
                self._client().list_blobs(name_starts_with=self.target.prefix or None, results_per_page=1).by_page(),
                None,
            )
        )

    def pages(self, start: Position) -> Iterator[Page]:
        pager = self._call(
            lambda: (
                self._client()
                .list_blobs(
                    name_starts_with=self.target.prefix or None,
                    include=["metadata"],
                    results_per_page=self.endpoints.page_size,
                )
                .by_page(continuation_token=start.page_token)
            )
        )
        token, first = start.page_token, True
        while True:
            page = self._call(lambda: next(pager, None))
            if page is None:
                return
            blobs = self._call(lambda: list(page))  # noqa: B023 (called at once)
            if first and start.last_key is not None:
                names = [b.name for b in blobs]
                # the page holds what the last run handled up to last_key; if that blob is gone, the page is
                # handled again (registering is idempotent) rather than guessing the service's sort order
                if start.last_key in names:
                    blobs = blobs[names.index(start.last_key) + 1 :]
            first = False
            yield Page([self._event(b) for b in blobs], token=token)
            token = pager.continuation_token

    def _event(self, blob: Any) -> ObjectEvent:
        metadata = dict(blob.metadata or {})
        directory = metadata.get("hdi_isfolder", "").lower() == "true"
        return ObjectEvent(
            cloud=Cloud.AZURE,
            kind=EventKind.IGNORED if directory else EventKind.CREATED,
            bucket=self.target.bucket,
            key=blob.name,
            account=self.target.account,
            size=blob.size,
            etag=blob.etag.strip('"') if blob.etag else None,
            content_type=blob.content_settings.content_type if blob.content_settings else None,
            metadata=metadata,
            time=event_time(blob.last_modified),
            name="List Blobs",
            endpoint=self.target.endpoint,
            reason=DIRECTORY_REASON if directory else "",
        )

    def _call(self, call: Any) -> Any:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
        )

        where = self.target.uri
        try:
            return call()
        except ResourceNotFoundError as exc:
            code = getattr(exc, "error_code", None)
            if code in {None, "ContainerNotFound"}:
                raise ListingError(
                    f"container '{self.target.bucket}' does not exist in account '{self.target.account}': "
                    "check the container name in the URI"
                ) from None
            raise ListingError(f"listing {where} failed: {code} ({exc.status_code})") from None
        except ClientAuthenticationError as exc:
            raise ListingError(self._denied(where, exc)) from None
        except HttpResponseError as exc:  # messages may quote the request URL (a SAS): name the code only
            if exc.status_code in {401, 403}:
                raise ListingError(self._denied(where, exc)) from None
            code = getattr(exc, "error_code", None) or exc.reason
            raise ListingError(f"listing {where} failed: {code} ({exc.status_code})") from None
        except ServiceRequestError as exc:
            raise ListingError(
                f"cannot reach the blob service at {self.account_url} to list {where} ({exc.__class__.__name__}): "
                "check the account name, --endpoint-url or the connection string"
            ) from None

    def _credential(self) -> Any:
        if self.endpoints.azure_account_key:
            return {"account_name": self.target.account, "account_key": self.endpoints.azure_account_key}
        return self.endpoints.azure_sas_token or _default_credential()

    @staticmethod
    def _denied(where: str, exc: Any) -> str:
        code = getattr(exc, "error_code", None) or getattr(exc, "reason", None) or exc.__class__.__name__
        return (
            f"no permission to list {where} ({code}): the credentials in use need the {LIST_ROLE} role on the "
            "container (or a SAS token with the list permission); check the key or connection string"
        )


def _connection_account(connection_string: str) -> str | None:
    fields = dict(part.partition("=")[::2] for part in connection_string.split(";") if part)
    return fields.get("AccountName") or None


def _default_credential() -> Any:
    try:
        from azure.identity import DefaultAzureCredential  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None  # anonymous: a public container
    return DefaultAzureCredential()
