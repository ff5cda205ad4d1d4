"""Helpers for the function tests: a catalog to look at and to make fail, the functions' environment, their log
lines, and the platforms' events.

- ``Catalog``: a SQLite catalog in a temporary folder, with ``locked()`` holding an exclusive transaction from
  another connection, so that the function's registration fails for a reason a redelivery cures.
- ``function_env`` / ``configured_function``: the environment of a freshly configured function, for handlers
  called in this process. (The functions in their own processes, as their platforms run them, are
  ``bucket_ingest.pipeline.functions``' ``LambdaRuntime`` and ``cloud_run_function``.)
- ``clients`` (fixture) and ``post_event``: the GCP function through functions-framework's test clients.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from bucket_ingest.commands.invoke import GCP_SIGNATURE_TYPES, LAMBDA_DEFAULTS, gcp_app, write_gcp_source
from bucket_ingest.emulators import PROJECT_ROOT
from shared.registries.sqlite import SqliteCatalog
from shared.settings import VARIABLES

FUNCTION_NAME = LAMBDA_DEFAULTS["AWS_LAMBDA_FUNCTION_NAME"]
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
# The variables Lambda sets for every function (those the runtime and Powertools read; invoke's defaults, the
# context's function name and region among them), and the Powertools ones the templates set.
LAMBDA_ENV: Mapping[str, str] = {
    **LAMBDA_DEFAULTS,
    "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/25/[$LATEST]0123456789abcdef",
    "LAMBDA_TASK_ROOT": str(PROJECT_ROOT),
    "AWS_DEFAULT_REGION": LAMBDA_DEFAULTS["AWS_REGION"],
    "POWERTOOLS_SERVICE_NAME": "bucket-ingest",
    "POWERTOOLS_METRICS_NAMESPACE": "BucketIngest",
}


def xray_probe_handler(event: Any, context: Any) -> dict[str, Any]:
    """A Lambda handler for tests: the function's answer, and whether the X-Ray SDK is loaded in this process."""
    from handlers.aws import lambda_handler

    return {"response": lambda_handler(event, context), "xray_loaded": "aws_xray_sdk" in sys.modules}


@contextlib.contextmanager
def powertools_log(logger: Any) -> Iterator[io.StringIO]:
    """What a Powertools Logger writes meanwhile (its handler keeps the stream it was made with)."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)
    try:
        yield stream
    finally:
        logger.registered_handler.setStream(previous)


def json_lines(lines: list[str] | str) -> list[dict[str, Any]]:
    """The lines that are JSON objects, parsed (runtimes add plain-text lines of their own)."""
    records = []
    for line in lines.splitlines() if isinstance(lines, str) else lines:
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def outcome_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("message") == "object outcome"]


# ---------------------------------------------------------------------------------------------------- catalog


class Catalog:
    """An embedded catalog file for one test: its registry URL, its rows, and a way to make writes fail."""

    def __init__(self, folder: Path, dataset: str = "test-dataset") -> None:
        self.path = folder / "catalog.sqlite"
        self.url = f"sqlite:///{self.path}?dataset={dataset}"
        self.catalog = SqliteCatalog(self.path)  # creates the file and its table, as the function would

    def rows(self) -> list[dict[str, Any]]:
        return self.catalog.rows()

    def external_ids(self, *, include_deleted: bool = True) -> list[str]:
        return sorted(row["external_id"] for row in self.catalog.rows(include_deleted))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Another connection holds an exclusive transaction: every write waits for its busy timeout (the
        invocation's deadline), then fails as "catalog busy", a failure a redelivery cures."""
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()

    def close(self) -> None:
        self.catalog.close()


# Modules a handler must not load at import (cold start): clients, the SDK we never use, the registry.
DEFERRED_MODULES = ("boto3", "labelbox", "aws_xray_sdk", "google.cloud.storage", "shared.registries.sqlite", "sqlite3")
_IMPORT_PROBE = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("network I/O at import")
socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps([m for m in sys.argv[2:] if m in sys.modules]))
"""


def modules_loaded_at_import(module: str, watched: Sequence[str] = DEFERRED_MODULES) -> list[str]:
    """Import ``module`` in a fresh interpreter with no configuration at all and the network refused; which of
    ``watched`` it loaded. Raises if the import fails."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, module, *watched],
        check=False,
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode:
        raise AssertionError(f"importing {module} failed:\n{done.stderr}")
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# ------------------------------------------------------------------------------------------------ environment


# Variables that point an SDK at an emulator: a test sets them itself when it wants one.
EMULATOR_VARIABLES = ("AWS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_CONNECTION_STRING")


def clean_env(monkeypatch: Any, registry_url: str, values: Mapping[str, str] | None = None) -> None:
    """Every ingest variable and emulator pointer unset but the registry and ``values``."""
    for name in (*VARIABLES, *EMULATOR_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"INGEST_REGISTRY": registry_url, **(values or {})}.items():
        monkeypatch.setenv(name, value)


def function_env(monkeypatch: Any, catalog: Catalog, **values: str) -> None:
    """The environment of a freshly configured function: ``clean_env`` with this test's catalog as the registry
    and ``values``; the Lambda variables set (they are in every Lambda environment)."""
    clean_env(monkeypatch, catalog.url, {**LAMBDA_ENV, **values})


@contextlib.contextmanager
def configured_function(handler: Any, monkeypatch: Any, folder: Path, **values: str) -> Iterator[Catalog]:
    """A new instance of one cloud's function (``handler``: its module) in a ``function_env`` on a new catalog in
    ``folder`` (``values`` may point the registry elsewhere); the catalog is closed and the instance forgotten
    afterwards."""
    catalog = Catalog(folder)
    function_env(monkeypatch, catalog, **values)
    handler.INSTANCE.reset()
    try:
        yield catalog
    finally:
        handler.INSTANCE.reset()
        catalog.close()


# ------------------------------------------------------------------------------------- functions-framework (GCP)


@pytest.fixture(scope="module", name="clients")
def gcp_clients_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """functions-framework's test clients of both GCP entry points, by target, on the Cloud Functions source (as
    the Cloud Functions runtime builds the app). Import it into a test module; tests take ``clients``."""
    source = write_gcp_source(tmp_path_factory.mktemp("gcp-source"))
    return {target: gcp_app(source, target).test_client() for target in GCP_SIGNATURE_TYPES}


def cloud_event_http(event: Mapping[str, Any], mode: str = "structured") -> tuple[dict[str, str], bytes]:
    """The headers and body of the HTTP request that carries ``event`` (a CloudEvent as a dict) in ``mode``,
    binary or structured."""
    attributes = {k: v for k, v in event.items() if k != "data"}
    headers, body = (to_binary if mode == "binary" else to_structured)(CloudEvent(attributes, event.get("data")))
    return dict(headers), body


def http_post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """POST to a function's server: its status and body, error answers included."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_event(clients: Mapping[str, Any], event: Mapping[str, Any], mode: str = "structured") -> Any:
    """``event`` posted to ``on_storage_event`` through its test client; the framework's response."""
    headers, body = cloud_event_http(event, mode)
    return clients["on_storage_event"].post("/", data=body, headers=headers)


# ----------------------------------------------------------------------------------------------------- events

# Settings under which every created object of the vendor fixtures registers (some are empty or have no extension).
EVERYTHING: Mapping[str, str] = {"INGEST_SKIP_ZERO_BYTE": "false", "INGEST_UNKNOWN_MEDIA": "register"}
# expected.json kinds → the skip reason of an object that gets no row (deletes are ignored by default)
SKIP_REASONS: Mapping[str, str] = {
    "deleted": "delete_ignored",
    "test": "test_event",
    "other": "ignored_event",
    "unknown": "ignored_event",
}


def expected_outcome(name: str) -> tuple[set[str], list[str]]:
    """(external ids of the rows, sorted skip reasons of the other records) a vendor fixture comes to under
    EVERYTHING. A Data Lake CreateFile is ignored: its content is not committed yet."""
    from tests import fixtures

    want = fixtures.expected()[name]
    rows, skipped = set(), []
    for record in want["records"]:
        if record["kind"] == "created" and record.get("api") != "CreateFile":
            account = f"{record['account']}/" if want["cloud"] == "azure" else ""
            rows.add(f"{want['cloud']}:{account}{record['bucket']}/{record['key']}")
        else:
            skipped.append("ignored_event" if record["kind"] == "created" else SKIP_REASONS[record["kind"]])
    return rows, sorted(skipped)


def s3_record(
    key: str,
    *,
    bucket: str = "ingest-bucket",
    size: int = 1024,
    name: str = "ObjectCreated:Put",
    sequencer: str = "0055AED6DCD90281E5",
) -> dict[str, Any]:
    """One S3 event notification record, key URL-encoded as S3 sends it."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z",
        "eventName": name,
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key),
                "size": size,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": sequencer,
            },
        },
    }


def s3_notification(*keys: str, **fields: Any) -> dict[str, Any]:
    return {"Records": [s3_record(key, **fields) for key in keys]}


def sqs_event(*bodies: Any) -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it; message ids m0, m1, ...; bodies that are not
    strings are sent as their JSON."""
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"handle-{i}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795608000000"},
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def batch_operations_event(version: str, *tasks: Mapping[str, Any]) -> dict[str, Any]:
    """An S3 Batch Operations LambdaInvoke event (schema 1.0 or 2.0) with these tasks."""
    event: dict[str, Any] = {
        "invocationSchemaVersion": version,
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
        "tasks": list(tasks),
    }
    if version == "2.0":
        event["job"]["userArguments"] = {}
    return event


def batch_task(key: str, *, version: str, bucket: str = "ingest-bucket", task_id: str = "t0") -> dict[str, Any]:
    location = {"s3Bucket": bucket} if version == "2.0" else {"s3BucketArn": f"arn:aws:s3:::{bucket}"}
    return {"taskId": task_id, "s3Key": quote_plus(key), "s3VersionId": None, **location}


def gcs_object(name: str, *, bucket: str = "ingest-bucket", size: int = 1024, generation: int = 1) -> dict[str, Any]:
    """A Cloud Storage object resource (the data of its CloudEvents and Pub/Sub notifications)."""
    return {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "id": f"{bucket}/{name}/{generation}",
        "generation": str(generation),
        "metageneration": "1",
        "contentType": "image/jpeg",
        "size": str(size),
        "md5Hash": "kF8MuJ5+CTJxvyhHS1xzRg==",
        "timeCreated": "2026-11-25T12:00:00.000Z",
        "updated": "2026-11-25T12:00:00.000Z",
    }


def storage_cloud_event(
    resource: Mapping[str, Any], *, kind: str = "finalized", event_id: str = "e0"
) -> dict[str, Any]:
    """A structured-mode CloudEvent as Eventarc sends it for a Cloud Storage object."""
    return {
        "specversion": "1.0",
        "type": f"google.cloud.storage.object.v1.{kind}",
        "source": f"//storage.googleapis.com/projects/_/buckets/{resource.get('bucket')}",
        "subject": f"objects/{resource.get('name')}",
        "id": event_id,
        "time": "2026-11-25T12:00:00.000Z",
        "datacontenttype": "application/json",
        "data": dict(resource),
    }


def push_envelope(
    resource: Mapping[str, Any], *, event_type: str = "OBJECT_FINALIZE", message_id: str = "p0"
) -> dict[str, Any]:
    """A Pub/Sub push request body carrying a Cloud Storage notification (JSON_API_V1 payload)."""
    return {
        "message": {
            "attributes": {
                "eventType": event_type,
                "bucketId": str(resource.get("bucket")),
                "objectId": str(resource.get("name")),
                "objectGeneration": str(resource.get("generation")),
                "payloadFormat": "JSON_API_V1",
                "eventTime": "2026-11-25T12:00:00.000Z",
            },
            "data": base64.b64encode(json.dumps(resource).encode()).decode(),
            "messageId": message_id,
            "publishTime": "2026-11-25T12:00:00.000Z",
        },
        "subscription": "projects/test/subscriptions/ingest-push",
    }


def blob_event(
    blob: str,
    *,
    container: str = "ingest",
    account: str = "acct",
    event_type: str = "Microsoft.Storage.BlobCreated",
    schema: str = "eventgrid",
    size: int = 1024,
    event_id: str = "b0",
) -> dict[str, Any]:
    """A Blob Storage event from Event Grid, in the Event Grid schema or the CloudEvents 1.0 schema."""
    topic = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{account}"
    data = {
        "api": "PutBlob" if event_type.endswith("Created") else "DeleteBlob",
        "eTag": '"0x8D4BCC2E4835CD0"',
        "contentType": "image/jpeg",
        "contentLength": size,
        "blobType": "BlockBlob",
        "url": f"https://{account}.blob.core.windows.net/{container}/{quote(blob)}",
        "sequencer": "00000000000004420000000000028963",
    }
    subject = f"/blobServices/default/containers/{container}/blobs/{blob}"
    if schema == "cloudevents":
        return {
            "specversion": "1.0",
            "type": event_type,
            "source": topic,
            "subject": subject,
            "id": event_id,
            "time": "2026-11-25T12:00:00.000Z",
            "data": data,
        }
    return {
        "topic": topic,
        "subject": subject,
        "eventType": event_type,
        "eventTime": "2026-11-25T12:00:00.000Z",
        "id": event_id,
        "data": data,
        "dataVersion": "",
        "metadataVersion": "1",
    }
