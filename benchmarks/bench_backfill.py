"""Backfill throughput: 100,000 objects from moto S3 (server mode) into the embedded catalog, and registry
requests per 1,000 objects.

How the bucket is filled: moto's server runs in its own process (``bucket_ingest.emulators.ManagedProcess``,
as ``emulators.Moto`` runs it), started as this script's ``--serve-moto`` mode, which first puts the objects
straight into moto's in-process S3 backend (``s3_backends[account]["global"].put_object``: tens of thousands a
second, where HTTP PUTs manage about a thousand) and then serves them over HTTP. The backfill lists them through
the real S3 API like any client.

Figures, all measured in this run:
- listing floor: boto3's ListObjectsV2 paginator alone over the same bucket (nothing decided or registered),
  the most any backfill can do against this server;
- dry run: listing and deciding;
- backfill into the embedded catalog with its default batches (1,000 rows per call): objects/s, and SQLite
  transactions per 1,000 objects (one per register call: ``shared/registries/sqlite.py``);
- baseline: the same objects registered one call per object (as a per-object script would), on the first
  ``--baseline-objects`` objects;
- through the Labelbox client (``shared/registries/labelbox.py``) and the local Labelbox-compatible endpoint
  (``bucket_ingest/labelbox_endpoint``): objects/s and HTTP requests per 1,000 objects, counted by the endpoint.
  The local endpoint is not rate limited, so the run lifts the registry's calls-per-minute limit; against
  Labelbox that limit (30 calls a minute of 10,000 rows) caps a backfill at 300,000 rows a minute.

Run: .venv/bin/python benchmarks/bench_backfill.py [--objects 100000] [--baseline-objects 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bucket_ingest.backfill.checkpoint import Checkpoint, settings_fingerprint
from bucket_ingest.backfill.limits import limits_for
from bucket_ingest.backfill.listing import Endpoints, Position
from bucket_ingest.backfill.runner import Backfill, Plan, Status, Summary, dry_run
from bucket_ingest.backfill.s3 import S3Lister
from bucket_ingest.backfill.target import parse_target
from bucket_ingest.emulators import LOOPBACK, ManagedProcess, Moto, http_answers
from shared.deadline import Deadline
from shared.payloads import Payload
from shared.registries import open_registry
from shared.registries.base import Registry, RowResult
from shared.settings import Settings

BUCKET = "backfill-bench"
POPULATED = "populated "
SKIP_EVERY = 100  # one object in a hundred has a type Labelbox does not take (skipped with a reason)
EMPTY_EVERY = 250  # one in 250 is empty (skipped as zero-byte)


def object_keys(count: int) -> Iterator[tuple[str, bytes]]:
    """Keys spread over folders like a camera dump: images mostly, some empties and unsupported files."""
    for i in range(count):
        folder = f"site-{i % 20:02d}/2024-{i % 12 + 1:02d}/batch {i // 1000:03d}"
        if i % SKIP_EVERY == 0:
            yield f"{folder}/sidecar-{i:06d}.xmp", b"x"
        elif i % EMPTY_EVERY == 0:
            yield f"{folder}/IMG_{i:06d}.jpg", b""
        else:
            yield f"{folder}/IMG_{i:06d}.jpg", b"x"


def serve_moto(port: int, count: int) -> None:
    """This script's server mode: fill moto's S3 backend in process, then serve it (moto's own server main)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import main as moto_server

    started = time.perf_counter()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    backend.create_bucket(BUCKET, Moto.region)
    for key, body in object_keys(count):
        backend.put_object(BUCKET, key, body)
    print(f"{POPULATED}{count} {time.perf_counter() - started:.2f}", flush=True)
    moto_server(["-H", LOOPBACK, "-p", str(port)])


def populated_moto(count: int, on_line: Any) -> ManagedProcess:
    return ManagedProcess(
        "moto (populated)",
        lambda port: [sys.executable, __file__, "--serve-moto", str(port), "--objects", str(count)],
        lambda port: http_answers(f"http://{LOOPBACK}:{port}/moto-api/"),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        on_line=on_line,
        start_timeout=600,
    )


class Counted:
    """A registry that counts its calls (for SQLite, one transaction each) and the time spent in them."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.calls = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def register(self, payloads: Sequence[Payload], deadline: Deadline) -> list[RowResult]:
        started = time.perf_counter()
        try:
            return self.registry.register(payloads, deadline)
        finally:
            with self._lock:
                self.calls += 1
                self.seconds += time.perf_counter() - started

    def delete(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]:
        self.calls += 1
        return self.registry.delete(global_keys, deadline)

    def mark_deleted(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]:
        self.calls += 1
        return self.registry.mark_deleted(global_keys, deadline)

    def close(self) -> None:
        self.registry.close()


@dataclass(frozen=True, slots=True)
class Measured:
    name: str
    objects: int
    seconds: float
    registry_calls: int | None = None
    registry_seconds: float | None = None
    http_requests: int | None = None

    @property
    def rate(self) -> float:
        return self.objects / self.seconds

    @property
    def registry_seconds_per_object(self) -> float:
        return (self.registry_seconds or 0.0) / self.objects

    def line(self) -> str:
        parts = [f"{self.name:<46} {self.objects:>8,} objects {self.seconds:8.2f} s {self.rate:>9,.0f} objects/s"]
        if self.registry_calls is not None and self.registry_seconds is not None:
            parts.append(f"{self.registry_calls * 1000 / self.objects:7.2f} register calls")
            parts.append(f"{self.registry_seconds * 1000 / self.objects:7.3f} s in the registry")
        if self.http_requests is not None:
            parts.append(f"{self.http_requests * 1000 / self.objects:6.2f} HTTP requests")
        return "  ".join(parts)


def settings_for(registry_url: str, extra: dict[str, str] | None = None) -> Settings:
    return Settings.from_env({"INGEST_REGISTRY": registry_url, **(extra or {})})


def run_backfill(
    settings: Settings, registry: Counted, plan: Plan, checkpoint_path: Path, endpoints: Endpoints
) -> tuple[Summary, float]:
    target = parse_target(f"s3://{BUCKET}/")
    checkpoint = Checkpoint(target.uri, settings.registry_url, settings_fingerprint(settings))
    job = Backfill(S3Lister(target, endpoints), settings, registry, checkpoint, checkpoint_path, plan)
    started = time.perf_counter()
    summary = job.run()
    seconds = time.perf_counter() - started
    if summary.status not in {Status.COMPLETE, Status.LIMIT}:
        raise SystemExit(f"backfill stopped: {summary.status}: {summary.message}")
    return summary, seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--baseline-objects", type=int, default=5_000)
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_moto:
        serve_moto(args.serve_moto, args.objects)
        return 0

    populated: list[str] = []
    server = populated_moto(args.objects, lambda line: populated.append(line) if line.startswith(POPULATED) else None)
    print(f"filling moto's S3 backend with {args.objects:,} objects in its own process ...", flush=True)
    wall = time.perf_counter()
    with server, tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder:
        fill_s = float(populated[0].split()[2]) if populated else float("nan")
        print(f"  filled in {fill_s:.1f} s ({args.objects / fill_s:,.0f} objects/s); server ready after "
              f"{time.perf_counter() - wall:.1f} s")  # fmt: skip
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://{LOOPBACK}:{server.port}",
            AWS_ACCESS_KEY_ID=Moto.access_key_id,
            AWS_SECRET_ACCESS_KEY=Moto.secret_access_key,
            AWS_DEFAULT_REGION=Moto.region,
        )
        endpoints = Endpoints(region=Moto.region)
        results: list[Measured] = []

        lister = S3Lister(parse_target(f"s3://{BUCKET}/"), endpoints)
        started = time.perf_counter()
        listed = sum(len(page.events) for page in lister.pages(Position()))
        results.append(Measured("listing floor (ListObjectsV2 pages only)", listed, time.perf_counter() - started))

        sqlite_url = f"sqlite:///{folder}/catalog.sqlite?dataset=bench"
        settings = settings_for(sqlite_url)
        started = time.perf_counter()
        report = dry_run(S3Lister(parse_target(f"s3://{BUCKET}/"), endpoints), settings, sample=0)
        results.append(Measured("dry run (list + decide)", report.listed, time.perf_counter() - started))

        limits = limits_for(sqlite_url)
        plan = Plan(batch_size=limits.batch_size, concurrency=limits.concurrency, call_timeout=limits.call_timeout)
        catalog = Counted(open_registry(settings))
        summary, seconds = run_backfill(settings, catalog, plan, Path(folder) / "a.json", endpoints)
        results.append(Measured("backfill → embedded catalog (1,000 per call)", summary.listed_this_run, seconds,
                                catalog.calls, catalog.seconds))  # fmt: skip
        rows = summary.counts["created"]
        expected = report.would_register
        catalog.close()

        baseline_url = f"sqlite:///{folder}/baseline.sqlite?dataset=bench"
        baseline_settings = settings_for(baseline_url)
        baseline = Counted(open_registry(baseline_settings))
        one_by_one = Plan(batch_size=1, max_objects=args.baseline_objects, call_timeout=limits.call_timeout)
        summary_1, seconds_1 = run_backfill(baseline_settings, baseline, one_by_one, Path(folder) / "b.json", endpoints)
        results.append(Measured("baseline: one register call per object", summary_1.listed_this_run, seconds_1,
                                baseline.calls, baseline.seconds))  # fmt: skip
        baseline.close()

        labelbox = measure_labelbox(endpoints, Path(folder))
        if labelbox is not None:
            results.append(labelbox)

    print()
    print("(per 1,000 objects listed: register calls, seconds spent inside them, HTTP requests to the endpoint)")
    for result in results:
        print(result.line())
    backfill, base = results[2], results[3]
    print()
    skipped = ", ".join(f"{reason} {count:,}" for reason, count in report.skipped.items())
    print(f"rows registered: {rows:,} of {expected:,} the dry run counted (skipped: {skipped})")
    print(
        f"backfill vs listing floor: {backfill.rate / results[0].rate:.0%}; "
        f"vs one call per object (on the first {base.objects:,}): {backfill.rate / base.rate:.1f}x the objects/s, "
        f"{base.registry_seconds_per_object / backfill.registry_seconds_per_object:.0f}x less time in the registry"
    )
    print("moto lists every page by scanning and sorting the whole bucket, so at 100,000 objects its listing, not the "
          "backfill, sets the pace")  # fmt: skip
    if rows != expected:
        print("MISMATCH: the backfill did not register what the dry run counted", file=sys.stderr)
        return 1
    return 0


def measure_labelbox(endpoints: Endpoints, folder: Path) -> Measured | None:
    try:
        from bucket_ingest.labelbox_endpoint.server import DEFAULT_API_KEY, LabelboxEndpoint
    except ImportError:
        print("(no Labelbox-compatible endpoint in this checkout: HTTP requests per 1,000 not measured)")
        return None
    with LabelboxEndpoint(folder / "labelbox.sqlite") as endpoint:
        dataset = endpoint.create_dataset("backfill-bench")
        settings = settings_for(
            f"labelbox://{dataset}", {"LABELBOX_ENDPOINT": endpoint.url, "LABELBOX_API_KEY": DEFAULT_API_KEY}
        )
        limits = limits_for(settings.registry_url)
        plan = Plan(batch_size=limits.batch_size, concurrency=limits.concurrency, call_timeout=limits.call_timeout)
        registry = Counted(open_registry(settings))
        endpoint.clear_requests()
        summary, seconds = run_backfill(settings, registry, plan, folder / "l.json", endpoints)
        requests = len(endpoint.requests())
        registry.close()
    return Measured("backfill → Labelbox client → local endpoint", summary.listed_this_run, seconds,
                    registry.calls, registry.seconds, requests)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
