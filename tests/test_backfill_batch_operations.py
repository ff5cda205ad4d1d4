"""`bucket-ingest backfill --s3-batch-operations` against moto, then the job's tasks through the real Lambda handler.

moto 5.2.5 serves S3 and STS but not the S3 Batch Operations control plane (its s3control has no CreateJob; the
first test pins that, so it fails the day moto gains it). So:
- the manifest is listed from moto S3, written and uploaded to moto S3, its ETag read back from moto;
- the CreateJob request is built and serialized by botocore's real s3control client (parameters validated
  against the API model) and answered, just before it would leave, by a ``before-send`` hook that records it;
- what the job would then do, invoke the function with one schema-2.0 task per manifest line, is done by
  calling ``handlers.aws.lambda_handler`` with each task, and the rows are compared with what the live path
  makes of the same uploads' S3 event notifications.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import pytest

from bucket_ingest.backfill import batch_operations
from bucket_ingest.cli import main
from bucket_ingest.commands.invoke import lambda_context
from bucket_ingest.emulators import Moto
from handlers import aws
from shared.settings import Settings
from tests.support.backfill import (
    ALL_OBJECTS,
    S3Bucket,
    catalog_fixture,  # noqa: F401 (fixture)
    expected_rows,
    unique_name,
)
from tests.support.handlers import FUNCTION_ARN, Catalog, batch_operations_event, function_env

ROLE_ARN = "arn:aws:iam::123456789012:role/bucket-ingest-batch-operations"
SKIPPED = 5  # unservable, two unknown media types, zero-byte, folder marker (tests.support.backfill)
S3CONTROL_NAMESPACE = "{http://awss3control.amazonaws.com/doc/2018-08-20/}"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class CreateJobRecorder:
    """A real botocore s3control client whose CreateJob requests are recorded and answered with a job id."""

    def __init__(self) -> None:
        import boto3
        from botocore.awsrequest import AWSResponse

        self.requests: list[Any] = []
        self.client = boto3.session.Session().client("s3control", region_name="us-east-1")

        def answer(request: Any, **_: Any) -> Any:
            self.requests.append(request)
            body = b'<?xml version="1.0"?><CreateJobResult><JobId>job-0001</JobId></CreateJobResult>'
            return AWSResponse(request.url, 200, {}, _Body(body))

        self.client.meta.events.register("before-send.s3-control.CreateJob", answer)

    def sent(self) -> ElementTree.Element:
        (request,) = self.requests
        return ElementTree.fromstring(request.body)  # noqa: S314 (the request botocore just built)


def field(xml: ElementTree.Element, path: str) -> str | None:
    node = xml.find("/".join(f"{S3CONTROL_NAMESPACE}{part}" for part in path.split("/")))
    return None if node is None else node.text


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with Moto() as server:
        yield server


@pytest.fixture
def recorder(moto: Moto, env: None, monkeypatch: pytest.MonkeyPatch) -> CreateJobRecorder:
    recorder = CreateJobRecorder()
    real = batch_operations.aws_client
    monkeypatch.setattr(
        batch_operations,
        "aws_client",
        lambda service, url, region: recorder.client if service == "s3control" else real(service, url, region),
    )
    return recorder


@pytest.fixture
def env(moto: Moto, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    function_env(monkeypatch, catalog, **moto.env())  # the function's variables (AWS_REGION us-east-1, the catalog)


def test_moto_has_no_batch_operations_control_plane() -> None:
    from moto.s3control.responses import S3ControlResponse

    assert not hasattr(S3ControlResponse, "create_job")  # when it has: create the job in moto instead


def test_manifest_job_and_tasks_make_the_rows_the_live_path_makes(
    moto: Moto, recorder: CreateJobRecorder, catalog: Catalog, env: None, capsys: Any
) -> None:
    bucket = S3Bucket(moto, unique_name("batchops"))
    bucket.put(ALL_OBJECTS)
    reports = unique_name("reports")
    moto.client("s3").create_bucket(Bucket=reports)

    code = main(
        ["backfill", bucket.uri, "--s3-batch-operations", "--function-arn", FUNCTION_ARN, "--role-arn", ROLE_ARN,
         "--report-uri", f"s3://{reports}/backfill/", "--json"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)

    assert out["job_id"] == "job-0001"
    assert (out["listed"], out["tasks"]) == (len(ALL_OBJECTS), len(ALL_OBJECTS) - SKIPPED)
    manifest_bucket, manifest_key = out["manifest"].removeprefix("s3://").split("/", 1)
    assert manifest_bucket == reports and manifest_key.startswith("backfill/manifests/")
    stored = moto.client("s3").get_object(Bucket=reports, Key=manifest_key)
    lines = stored["Body"].read().decode("ascii").splitlines()
    assert len(lines) == out["tasks"]
    # the job as sent: LambdaInvoke with schema 2.0, the manifest as moto stored it, a report of failed tasks
    sent = recorder.sent()
    assert recorder.requests[0].headers["x-amz-account-id"] == moto.account_id.encode()
    assert field(sent, "Operation/LambdaInvoke/FunctionArn") == FUNCTION_ARN
    assert field(sent, "Operation/LambdaInvoke/InvocationSchemaVersion") == "2.0"
    assert field(sent, "Manifest/Spec/Format") == "S3BatchOperations_CSV_20180820"
    assert field(sent, "Manifest/Location/ObjectArn") == f"arn:aws:s3:::{reports}/{manifest_key}"
    assert field(sent, "Manifest/Location/ETag") == stored["ETag"]
    assert field(sent, "Report/Bucket") == f"arn:aws:s3:::{reports}"
    assert field(sent, "Report/ReportScope") == "FailedTasksOnly"
    assert field(sent, "RoleArn") == ROLE_ARN
    assert field(sent, "ConfirmationRequired") == "false"

    # what the job does next: one task per manifest line, keys as the manifest holds them (URL-encoded)
    aws.INSTANCE.reset()
    results = []
    for number, line in enumerate(lines):
        task_bucket, encoded_key = line.split(",")
        task = {"taskId": f"t{number}", "s3Bucket": task_bucket, "s3Key": encoded_key, "s3VersionId": None}
        answer = aws.lambda_handler(batch_operations_event("2.0", task), lambda_context())
        results.extend(answer["results"])
    aws.INSTANCE.reset()

    assert {r["resultCode"] for r in results} == {"Succeeded"} and len(results) == len(lines)
    live = expected_rows(bucket.live_events(), Settings.from_env(os.environ))
    compared = ("global_key", "row_data", "external_id", "media_type", "dataset_id")
    rows = {r["global_key"]: {k: r[k] for k in compared} for r in catalog.rows()}
    assert rows == {k: {f: p.as_dict()[f] for f in compared} for k, p in live.payloads.items()}
    assert {unquote_plus(line.split(",")[1]) for line in lines} == {k for k in ALL_OBJECTS if k not in {
        "hash#tag.jpg", "archive/bundle.zip", "bin/program.exe", "empty/zero.jpg", "folder/"}}  # fmt: skip


def test_an_inventory_report_is_handed_over_as_the_manifest(
    moto: Moto, recorder: CreateJobRecorder, env: None, capsys: Any
) -> None:
    bucket = S3Bucket(moto, unique_name("inventoried"))
    inventory = unique_name("inventory")
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=inventory)
    manifest_key = f"{bucket.name}/daily/2026-11-25T00-00Z/manifest.json"
    manifest = {"sourceBucket": bucket.name, "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size", "files": []}
    etag = s3.put_object(Bucket=inventory, Key=manifest_key, Body=json.dumps(manifest).encode())["ETag"]

    code = main(
        ["backfill", f"{bucket.uri}photos/", "--s3-batch-operations", "--inventory-manifest",
         f"s3://{inventory}/{manifest_key}", "--function-arn", FUNCTION_ARN, "--role-arn", ROLE_ARN,
         "--report-uri", f"s3://{inventory}/reports", "--json"]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)

    sent = recorder.sent()
    assert code == 0
    assert field(sent, "Manifest/Spec/Format") == "S3InventoryReport_CSV_20161130"
    assert field(sent, "Manifest/Location/ETag") == etag
    assert any("prefix 'photos/' is not applied" in note for note in out["notes"])
    assert any("cannot skip empty or oversized objects" in note for note in out["notes"])
    statements = {s["Sid"]: s for s in out["role_policy"]["Statement"]}
    assert f"arn:aws:s3:::{inventory}/{bucket.name}/daily/2026-11-25T00-00Z/*" in statements["ReadManifest"]["Resource"]


def test_dry_run_uploads_nothing_and_shows_the_request_and_the_role_policy(
    moto: Moto, recorder: CreateJobRecorder, env: None, capsys: Any
) -> None:
    bucket = S3Bucket(moto, unique_name("dryops"))
    bucket.put(ALL_OBJECTS)
    reports = unique_name("reports")
    moto.client("s3").create_bucket(Bucket=reports)

    code = main(
        ["backfill", bucket.uri, "--s3-batch-operations", "--dry-run", "--function-arn", FUNCTION_ARN,
         "--role-arn", ROLE_ARN, "--report-uri", f"s3://{reports}/r"]
    )  # fmt: skip
    out = capsys.readouterr().out

    assert code == 0
    assert f"{len(ALL_OBJECTS) - SKIPPED} in the manifest" in out
    assert '"lambda:InvokeFunction"' in out and f'"Resource": "{FUNCTION_ARN}"' in out
    assert '"InvocationSchemaVersion": "2.0"' in out
    assert recorder.requests == []
    assert moto.client("s3").list_objects_v2(Bucket=reports)["KeyCount"] == 0


def test_missing_options_are_named(moto: Moto, env: None, capsys: Any) -> None:
    bucket = S3Bucket(moto, unique_name("noopts"))

    code = main(["backfill", bucket.uri, "--s3-batch-operations"])
    gs_code = main(["backfill", "gs://some-bucket/", "--s3-batch-operations", "--function-arn", "x"])
    err = capsys.readouterr().err

    assert code == 2 and "it needs --function-arn, --role-arn, --report-uri" in err
    assert gs_code == 2 and "S3 Batch Operations backfills S3 buckets only, not gs://some-bucket/" in err


@pytest.mark.parametrize(
    "key", ["plain.jpg", "a,b.jpg", "line\nbreak.jpg", "100% +1 & é/日本.png", "sp ace/./..%2F.jpg"]
)
def test_manifest_keys_are_url_encoded_and_decode_back_exactly(key: str) -> None:
    line = batch_operations.manifest_line("bkt", key)

    bucket, encoded = line.rstrip("\n").split(",")
    assert (bucket, unquote_plus(encoded)) == ("bkt", key)
    assert line.count("\n") == 1 and encoded.isascii() and " " not in encoded
