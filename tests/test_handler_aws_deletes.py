"""Deletes on AWS: acted on only with INGEST_DELETE_POLICY=tag|delete, and only once ListObjectsV2 (on moto's
server) confirms that the object is really gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.commands.invoke import lambda_context
from bucket_ingest.emulators import Moto
from handlers import aws
from shared.events.model import Cloud
from shared.existence import still_exists_check
from shared.settings import Settings
from tests.support.handlers import (
    Catalog,
    configured_function,
    json_lines,
    powertools_log,
    s3_notification,
    sqs_event,
)

BUCKET = "ingest-bucket"
ODD_KEY = "dir/my file+plus é 日本.jpg"


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with Moto() as server:
        yield server


@pytest.fixture
def s3(moto: Moto) -> Iterator[Any]:
    moto.reset()
    client = moto.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto: Moto) -> Iterator[Catalog]:
    with configured_function(aws, monkeypatch, tmp_path, INGEST_DELETE_POLICY="delete", **moto.env()) as catalog:
        yield catalog


def deliver(*bodies: Any) -> Any:
    return aws.lambda_handler(sqs_event(*bodies), lambda_context(10.0))


def removed(*keys: str) -> dict[str, Any]:
    return s3_notification(*keys, name="ObjectRemoved:Delete", sequencer="0055AED6DCD90281F0")


def test_a_delete_for_an_object_that_exists_again_keeps_the_row(s3: Any, catalog: Catalog) -> None:
    s3.put_object(Bucket=BUCKET, Key=ODD_KEY, Body=b"new content")
    assert deliver(s3_notification(ODD_KEY)) == {"batchItemFailures": []}
    assert deliver(removed(ODD_KEY)) == {"batchItemFailures": []}  # a stale delete: the object was re-uploaded
    assert catalog.external_ids() == [f"aws:{BUCKET}/{ODD_KEY}"]


def test_a_delete_for_an_object_that_is_gone_deletes_the_row(s3: Any, catalog: Catalog) -> None:
    s3.put_object(Bucket=BUCKET, Key="photo.jpg", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="photo.jpg.copy.jpg", Body=b"x")  # shares the key as a prefix: not the object
    assert deliver(s3_notification("photo.jpg", "photo.jpg.copy.jpg")) == {"batchItemFailures": []}
    s3.delete_object(Bucket=BUCKET, Key="photo.jpg")
    assert deliver(removed("photo.jpg")) == {"batchItemFailures": []}
    assert catalog.external_ids() == [f"aws:{BUCKET}/photo.jpg.copy.jpg"]


def test_the_tag_policy_marks_the_row_deleted_and_keeps_it(
    s3: Any, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGEST_DELETE_POLICY", "tag")
    assert deliver(s3_notification("tagged.jpg")) == {"batchItemFailures": []}
    assert deliver(removed("tagged.jpg")) == {"batchItemFailures": []}  # never uploaded to moto: gone
    (row,) = catalog.rows()
    assert row["external_id"] == f"aws:{BUCKET}/tagged.jpg" and row["deleted_at"] is not None


def test_a_delete_that_cannot_be_confirmed_is_retried(s3: Any, catalog: Catalog) -> None:
    deliver(s3_notification("gone.jpg"))
    missing_bucket = s3_notification("x.jpg", name="ObjectRemoved:Delete", bucket="no-such-bucket")
    with powertools_log(aws.logger) as logs:
        response = deliver(removed("gone.jpg"), missing_bucket)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}  # NoSuchBucket: when in doubt, retry
    assert catalog.external_ids() == []  # gone.jpg was never in moto's bucket: confirmed gone, row deleted
    (failed,) = [r for r in json_lines(logs.getvalue()) if r.get("outcome") == "failed"]
    assert failed["retryable"] is True
    assert failed["detail"].startswith("could not confirm the object is gone: An error occurred (NoSuchBucket)")


def test_no_existence_check_is_built_when_deletes_are_ignored() -> None:
    assert still_exists_check(Cloud.AWS, Settings.from_env({})) is None
    assert still_exists_check(Cloud.AWS, Settings.from_env({"INGEST_DELETE_POLICY": "tag"})) is not None
    assert still_exists_check(Cloud.AZURE, Settings.from_env({"INGEST_DELETE_POLICY": "delete"})) is None
