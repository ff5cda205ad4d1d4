"""`bucket-ingest backfill URI`: register the objects already in a bucket, resumably.

URI is ``s3://BUCKET/PREFIX``, ``gs://BUCKET/PREFIX`` or ``https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX``.
Settings come from the same INGEST_* variables as the deployed functions (so the same objects register, with
the same global keys); ``--registry`` overrides INGEST_REGISTRY. Running the same command again after an
interruption continues from the checkpoint; after a finished run it does nothing. See docs/backfill.md.

Exit status: 0 done (or stopped at --max-objects), 1 done but some rows were refused (listed in the summary and
in --outcomes), 2 bad input or configuration (nothing registered), 75 stopped by a listing or registry failure
(run again to continue), 130 interrupted (run again to continue).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from bucket_ingest.backfill.checkpoint import Checkpoint, CheckpointError, default_path, settings_fingerprint
from bucket_ingest.backfill.limits import limits_for
from bucket_ingest.backfill.listing import Endpoints, Lister, ListingError, open_lister
from bucket_ingest.backfill.progress import Reporter, duration
from bucket_ingest.backfill.runner import Backfill, Deliver, DryRun, Plan, Status, Summary, dry_run
from bucket_ingest.backfill.target import Target, TargetError, parse_target
from shared.events.model import Cloud
from shared.registries import open_registry
from shared.registries.base import Registry, RowStatus
from shared.settings import Settings, SettingsError

PROG = "bucket-ingest backfill"
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL: try again later
EXIT_INTERRUPTED = 130
EXIT_STATUS: Mapping[Status, int] = {
    Status.COMPLETE: 0,
    Status.ALREADY_COMPLETE: 0,
    Status.LIMIT: 0,
    Status.INTERRUPTED: EXIT_INTERRUPTED,
    Status.REGISTRY_UNAVAILABLE: EXIT_TEMPFAIL,
    Status.LISTING_FAILED: EXIT_TEMPFAIL,
}


class UsageError(Exception):
    """Bad input or configuration found before anything was registered."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "uri", help="s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or https://ACCOUNT.blob.core.windows.net/C/PREFIX"
    )
    parser.add_argument(
        "--registry",
        metavar="URL",
        help="registry URL (default: INGEST_REGISTRY): labelbox://DATASET or sqlite:///PATH",
    )
    parser.add_argument("--dry-run", action="store_true", help="list and decide, register nothing: counts and samples")
    parser.add_argument("--json", action="store_true", help="JSON summary on stdout, JSON progress lines on stderr")
    parser.add_argument(
        "--checkpoint", metavar="PATH", type=Path, help="checkpoint file (default: .bucket-ingest/backfill/...)"
    )
    parser.add_argument("--restart", action="store_true", help="ignore the checkpoint and list from the start")
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="S3 endpoint, GCS API endpoint or Azure account URL (emulators)"
    )
    parser.add_argument(
        "--region", metavar="REGION", help="the S3 bucket's region (default: asked of S3 with HeadBucket)"
    )
    parser.add_argument(
        "--batch-size", metavar="N", type=_positive, help="rows per register call (default: the registry's)"
    )
    parser.add_argument(
        "--concurrency", metavar="N", type=_positive, help="register calls in flight (default: the registry's)"
    )
    parser.add_argument(
        "--calls-per-minute", metavar="N", type=float, help="start at most this many register calls a minute"
    )
    parser.add_argument(
        "--call-timeout", metavar="SECONDS", type=float, help="seconds one register call may take (the registry's)"
    )
    parser.add_argument(
        "--max-attempts", metavar="N", type=_positive, default=6, help="tries per batch before stopping (6)"
    )
    parser.add_argument(
        "--page-size", metavar="N", type=_positive, default=1000, help="objects per listing page (1000)"
    )
    parser.add_argument(
        "--max-objects", metavar="N", type=_positive, help="stop after this many objects; run again to continue"
    )
    parser.add_argument("--expected", metavar="N", type=_positive, help="how many objects to expect, for an ETA")
    parser.add_argument("--sample", metavar="N", type=int, default=5, help="payloads shown by --dry-run (5)")
    parser.add_argument(
        "--publish-to", metavar="TOPIC", help="GCS: publish each object's notification to projects/P/topics/T for "
        "the deployed function to register, instead of registering here"
    )  # fmt: skip
    parser.add_argument(
        "--outcomes", metavar="PATH", type=Path, help="append one JSON line per object (outcome, reason) to this file"
    )
    parser.add_argument(
        "--progress-interval",
        metavar="SECONDS",
        type=float,
        default=2.0,
        help="seconds between progress lines (0: none)",
    )
    batch = parser.add_argument_group("S3 Batch Operations (buckets of any size, run by S3 itself)")
    batch.add_argument("--s3-batch-operations", action="store_true", help="create a Batch Operations job instead")
    batch.add_argument("--function-arn", metavar="ARN", help="the deployed ingest Lambda function the job invokes")
    batch.add_argument(
        "--role-arn", metavar="ARN", help="the IAM role S3 Batch Operations assumes (see docs/backfill.md)"
    )
    batch.add_argument("--report-uri", metavar="S3_URI", help="s3://BUCKET/PREFIX for the job's completion report")
    batch.add_argument(
        "--manifest-uri", metavar="S3_URI", help="s3://BUCKET/KEY.csv for the manifest (default: under --report-uri)"
    )
    batch.add_argument(
        "--inventory-manifest", metavar="S3_URI", help="s3://BUCKET/.../manifest.json of an S3 Inventory report to use"
    )
    batch.add_argument("--account-id", metavar="ID", help="the AWS account that runs the job (default: the caller's)")
    batch.add_argument("--priority", metavar="N", type=int, default=10, help="job priority (10)")
    batch.add_argument("--confirm-in-console", action="store_true", help="create the job suspended, to confirm")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} should be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        target = parse_target(args.uri)
        settings = _settings(args.registry)
        lister = open_lister(target, _endpoints(args))
        if args.s3_batch_operations:
            from bucket_ingest.backfill import batch_operations

            return batch_operations.run(args, target, settings, lister)
        lister.check()
        if args.dry_run:
            report = dry_run(lister, settings, sample=max(0, args.sample), max_objects=args.max_objects)
            _print_dry_run(target, report, args.json)
            return 0
        return _backfill(args, target, settings, lister)
    except (TargetError, SettingsError, ListingError, CheckpointError, UsageError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _settings(registry: str | None) -> Settings:
    env = dict(os.environ)
    if registry:
        env["INGEST_REGISTRY"] = registry
    return Settings.from_env(env)


def _endpoints(args: argparse.Namespace) -> Endpoints:
    return Endpoints(
        url=args.endpoint_url,
        region=args.region,
        azure_connection_string=os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or None,
        azure_account_key=os.environ.get("AZURE_STORAGE_KEY") or None,
        azure_sas_token=os.environ.get("AZURE_STORAGE_SAS_TOKEN") or None,
        page_size=args.page_size,
    )


def _plan(args: argparse.Namespace, registry_url: str) -> Plan:
    limits = limits_for(registry_url)
    batch_size = args.batch_size or limits.batch_size
    if batch_size > limits.max_batch_size:
        raise UsageError(
            f"--batch-size {batch_size:,} is over what the registry takes in one call ({limits.max_batch_size:,})"
        )
    for name in ("calls_per_minute", "call_timeout"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} should be a positive number")
    return Plan(
        batch_size=batch_size,
        concurrency=args.concurrency or limits.concurrency,
        calls_per_minute=args.calls_per_minute or limits.calls_per_minute,
        call_timeout=args.call_timeout or limits.call_timeout,
        max_attempts=args.max_attempts,
        max_objects=args.max_objects,
        expected_total=args.expected,
    )


def _backfill(args: argparse.Namespace, target: Target, settings: Settings, lister: Lister) -> int:
    destination = args.publish_to or settings.registry_url  # where the rows are made: a registry, or a topic
    if args.publish_to and target.cloud is not Cloud.GCP:
        raise UsageError(f"--publish-to fans out Cloud Storage backfills only, not {target.uri}")
    try:
        plan = _plan(args, "pubsub://" if args.publish_to else settings.registry_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path: Path = args.checkpoint or default_path(target, destination)
    fingerprint = settings_fingerprint(settings)
    checkpoint = None if args.restart else Checkpoint.load(path)
    if checkpoint is not None and (why := checkpoint.mismatch(target.uri, destination, fingerprint)):
        raise UsageError(f"the checkpoint {path} does not belong to this run: {why} (or pass another --checkpoint)")
    if checkpoint is None:
        checkpoint = Checkpoint(target.uri, destination, fingerprint)
    try:
        checkpoint.save(path)  # before anything registers: a run that cannot record its progress does not start
    except OSError as exc:
        raise UsageError(
            f"cannot write the checkpoint {path} ({exc.strerror or exc}): pass a writable --checkpoint"
        ) from None
    registry: Registry | None = None
    try:
        if args.publish_to:
            from bucket_ingest.backfill.pubsub import PubSubFanOut

            deliver: Registry | Deliver = PubSubFanOut(args.publish_to, settings)
        else:
            deliver = registry = open_registry(settings)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot open {destination}: {exc}") from None
    err = sys.stderr
    resuming = checkpoint.batches > 0 and not checkpoint.complete
    if not args.json and not checkpoint.complete:
        where = f"resuming after {checkpoint.counts['listed']:,} objects" if resuming else "starting"
        print(f"{PROG}: {target.uri} → {destination} ({where}; checkpoint {path})", file=err)
    try:
        with _open_outcomes(args.outcomes) as outcomes:
            backfill = Backfill(lister, settings, deliver, checkpoint, path, plan, outcomes=outcomes)
            reporter = Reporter(backfill.snapshot, err, args.progress_interval, as_json=args.json)
            reporter.start()
            try:
                with _stop_on_sigterm(backfill):
                    summary = backfill.run()
            finally:
                reporter.stop()
    finally:
        if registry is not None:
            registry.close()
    _print_summary(target, destination, path, plan, summary, args.json)
    code = EXIT_STATUS[summary.status]
    if code == 0 and summary.status is Status.COMPLETE and summary.counts[RowStatus.FAILED]:
        return 1
    return code


@contextlib.contextmanager
def _open_outcomes(path: Path | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    try:
        stream = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write --outcomes {path} ({exc.strerror or exc})") from None
    with stream:
        yield stream


@contextlib.contextmanager
def _stop_on_sigterm(backfill: Backfill) -> Iterator[None]:
    """SIGTERM (a container stop, `kill`) ends the run like Ctrl-C: calls in flight finish and checkpoint."""

    def stop(signum: int, frame: FrameType | None) -> None:
        backfill.stop()

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_summary(target: Target, registry: str, path: Path, plan: Plan, summary: Summary, as_json: bool) -> None:
    snapshot = summary.snapshot(plan.expected_total)
    if as_json:
        document: dict[str, Any] = {
            "status": summary.status.value,
            "uri": target.uri,
            "registry": registry,
            "checkpoint": str(path),
            "totals": snapshot.as_dict(),
            "this_run": {
                "listed": summary.listed_this_run,
                "seconds": round(summary.seconds, 3),
                "objects_per_second": round(snapshot.rate, 1),
                "register_calls": summary.calls,
            },
            "failures": summary.failures,
            "message": summary.message,
        }
        print(json.dumps(document, ensure_ascii=False, indent=1))
        return
    checkpoint = summary.checkpoint
    if summary.status is Status.ALREADY_COMPLETE:
        print(
            f"{target.uri} was already backfilled into {registry} (finished {checkpoint.updated_at}): nothing to do. "
            f"Use --restart to list it again (registering is idempotent)."
        )
    else:
        print(f"{target.uri} → {registry}: {summary.status.value}{f' ({summary.message})' if summary.message else ''}")
    print(f"  {snapshot.totals_line()}")
    if summary.status is not Status.ALREADY_COMPLETE:
        rate = f"{snapshot.rate:,.0f} objects/s"
        print(
            f"  this run: {summary.listed_this_run:,} objects in {duration(summary.seconds)} ({rate}), "
            f"{summary.calls:,} register calls"
        )
    for failure in summary.failures:
        print(f"  failed: {failure.get('object')}: {failure.get('detail')}")
    if summary.status not in {Status.COMPLETE, Status.ALREADY_COMPLETE}:
        print(f"  the checkpoint {path} is saved: run the same command to continue")


def _print_dry_run(target: Target, report: DryRun, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"uri": target.uri, **report.as_dict()}, ensure_ascii=False, indent=1))
        return
    print(f"dry run of {target.uri}: {report.listed:,} objects listed, {report.would_register:,} would register")

    def table(title: str, counts: Mapping[str, int]) -> None:
        if counts:
            print(f"  {title}:")
            for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
                print(f"    {count:>10,}  {name}")

    table("by media type", report.media_types)
    table("by dataset", report.datasets)
    table("skipped, by reason", report.skipped)
    for reason, example in report.skip_examples.items():
        print(f"  e.g. {reason}: {example['object']}: {example['detail']}")
    if report.sample:
        print("  sample payloads:")
        for payload in report.sample:
            print(f"    {json.dumps(payload, ensure_ascii=False)}")
