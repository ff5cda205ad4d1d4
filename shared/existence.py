"""Is the object still there? Asked just before a delete is acted on (``shared.ingest.StillExists``).

GCS sends ``deleted`` for the old generation of every overwrite, and any cloud may deliver a delete after a
later re-upload, so a delete event alone does not mean the object is gone. Each check lists at most one object
whose name starts with the key: the first name in lexical order with that prefix is the key itself when the
object exists, so one short listing answers, and listing needs less than reading:

- S3 ``ListObjectsV2`` (``s3:ListBucket`` only):
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
- GCS ``objects.list`` (``storage.objects.list`` only):
  https://cloud.google.com/storage/docs/json_api/v1/objects/list

The client libraries are imported on the first check, never at import: most invocations delete nothing, and
no check is built at all unless INGEST_DELETE_POLICY is ``tag`` or ``delete``. Azure has none yet (its
function carries no storage client), so Azure deletes are acted on without a check.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from shared.events.model import Cloud, ObjectEvent
from shared.ingest import StillExists
from shared.settings import DeletePolicy, Settings

# Short timeouts: a check that hangs would eat the invocation's budget; a failed check retries the delivery.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0


def still_exists_check(cloud: Cloud, settings: Settings) -> StillExists | None:
    """The existence check for ``cloud``'s deletes, or None when deletes are ignored (or the cloud has none)."""
    if settings.delete_policy is DeletePolicy.IGNORE:
        return None
    factory = CHECKS.get(cloud)
    return factory(settings) if factory else None


def s3_still_exists(settings: Settings) -> StillExists:
    """ListObjectsV2(Bucket, Prefix=key, MaxKeys=1), with one client per region (the event's, else the setting)."""
    clients: dict[str | None, Any] = {}

    def still_exists(event: ObjectEvent) -> bool:
        region = event.region or settings.aws_region
        client = clients.get(region)
        if client is None:
            # imported by name: boto3 ships no type information
            boto3: Any = importlib.import_module("boto3")
            config = importlib.import_module("botocore.config").Config(
                connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S, retries={"max_attempts": 2}
            )
            client = clients[region] = boto3.client("s3", region_name=region, config=config)
        listing = client.list_objects_v2(Bucket=event.bucket, Prefix=event.key, MaxKeys=1)
        return any(item.get("Key") == event.key for item in listing.get("Contents", ()))

    return still_exists


def gcs_still_exists(settings: Settings) -> StillExists:
    """list_blobs(bucket, prefix=name, max_results=1) with the function's own credentials (or the emulator's)."""
    clients: list[Any] = []

    def still_exists(event: ObjectEvent) -> bool:
        if not clients:
            from google.cloud import storage

            clients.append(storage.Client())
        blobs = clients[0].list_blobs(
            event.bucket, prefix=event.key, max_results=1, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        )
        return any(blob.name == event.key for blob in blobs)

    return still_exists


CHECKS: Mapping[Cloud, Callable[[Settings], StillExists]] = {
    Cloud.AWS: s3_still_exists,
    Cloud.GCP: gcs_still_exists,
}
