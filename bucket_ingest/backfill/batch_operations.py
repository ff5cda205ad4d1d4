"""S3 Batch Operations: S3 itself backfills a bucket of any size by invoking the deployed ingest Lambda per object.

``bucket-ingest backfill s3://BUCKET/PREFIX --s3-batch-operations --function-arn ... --role-arn ... --report-uri ...``

1. The manifest: by default the bucket is listed here and every object the function would register is written as
   ``BUCKET,KEY`` to a CSV manifest, keys URL-encoded as Batch Operations requires
   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-create-job.html#create-manifest-file), then
   uploaded. Filtering here matters: a Batch Operations task names only bucket, key and version, so the function
   cannot apply INGEST_SKIP_ZERO_BYTE or INGEST_MAX_SIZE itself. ``--inventory-manifest`` instead hands over an S3
   Inventory report's ``manifest.json`` (CSV format), for buckets too large to list from one machine.
2. The job: ``s3control.CreateJob`` with the ``LambdaInvoke`` operation, invocation schema 2.0
   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html ,
   https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html) and a completion report of
   the failed tasks. The client request token derives from the manifest's ETag, so creating the same job twice
   returns the first one.
3. The function answers each task ``Succeeded`` / ``TemporaryFailure`` (retried by S3) / ``PermanentFailure``
   (``handlers.aws``). The rows are the live path's: same global keys, same URIs (the function's region is the
   bucket's, or INGEST_AWS_REGION says it).

``role_policy`` and ``TRUST_POLICY`` are the IAM the job's role needs; docs/backfill.md lists the caller's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from bucket_ingest.backfill.listing import Lister, Position
from bucket_ingest.backfill.target import Target
from shared.decision import Register, Skip, decide
from shared.events.model import Cloud
from shared.settings import Settings

CSV_FORMAT = "S3BatchOperations_CSV_20180820"
INVENTORY_FORMAT = "S3InventoryReport_CSV_20161130"
REPORT_FORMAT = "Report_CSV_20180820"
INVOCATION_SCHEMA_VERSION = "2.0"
MANIFEST_FIELDS = ("Bucket", "Key")
TRUST_POLICY: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
PROG = "bucket-ingest backfill --s3-batch-operations"


class BatchOperationsError(Exception):
    """Missing or wrong options, or an AWS call that failed; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, what: str) -> S3Location:
        if not uri.startswith("s3://") or not uri[len("s3://") :].partition("/")[0]:
            raise BatchOperationsError(f"{what} {uri!r} should be s3://BUCKET/KEY")
        bucket, _, key = uri[len("s3://") :].partition("/")
        return cls(bucket, key)

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}/{self.key}"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class ManifestStats:
    listed: int = 0
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def manifest_line(bucket: str, key: str) -> str:
    """One CSV row: the key URL-encoded (',' and newlines too, so no CSV quoting is needed); '/' kept."""
    return f"{bucket},{quote(key, safe='/')}\n"


def write_manifest(lister: Lister, settings: Settings, out: TextIO) -> ManifestStats:
    """List the bucket and write every object the function would register; count the others by reason."""
    stats = ManifestStats()
    for page in lister.pages(Position()):
        for event in page.events:
            stats.listed += 1
            decision = decide(event, settings)
            if isinstance(decision, Register):
                out.write(manifest_line(event.bucket, event.key or ""))
                stats.written += 1
            elif isinstance(decision, Skip):
                stats.skipped[decision.reason] += 1
    return stats


def client_request_token(manifest: S3Location, etag: str, function_arn: str) -> str:
    """The same manifest version and function give the same token: CreateJob is then idempotent."""
    return hashlib.sha256(f"{manifest.arn}\0{etag}\0{function_arn}".encode()).hexdigest()[:64]


def create_job_request(
    *,
    account_id: str,
    function_arn: str,
    role_arn: str,
    manifest: S3Location,
    manifest_etag: str,
    inventory: bool,
    report: S3Location,
    priority: int,
    confirmation_required: bool,
    description: str,
) -> dict[str, Any]:
    """The ``CreateJob`` parameters (boto3 names)."""
    spec: dict[str, Any] = (
        {"Format": INVENTORY_FORMAT} if inventory else {"Format": CSV_FORMAT, "Fields": list(MANIFEST_FIELDS)}
    )
    return {
        "AccountId": account_id,
        "ConfirmationRequired": confirmation_required,
        "Operation": {
            "LambdaInvoke": {
                "FunctionArn": function_arn,
                "InvocationSchemaVersion": INVOCATION_SCHEMA_VERSION,
                "UserArguments": {"source": "bucket-ingest backfill"},
            }
        },
        "Report": {
            "Bucket": f"arn:aws:s3:::{report.bucket}",
            "Prefix": report.key.rstrip("/") or "bucket-ingest",
            "Format": REPORT_FORMAT,
            "Enabled": True,
            "ReportScope": "FailedTasksOnly",
        },
        "ClientRequestToken": client_request_token(manifest, manifest_etag, function_arn),
        "Manifest": {"Spec": spec, "Location": {"ObjectArn": manifest.arn, "ETag": manifest_etag}},
        "Priority": priority,
        "RoleArn": role_arn,
        "Description": description[:256],
    }


def role_policy(function_arn: str, manifest: S3Location, report: S3Location, inventory: bool) -> dict[str, Any]:
    """What the role Batch Operations assumes needs: invoke the function, read the manifest (with an inventory,
    its data files beside it), write the report."""
    manifest_objects = (
        f"arn:aws:s3:::{manifest.bucket}/{manifest.key.rsplit('/', 1)[0]}/*" if inventory else manifest.arn
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeIngestFunction",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": function_arn,
            },
            {
                "Sid": "ReadManifest",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": sorted({manifest.arn, manifest_objects}),
            },
            {
                "Sid": "WriteReport",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{report.bucket}/{report.key.rstrip('/') or 'bucket-ingest'}/*",
            },
            {
                "Sid": "LocateBuckets",
                "Effect": "Allow",
                "Action": "s3:GetBucketLocation",
                "Resource": sorted({f"arn:aws:s3:::{manifest.bucket}", f"arn:aws:s3:::{report.bucket}"}),
            },
        ],
    }


def aws_client(service: str, endpoint_url: str | None, region: str) -> Any:
    """A boto3 client (the tests replace this for ``s3control``, which moto does not implement)."""
    import boto3  # type: ignore[import-untyped, unused-ignore]

    endpoint = endpoint_url if service != "s3control" else None  # S3 emulators serve no control plane
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region)


def run(args: argparse.Namespace, target: Target, settings: Settings, lister: Lister) -> int:
    try:
        return _run(args, target, settings, lister)
    except BatchOperationsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, target: Target, settings: Settings, lister: Lister) -> int:
    from bucket_ingest.backfill.s3 import S3Lister

    if target.cloud is not Cloud.AWS or not isinstance(lister, S3Lister):
        raise BatchOperationsError(f"S3 Batch Operations backfills S3 buckets only, not {target.uri}")
    missing = [f"--{n.replace('_', '-')}" for n in ("function_arn", "role_arn", "report_uri") if not getattr(args, n)]
    if missing:
        raise BatchOperationsError(f"it needs {', '.join(missing)} (see docs/backfill.md)")
    report = S3Location.parse(args.report_uri, "--report-uri")
    region = _aws(lister.bucket_region)
    s3 = aws_client("s3", args.endpoint_url, region)
    inventory = args.inventory_manifest is not None
    notes: list[str] = []
    if inventory:
        manifest = S3Location.parse(args.inventory_manifest, "--inventory-manifest")
        etag = _aws(lambda: s3.head_object(Bucket=manifest.bucket, Key=manifest.key)["ETag"])
        stats = None
        if target.prefix:
            notes.append(
                f"the inventory lists what its configuration covers: the prefix '{target.prefix}' is not applied"
            )
        if settings.skip_zero_byte or settings.max_size is not None:
            notes.append("tasks carry no object size: the function cannot skip empty or oversized objects")
    else:
        lister.check()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        default_key = f"{report.key.rstrip('/') or 'bucket-ingest'}/manifests/{target.bucket}-{stamp}.csv"
        manifest = S3Location.parse(args.manifest_uri or f"s3://{report.bucket}/{default_key}", "--manifest-uri")
        with tempfile.TemporaryDirectory(prefix="bucket-ingest-manifest-") as folder:
            path = Path(folder) / "manifest.csv"
            with path.open("w", encoding="ascii", newline="") as out:
                stats = write_manifest(lister, settings, out)
            if args.dry_run:
                etag = "(the uploaded manifest's ETag)"
            elif stats.written == 0:
                raise BatchOperationsError(f"nothing in {target.uri} would register: no job to create")
            else:
                _aws(lambda: s3.upload_file(str(path), manifest.bucket, manifest.key))
                etag = _aws(lambda: s3.head_object(Bucket=manifest.bucket, Key=manifest.key)["ETag"])
    account = args.account_id or _aws(
        lambda: aws_client("sts", args.endpoint_url, region).get_caller_identity()["Account"]
    )
    request = create_job_request(
        account_id=account,
        function_arn=args.function_arn,
        role_arn=args.role_arn,
        manifest=manifest,
        manifest_etag=etag,
        inventory=inventory,
        report=report,
        priority=args.priority,
        confirmation_required=args.confirm_in_console,
        description=f"bucket-ingest backfill of {target.uri}",
    )
    policy = role_policy(args.function_arn, manifest, report, inventory)
    job_id = None
    if not args.dry_run:
        s3control = aws_client("s3control", args.endpoint_url, region)
        job_id = _aws(lambda: s3control.create_job(**request)["JobId"])
    _print(args, target, region, manifest, stats, request, policy, job_id, notes)
    return 0


def _aws(call: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped, unused-ignore]

    try:
        return call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "the call")
        raise BatchOperationsError(f"{operation} failed: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise BatchOperationsError(str(exc)) from None


def _print(
    args: argparse.Namespace,
    target: Target,
    region: str,
    manifest: S3Location,
    stats: ManifestStats | None,
    request: dict[str, Any],
    policy: dict[str, Any],
    job_id: str | None,
    notes: list[str],
) -> None:
    document: dict[str, Any] = {
        "uri": target.uri,
        "dry_run": bool(args.dry_run),
        "region": region,
        "manifest": manifest.uri,
        "job_id": job_id,
        "create_job": request,
        "role_policy": policy,
        "trust_policy": TRUST_POLICY,
        "notes": notes,
    }
    if stats is not None:
        document.update(listed=stats.listed, tasks=stats.written, skipped=dict(stats.skipped.most_common()))
    if args.json:
        print(json.dumps(document, indent=1, ensure_ascii=False))
        return
    if stats is not None:
        skipped = ", ".join(f"{k} {v:,}" for k, v in stats.skipped.most_common()) or "none"
        print(f"{target.uri}: {stats.listed:,} objects listed, {stats.written:,} in the manifest (skipped: {skipped})")
    print(f"manifest: {manifest.uri}")
    for note in notes:
        print(f"note: {note}")
    if job_id:
        print(f"created S3 Batch Operations job {job_id} in {region}; follow it with")
        print(f"  aws s3control describe-job --account-id {request['AccountId']} --job-id {job_id} --region {region}")
    else:
        print("dry run: no manifest uploaded, no job created. The CreateJob request would be:")
        print(json.dumps(request, indent=1))
        print("and the role it names needs (trust: batchoperations.s3.amazonaws.com):")
        print(json.dumps(policy, indent=1))
