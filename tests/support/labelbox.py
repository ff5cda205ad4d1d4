"""The local Labelbox endpoint for tests: fixtures that start it on a free 127.0.0.1 port and stop it, and helpers.

Use: ``from tests.support.labelbox import labelbox_endpoint_fixture, dataset_id_fixture  # noqa: F401`` (pytest
finds the fixtures by name; tests take ``labelbox_endpoint`` and ``dataset_id``), or ``with running_endpoint() as
endpoint:`` outside pytest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, Faults, LabelboxEndpoint
from shared.media_types import MediaType
from shared.payloads import Payload
from shared.registries.labelbox import LabelboxRegistry
from shared.secrets import Secret
from shared.settings import DeletePolicy

API_KEY = DEFAULT_API_KEY


@contextlib.contextmanager
def running_endpoint(**options: Any) -> Iterator[LabelboxEndpoint]:
    endpoint = LabelboxEndpoint(**options).start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture(name="labelbox_endpoint")
def labelbox_endpoint_fixture() -> Iterator[LabelboxEndpoint]:
    with running_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(name="dataset_id")
def dataset_id_fixture(labelbox_endpoint: LabelboxEndpoint) -> str:
    """A dataset with the organisation's default IAM integration attached."""
    return labelbox_endpoint.create_dataset("test dataset")


def labelbox_settings(endpoint: LabelboxEndpoint, dataset: str) -> dict[str, str]:
    """The variables that point a function, a backfill or a command at ``dataset`` on the local endpoint."""
    return {"INGEST_REGISTRY": f"labelbox://{dataset}", "LABELBOX_ENDPOINT": endpoint.url, "LABELBOX_API_KEY": API_KEY}


def registry(
    endpoint: LabelboxEndpoint,
    *,
    key: str = API_KEY,
    metadata_schemas: dict[str, str] | None = None,
    delete_policy: DeletePolicy = DeletePolicy.IGNORE,
) -> LabelboxRegistry:
    return LabelboxRegistry(
        endpoint.url, key=Secret(key), metadata_schemas=metadata_schemas, delete_policy=delete_policy
    )


def payload(n: int | str, dataset: str, **changes: Any) -> Payload:
    """An S3 object's payload, as the shared core builds it (key ``aws:bucket/objects/N.jpg``)."""
    key = f"objects/{n}.jpg"
    fields: dict[str, Any] = {
        "global_key": f"aws:bucket/{key}",
        "row_data": f"https://bucket.s3.us-east-1.amazonaws.com/{key}",
        "external_id": f"aws:bucket/{key}",
        "dataset_id": dataset,
        "media_type": MediaType.IMAGE,
        "metadata": {"cloud": "aws", "bucket": "bucket", "size": 1234, "content_type": "image/jpeg"},
    }
    fields.update(changes)
    return Payload(**fields)


def payloads(count: int, dataset: str, start: int = 0) -> list[Payload]:
    return [payload(n, dataset) for n in range(start, start + count)]


def operations(endpoint: LabelboxEndpoint) -> list[str]:
    """The root fields of every logged request, in order (one entry per request; answered or not)."""
    return [",".join(f["name"] for f in entry["fields"]) or f"<{entry['fault']}>" for entry in endpoint.requests()]


def rows_by_key(endpoint: LabelboxEndpoint) -> dict[str, dict[str, Any]]:
    return {row["global_key"]: row for row in endpoint.store.rows()}


__all__ = [
    "API_KEY",
    "Faults",
    "dataset_id_fixture",
    "labelbox_endpoint_fixture",
    "labelbox_settings",
    "payload",
    "payloads",
    "registry",
    "running_endpoint",
]
