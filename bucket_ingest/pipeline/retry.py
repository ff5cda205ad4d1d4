"""Push delivery with the platform's retries: what Eventarc (a Pub/Sub push subscription) and Event Grid do
with an event their endpoint failed.

Both push one event per request, count a non-2xx answer (or no answer in time) as a failure, try again after a
growing delay and, past the limit, dead-letter the event. The vendors' schedules are minutes to hours; the local
pipeline runs them scaled down (``RetryPolicy.scaled``) so a retry story plays out in seconds.

- Eventarc: exponential backoff from 10 s to 600 s; events are kept 24 hours (the subscription's retention)
  unless a dead-letter topic sets a number of attempts (5 to 100, default 5).
  https://cloud.google.com/eventarc/docs/retry-events , https://cloud.google.com/pubsub/docs/handling-failures
- Event Grid: 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, then hourly up to 24 h; at most 30 attempts and
  1440 minutes, then the dead-letter destination.
  https://learn.microsoft.com/azure/event-grid/delivery-and-retry
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed delivery is tried again, and when it is given up (dead-lettered).

    ``delays[i]`` is the wait after the (i+1)-th failed attempt; the last one repeats. ``max_attempts`` and
    ``max_age`` (seconds since the event was first pushed) are limits; None means no such limit.
    """

    name: str
    delays: tuple[float, ...]
    max_attempts: int | None
    max_age: float | None = None

    def delay(self, failed_attempts: int) -> float:
        return self.delays[min(failed_attempts, len(self.delays)) - 1]

    def gives_up(self, attempts: int, age: float) -> bool:
        return (self.max_attempts is not None and attempts >= self.max_attempts) or (
            self.max_age is not None and age >= self.max_age
        )

    def scaled(self, factor: float) -> RetryPolicy:
        """The same schedule with every duration multiplied by ``factor`` (e.g. 1/40: 10 s becomes 0.25 s)."""
        return replace(
            self,
            delays=tuple(d * factor for d in self.delays),
            max_age=None if self.max_age is None else self.max_age * factor,
        )

    def with_attempts(self, max_attempts: int | None) -> RetryPolicy:
        return replace(self, max_attempts=max_attempts)


EVENTARC = RetryPolicy(
    "Eventarc",
    delays=(10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 600.0),
    max_attempts=None,
    max_age=24 * 3600.0,
)
EVENT_GRID = RetryPolicy(
    "Event Grid",
    delays=(10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0),
    max_attempts=30,
    max_age=1440 * 60.0,
)


@dataclass(slots=True)
class Pushed(Generic[T]):
    """One event on its way: how many times it was pushed, and since when."""

    event: T
    first_push: float
    attempts: int = 0
    last_error: str = ""


class PushDelivery(Generic[T]):
    """Pushes events to ``deliver`` from a few worker threads, retrying failures per ``policy``.

    ``deliver(event)`` returns None on success, else what went wrong (an exception counts as a failure too).
    ``duplicates`` is the fraction of events pushed a second time after their first success, as at-least-once
    platforms sometimes do (the ingester must stay idempotent). Events given up land in ``dead_letters``.
    """

    def __init__(
        self,
        name: str,
        deliver: Callable[[T], str | None],
        policy: RetryPolicy,
        *,
        workers: int = 4,
        duplicates: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.dead_letters: list[Pushed[T]] = []
        self.pushes = 0
        self.failures = 0
        self._deliver = deliver
        self._workers = workers
        self._duplicates = duplicates
        self._random = random.Random(seed)  # noqa: S311 (test traffic shaping, not security)
        self._heap: list[tuple[float, int, Pushed[T], bool]] = []
        self._order = itertools.count()
        self._busy = 0
        self._cond = threading.Condition()
        self._closing = False
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"PushDelivery({self.name!r}, pending={len(self._heap)}, dead_letters={len(self.dead_letters)})"

    def start(self) -> None:
        self._closing = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True) for i in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(10.0)
        self._threads = []

    def submit(self, event: T) -> None:
        self._schedule(Pushed(event, time.monotonic()), 0.0, duplicate=False)

    def idle(self) -> bool:
        """Nothing waiting and nothing being pushed."""
        with self._cond:
            return not self._heap and not self._busy

    def _schedule(self, pushed: Pushed[T], delay: float, *, duplicate: bool) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), pushed, duplicate))
            self._cond.notify()

    def _next(self) -> tuple[Pushed[T], bool] | None:
        with self._cond:
            while not self._closing:
                if self._heap:
                    due = self._heap[0][0] - time.monotonic()
                    if due <= 0:
                        _, _, pushed, duplicate = heapq.heappop(self._heap)
                        self._busy += 1
                        return pushed, duplicate
                    self._cond.wait(due)
                else:
                    self._cond.wait()
            return None

    def _work(self) -> None:
        while (item := self._next()) is not None:
            pushed, duplicate = item
            try:
                self._push(pushed, duplicate)
            finally:
                with self._cond:
                    self._busy -= 1

    def _push(self, pushed: Pushed[T], duplicate: bool) -> None:
        pushed.attempts += 1
        self.pushes += 1
        try:
            error = self._deliver(pushed.event)
        except Exception as exc:  # the endpoint's failure, however it shows
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            if not duplicate and self._duplicates and self._random.random() < self._duplicates:
                self._schedule(Pushed(pushed.event, pushed.first_push), 0.0, duplicate=True)
            return
        self.failures += 1
        pushed.last_error = error
        if self.policy.gives_up(pushed.attempts, time.monotonic() - pushed.first_push):
            with self._cond:
                self.dead_letters.append(pushed)
            return
        self._schedule(pushed, self.policy.delay(pushed.attempts), duplicate=duplicate)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> str | None:
    """One push: None when the endpoint answered 2xx, else what went wrong (status and the start of the body)."""
    if urlsplit(url).scheme != "http":
        raise ValueError(f"the local pipeline pushes to loopback http URLs only, not {url!r}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (checked above)
            response.read()
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read(300).decode('utf-8', 'replace').strip()}"
    except OSError as exc:
        return f"no answer: {exc}"
