"""The backfill engine: list, decide, register in batches, checkpoint after each, resume where it stopped.

Every listed object becomes the ``ObjectEvent`` its cloud's live event would carry, and goes through the same
``shared.ingest.ingest`` as the functions (one ``Delivery`` per object), so the decisions, payloads and global
keys are the live path's.

- Batches close at ``batch_size`` objects to register (or ``SKIP_RUN_FACTOR`` times that many listed, so a long run
  of skipped objects still checkpoints). At most ``concurrency`` register calls are in flight, started no faster
  than ``calls_per_minute``.
- A batch whose rows fail for a retryable reason (throttling, outage) retries just those rows with capped
  exponential backoff; after ``max_attempts`` the run stops, keeping the checkpoint before that batch.
- The checkpoint advances only over batches finished in order, so a resumed run never skips an object; with
  several calls in flight, up to ``concurrency - 1`` finished batches past it are sent again on resume, which
  registering by global key makes harmless (the rows are found present).
- Rows refused for good are counted as failed, logged with their reason and do not stop the run.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from bucket_ingest.backfill.checkpoint import Checkpoint
from bucket_ingest.backfill.listing import Lister, ListingError, Position
from bucket_ingest.backfill.progress import LISTED, Snapshot
from shared.deadline import Deadline
from shared.decision import Register, Skip, decide
from shared.events.model import Delivery, ObjectEvent
from shared.ingest import DeliveryResult, DeliveryStatus, Report, ingest
from shared.registries.base import Registry, RowStatus
from shared.settings import Settings

SKIP_RUN_FACTOR = 4
BACKOFF_CAP_S = 60.0
FAILURE_SAMPLE = 20


class Status(StrEnum):
    COMPLETE = "complete"  # the whole listing is registered
    ALREADY_COMPLETE = "already_complete"  # the checkpoint says so: nothing was listed or registered
    LIMIT = "limit"  # stopped at --max-objects; run again to continue
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM; run again to continue
    REGISTRY_UNAVAILABLE = "registry_unavailable"  # retries exhausted; run again to continue
    LISTING_FAILED = "listing_failed"


@dataclass(frozen=True, slots=True)
class Plan:
    batch_size: int
    concurrency: int = 1
    calls_per_minute: float | None = None
    call_timeout: float = 60.0
    max_attempts: int = 6
    backoff_s: float = 1.0  # the first wait before a retry; it doubles each time, up to BACKOFF_CAP_S
    max_objects: int | None = None
    expected_total: int | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    sequence: int
    events: list[ObjectEvent]
    registers: int
    position: Position  # where the listing stands after this batch


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch: Batch
    report: Report  # one delivery per listed object, in listing order
    calls: int
    gave_up: str | None = None  # why retryable failures remain after the last attempt


@dataclass
class Summary:
    status: Status
    checkpoint: Checkpoint
    listed_this_run: int = 0
    seconds: float = 0.0
    calls: int = 0  # register calls made by this run
    failures: list[dict[str, Any]] = field(default_factory=list)  # a sample of rows refused for good
    message: str = ""

    @property
    def counts(self) -> Counter[str]:
        return self.checkpoint.counts

    def snapshot(self, expected_total: int | None = None) -> Snapshot:
        return Snapshot(self.counts, self.listed_this_run, self.seconds, expected_total)


# Hands one batch of deliveries (one object each) to where the rows are made; one outcome per object back.
Deliver = Callable[[Sequence[Delivery], Deadline], Report]


def registering(settings: Settings, registry: Registry) -> Deliver:
    """Register here, through the functions' own ``ingest`` (the default)."""
    return lambda deliveries, deadline: ingest(deliveries, settings, registry, deadline)


class RateLimiter:
    """Starts at most ``per_minute`` calls a minute, evenly spaced, across threads."""

    def __init__(self, per_minute: float | None) -> None:
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            stop.wait(slot - now)


class Backfill:
    """One run over ``lister``'s bucket from ``checkpoint``, into ``destination``: a registry (registered here
    through ``ingest``) or any ``Deliver`` (the Pub/Sub fan-out)."""

    def __init__(
        self,
        lister: Lister,
        settings: Settings,
        destination: Registry | Deliver,
        checkpoint: Checkpoint,
        checkpoint_path: Path,
        plan: Plan,
        *,
        outcomes: TextIO | None = None,
        on_batch: Callable[[Checkpoint], None] | None = None,
    ) -> None:
        self.lister = lister
        self.settings = settings
        self._deliver = destination if callable(destination) else registering(settings, destination)
        self.checkpoint = checkpoint
        self.checkpoint_path = checkpoint_path
        self.plan = plan
        self._outcomes = outcomes
        self._on_batch = on_batch
        self._limiter = RateLimiter(plan.calls_per_minute)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._listed = 0  # this run, as listed (ahead of the checkpoint)
        self._started = time.monotonic()
        self._summary = Summary(Status.COMPLETE, checkpoint)
        self._blocked = False  # a batch gave up: nothing after it may be checkpointed
        self._limit_reached = False
        self._exhausted = False  # the listing reached its end
        self._listed_before = checkpoint.counts[LISTED]
        self._next_commit = 0

    def stop(self) -> None:
        """Ask the run to stop after the calls in flight (from a signal handler or another thread)."""
        self._stop_with(Status.INTERRUPTED, "stopped")

    def snapshot(self) -> Snapshot:
        """Progress so far: the checkpointed counts, with the objects listed ahead of them."""
        with self._lock:
            counts = Counter(self.checkpoint.counts)
            counts[LISTED] = max(counts[LISTED], self._listed_before + self._listed)
            return Snapshot(counts, self._listed, time.monotonic() - self._started, self.plan.expected_total)

    def run(self) -> Summary:
        summary = self._summary
        if self.checkpoint.complete:
            summary.status = Status.ALREADY_COMPLETE
            return summary
        pending: dict[int, Future[BatchResult]] = {}
        finished: dict[int, BatchResult] = {}
        with ThreadPoolExecutor(self.plan.concurrency, thread_name_prefix="backfill") as pool:
            try:
                for batch in self._batches(self.checkpoint.position):
                    while len(pending) >= self.plan.concurrency:
                        self._collect(pending, finished, block=True)
                    if self._stopping.is_set():
                        break
                    pending[batch.sequence] = pool.submit(self._deliver_batch, batch)
                    self._collect(pending, finished, block=False)
            except ListingError as exc:
                self._stop_with(Status.LISTING_FAILED, str(exc))
            except KeyboardInterrupt:
                self._stop_with(Status.INTERRUPTED, "interrupted")
            finally:
                while pending:  # let the calls in flight finish and checkpoint what they registered
                    self._collect(pending, finished, block=True)
        if summary.status is Status.COMPLETE:
            if self._exhausted:
                self.checkpoint.complete = True
                self.checkpoint.save(self.checkpoint_path)
            else:
                summary.status = Status.LIMIT
                summary.message = f"stopped after --max-objects {self.plan.max_objects or 0:,}"
        summary.listed_this_run = self.checkpoint.counts[LISTED] - self._listed_before
        summary.seconds = time.monotonic() - self._started
        return summary

    def _stop_with(self, status: Status, message: str) -> None:
        if self._summary.status is Status.COMPLETE:
            self._summary.status, self._summary.message = status, message
        self._stopping.set()

    def _batches(self, start: Position) -> Iterator[Batch]:
        events: list[ObjectEvent] = []
        registers, sequence = 0, 0
        position = start
        limit = self.plan.max_objects
        for page in self.lister.pages(start):
            for event in page.events:
                if limit is not None and self._listed >= limit:
                    self._limit_reached = True
                    break
                events.append(event)
                with self._lock:
                    self._listed += 1
                position = Position(event.key, page.token)
                if isinstance(decide(event, self.settings), Register):
                    registers += 1
                if registers >= self.plan.batch_size or len(events) >= SKIP_RUN_FACTOR * self.plan.batch_size:
                    yield Batch(sequence, events, registers, position)
                    events, registers, sequence = [], 0, sequence + 1
            if self._limit_reached or self._stopping.is_set():
                break
        else:
            self._exhausted = True
        if events:
            yield Batch(sequence, events, registers, position)

    def _deliver_batch(self, batch: Batch) -> BatchResult:
        """One batch through ``ingest``, retrying the rows that failed for a reason a retry may cure."""
        deliveries = [Delivery(str(i), (event,)) for i, event in enumerate(batch.events)]
        done: dict[str, DeliveryResult] = {}
        todo, calls, gave_up = deliveries, 0, None
        for attempt in range(1, self.plan.max_attempts + 1):
            if batch.registers:
                self._limiter.wait(self._stopping)
                calls += 1
            report = self._deliver(todo, Deadline(self.plan.call_timeout))
            retry = []
            for delivery, result in zip(todo, report.deliveries, strict=True):
                if result.status is DeliveryStatus.RETRY:
                    retry.append(delivery)
                    gave_up = next((o.detail for o in result.outcomes if o.retryable), "retryable failure")
                done[delivery.id] = result
            if not retry:
                gave_up = None
                break
            if attempt == self.plan.max_attempts or self._stopping.is_set():
                break
            wait_s = min(BACKOFF_CAP_S, self.plan.backoff_s * 2.0 ** (attempt - 1))
            self._stopping.wait(wait_s * random.uniform(0.5, 1.0))  # noqa: S311 (jitter, not secrecy)
            todo = retry
        return BatchResult(batch, Report(tuple(done[d.id] for d in deliveries)), calls, gave_up)

    def _collect(self, pending: dict[int, Future[BatchResult]], finished: dict[int, BatchResult], block: bool) -> None:
        if block and pending:
            wait(pending.values(), return_when=FIRST_COMPLETED)
        for sequence in [s for s, f in pending.items() if f.done()]:
            finished[sequence] = pending.pop(sequence).result()
        while self._next_commit in finished:
            self._commit(finished.pop(self._next_commit))
            self._next_commit += 1

    def _commit(self, result: BatchResult) -> None:
        summary = self._summary
        summary.calls += result.calls
        if self._blocked:
            return
        if result.gave_up is not None:
            self._blocked = True
            self._stop_with(
                Status.REGISTRY_UNAVAILABLE,
                f"the registry kept failing after {self.plan.max_attempts} attempts: {result.gave_up}",
            )
            return
        for outcome in result.report.outcomes:
            if outcome.status == RowStatus.FAILED and len(summary.failures) < FAILURE_SAMPLE:
                summary.failures.append(outcome.log_fields())
            if self._outcomes is not None:
                self._outcomes.write(json.dumps(outcome.log_fields(), ensure_ascii=False) + "\n")
        if self._outcomes is not None:
            self._outcomes.flush()
        with self._lock:
            self.checkpoint.counts.update(result.report.counts())
            self.checkpoint.counts[LISTED] += len(result.batch.events)
            self.checkpoint.position = result.batch.position
            self.checkpoint.batches += 1
        self.checkpoint.save(self.checkpoint_path)
        if self._on_batch is not None:
            self._on_batch(self.checkpoint)


@dataclass
class DryRun:
    """What a backfill would do: counts per media type, dataset and skip reason, and sample payloads."""

    listed: int = 0
    media_types: Counter[str] = field(default_factory=Counter)
    datasets: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)
    skip_examples: dict[str, dict[str, str]] = field(default_factory=dict)  # one object per skip reason

    @property
    def would_register(self) -> int:
        return sum(self.datasets.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "listed": self.listed,
            "would_register": self.would_register,
            "media_types": dict(self.media_types.most_common()),
            "datasets": dict(self.datasets.most_common()),
            "skipped": dict(self.skipped.most_common()),
            "skip_examples": self.skip_examples,
            "sample": self.sample,
        }


def dry_run(lister: Lister, settings: Settings, *, sample: int = 5, max_objects: int | None = None) -> DryRun:
    """List and decide without registering anything or writing a checkpoint."""
    result = DryRun()
    for page in lister.pages(Position()):
        for event in page.events:
            if max_objects is not None and result.listed >= max_objects:
                return result
            result.listed += 1
            decision = decide(event, settings)
            if isinstance(decision, Skip):
                result.skipped[decision.reason] += 1
                result.skip_examples.setdefault(decision.reason, {"object": event.location, "detail": decision.detail})
            elif isinstance(decision, Register):
                payload = decision.payload
                result.media_types[payload.media_type or "inferred by Labelbox"] += 1
                result.datasets[payload.dataset_id] += 1
                if len(result.sample) < sample:
                    result.sample.append(payload.as_dict())
    return result
