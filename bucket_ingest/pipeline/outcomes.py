"""What the functions did, read from what they log: one JSON line per object outcome (``Outcome.log_fields``).

The functions run in their own processes; their output lines come here as they are written. A line holding a
JSON object with ``outcome`` and ``object`` is an object outcome (Powertools' Logger on AWS, ``shared.logs`` on
GCP and Azure write the same fields); an ``invalid configuration`` line is kept as a problem to show. Every line
can also go to a log file, prefixed with the function's cloud.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared.events.model import Cloud


@dataclass(frozen=True, slots=True)
class SeenOutcome:
    """One object outcome as a function logged it, and when this process read it (``time.time()``)."""

    cloud: Cloud
    status: str  # created, updated, present, upserted, deleted, tagged, absent, failed, skipped
    location: str  # cloud://[account/]bucket/key, as ObjectEvent.location writes it
    at: float
    global_key: str = ""
    reason: str = ""
    detail: str = ""
    delivery: str = ""
    retryable: bool = False


def parse_line(cloud: Cloud, line: str, at: float) -> SeenOutcome | dict[str, Any] | None:
    """The outcome in a log line; the whole record for any other JSON line; None for plain text."""
    start = line.find("{")
    if start < 0:
        return None
    try:
        record = json.loads(line[start:])
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get("outcome"), str) or not isinstance(record.get("object"), str):
        return record
    return SeenOutcome(
        cloud=cloud,
        status=record["outcome"],
        location=record["object"],
        at=at,
        global_key=str(record.get("global_key") or ""),
        reason=str(record.get("reason") or ""),
        detail=str(record.get("detail") or ""),
        delivery=str(record.get("delivery") or ""),
        retryable=bool(record.get("retryable")),
    )


class OutcomeLog:
    """Collects the outcomes (and configuration problems) the functions log, and tells waiting threads."""

    def __init__(self, log_file: Path | None = None) -> None:
        self.outcomes: list[SeenOutcome] = []
        self.problems: list[str] = []
        self._subscribers: list[Callable[[SeenOutcome], None]] = []
        self._cond = threading.Condition()
        self._file: IO[str] | None = log_file.open("a", encoding="utf-8") if log_file else None

    def close(self) -> None:
        with self._cond:
            if self._file is not None:
                self._file.close()
                self._file = None

    def subscribe(self, callback: Callable[[SeenOutcome], None]) -> None:
        """Call ``callback`` (from a reader thread) with every outcome from now on."""
        with self._cond:
            self._subscribers.append(callback)

    def reader(self, cloud: Cloud) -> Callable[[str], None]:
        """The ``on_line`` callback for one function's process."""
        return lambda line: self.add_line(cloud, line)

    def add_line(self, cloud: Cloud, line: str) -> None:
        at = time.time()
        parsed = parse_line(cloud, line, at)
        with self._cond:
            if self._file is not None:
                self._file.write(f"[{cloud}] {line}\n")
                self._file.flush()
            if isinstance(parsed, SeenOutcome):
                self.outcomes.append(parsed)
                subscribers = list(self._subscribers)
            elif isinstance(parsed, dict) and parsed.get("message") == "invalid configuration":
                self.problems.append(f"{cloud}: {parsed.get('error') or line}")
                subscribers = []
            else:
                return
            self._cond.notify_all()
        if isinstance(parsed, SeenOutcome):
            for callback in subscribers:
                callback(parsed)

    def snapshot(self, cloud: Cloud | None = None) -> list[SeenOutcome]:
        with self._cond:
            return [o for o in self.outcomes if cloud is None or o.cloud is cloud]

    def wait_for(self, done: Callable[[list[SeenOutcome]], bool], timeout: float) -> bool:
        """Wait until ``done(all outcomes so far)`` holds; False when ``timeout`` seconds pass first."""
        end = time.monotonic() + timeout
        with self._cond:
            while not done(self.outcomes):
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
            return True


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
