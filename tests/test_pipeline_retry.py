"""Push delivery with the platforms' retry schedules (Eventarc, Event Grid), scaled down for local runs."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from bucket_ingest.pipeline.retry import EVENT_GRID, EVENTARC, PushDelivery, RetryPolicy

FAST = RetryPolicy("test", delays=(0.05, 0.1, 0.2), max_attempts=4)


class Endpoint:
    """Fails each event ``failures(event)`` times before answering 2xx; records when each push came."""

    def __init__(self, failures: Callable[[str], int]) -> None:
        self.failures = failures
        self.pushes: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, event: str) -> str | None:
        with self.lock:
            self.pushes.append((event, time.monotonic()))
            tried = sum(1 for e, _ in self.pushes if e == event)
        return "HTTP 503: busy" if tried <= self.failures(event) else None

    def count(self) -> Counter[str]:
        with self.lock:
            return Counter(e for e, _ in self.pushes)


def run(delivery: PushDelivery[str], events: list[str], settled: Callable[[], bool], timeout: float = 10.0) -> None:
    delivery.start()
    try:
        for event in events:
            delivery.submit(event)
        end = time.monotonic() + timeout
        while not (settled() and delivery.idle()):
            assert time.monotonic() < end, delivery
            time.sleep(0.01)
    finally:
        delivery.stop()


def test_a_failing_event_is_retried_after_the_policys_delays_until_it_succeeds() -> None:
    endpoint = Endpoint(lambda e: 2 if e == "flaky" else 0)
    delivery = PushDelivery("t", endpoint, FAST)
    run(delivery, ["flaky", "fine"], lambda: endpoint.count()["flaky"] == 3)
    assert endpoint.count() == {"flaky": 3, "fine": 1}
    times = [t for e, t in endpoint.pushes if e == "flaky"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1
    assert delivery.dead_letters == [] and (delivery.pushes, delivery.failures) == (4, 2)


def test_an_event_that_always_fails_is_dead_lettered_after_max_attempts_with_its_last_error() -> None:
    endpoint = Endpoint(lambda e: 99)
    delivery = PushDelivery("t", endpoint, FAST)
    run(delivery, ["poison"], lambda: bool(delivery.dead_letters))
    [letter] = delivery.dead_letters
    assert (letter.event, letter.attempts, letter.last_error) == ("poison", 4, "HTTP 503: busy")
    assert endpoint.count() == {"poison": 4}


def test_max_age_gives_up_on_time_whatever_the_attempts() -> None:
    policy = RetryPolicy("t", delays=(0.1,), max_attempts=None, max_age=0.25)
    endpoint = Endpoint(lambda e: 99)
    delivery = PushDelivery("t", endpoint, policy)
    started = time.monotonic()
    run(delivery, ["old"], lambda: bool(delivery.dead_letters))
    assert 2 <= delivery.dead_letters[0].attempts <= 4
    assert time.monotonic() - started >= 0.25


def test_an_exception_from_the_endpoint_counts_as_a_failure() -> None:
    calls: list[str] = []

    def explode(event: str) -> str | None:
        calls.append(event)
        if len(calls) == 1:
            raise ConnectionResetError("reset by peer")
        return None

    delivery = PushDelivery("t", explode, FAST)
    run(delivery, ["e"], lambda: len(calls) == 2)
    assert delivery.failures == 1 and delivery.dead_letters == []


def test_duplicates_push_each_event_once_more_after_its_success() -> None:
    endpoint = Endpoint(lambda e: 0)
    delivery = PushDelivery("t", endpoint, FAST, duplicates=1.0, seed=3)
    run(delivery, ["a", "b"], lambda: endpoint.count() == {"a": 2, "b": 2})
    assert endpoint.count() == {"a": 2, "b": 2}


@pytest.mark.parametrize(
    ("policy", "after", "delay"),
    [(EVENTARC, 1, 10.0), (EVENTARC, 7, 600.0), (EVENTARC, 20, 600.0), (EVENT_GRID, 1, 10.0), (EVENT_GRID, 4, 300.0)],
)
def test_the_vendor_schedules(policy: RetryPolicy, after: int, delay: float) -> None:
    assert policy.delay(after) == delay
    assert policy.scaled(1 / 40).delay(after) == pytest.approx(delay / 40)


def test_the_vendor_limits() -> None:
    assert EVENT_GRID.gives_up(30, 0.0) and not EVENT_GRID.gives_up(29, 0.0)
    assert EVENT_GRID.gives_up(1, 1440 * 60.0)
    assert not EVENTARC.gives_up(1000, 3600.0) and EVENTARC.gives_up(1, 24 * 3600.0)
    assert EVENTARC.scaled(1 / 100).with_attempts(5).gives_up(5, 0.0)
