"""What a backfill shows while it runs and when it ends: counts, rate, ETA, as text or JSON.

Counts use ``shared.ingest.Report.counts()`` names: row statuses (created, updated, present, upserted, failed)
and ``skipped:REASON``, plus ``listed``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from shared.ingest import SKIPPED
from shared.registries.base import RowStatus

LISTED = "listed"
PUBLISHED = "published"  # handed to the deployed function as a notification (--publish-to)
REGISTERED_STATUSES = (RowStatus.CREATED, RowStatus.UPDATED, RowStatus.PRESENT, RowStatus.UPSERTED)


def registered(counts: Mapping[str, int]) -> int:
    return sum(counts.get(s, 0) for s in REGISTERED_STATUSES)


def skipped_by_reason(counts: Mapping[str, int]) -> dict[str, int]:
    prefix = f"{SKIPPED}:"
    return {k.removeprefix(prefix): v for k, v in sorted(counts.items()) if k.startswith(prefix) and v}


@dataclass(frozen=True, slots=True)
class Snapshot:
    counts: Counter[str]  # everything so far, earlier runs included
    listed_this_run: int
    seconds: float  # this run
    expected_total: int | None = None

    @property
    def rate(self) -> float:
        """Objects listed and handled per second in this run."""
        return self.listed_this_run / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.expected_total or self.rate <= 0:
            return None
        return max(0.0, self.expected_total - self.counts[LISTED]) / self.rate

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "listed": c[LISTED],
            "registered": registered(c),
            **{str(s): c[s] for s in REGISTERED_STATUSES},
            "failed": c[RowStatus.FAILED],
            PUBLISHED: c[PUBLISHED],
            "skipped": skipped_by_reason(c),
            "objects_per_second": round(self.rate, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "expected_total": self.expected_total,
        }

    def line(self) -> str:
        """The progress line: the totals, the rate and (when a total is expected) the time left."""
        parts = [self.totals_line(), f"{self.rate:,.0f} objects/s"]
        if (eta := self.eta_seconds) is not None:
            parts.append(f"ETA {duration(eta)}")
        return " · ".join(parts)

    def totals_line(self) -> str:
        c = self.counts
        listed = f"{c[LISTED]:,}" + (f"/{self.expected_total:,}" if self.expected_total else "")
        parts = [f"listed {listed}"]
        if c[PUBLISHED]:
            parts.append(f"published {c[PUBLISHED]:,}")
        if registered(c) or not c[PUBLISHED]:
            parts.append(f"registered {registered(c):,} ({_statuses(c)})")
        skipped = skipped_by_reason(c)
        if skipped:
            parts.append(f"skipped {sum(skipped.values()):,} ({', '.join(f'{k} {v:,}' for k, v in skipped.items())})")
        if c[RowStatus.FAILED]:
            parts.append(f"failed {c[RowStatus.FAILED]:,}")
        return " · ".join(parts)


def _statuses(counts: Mapping[str, int]) -> str:
    names = {RowStatus.CREATED: "new", RowStatus.UPDATED: "updated", RowStatus.PRESENT: "already there"}
    shown = [f"{names.get(s, str(s))} {counts.get(s, 0):,}" for s in REGISTERED_STATUSES if counts.get(s, 0)]
    return ", ".join(shown) or "none yet"


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Reporter:
    """Writes a progress line every ``interval`` seconds from its own thread until stopped.

    On a terminal the line is rewritten in place; elsewhere (logs, CI) one line per interval; with ``as_json``
    one JSON object per line.
    """

    def __init__(
        self, snapshot: Callable[[], Snapshot], stream: TextIO, interval: float, *, as_json: bool = False
    ) -> None:
        self._snapshot = snapshot
        self._stream = stream
        self._interval = interval
        self._json = as_json
        self._tty = stream.isatty() and not as_json
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backfill-progress", daemon=True)
        self._width = 0

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._tty and self._width:
            self._stream.write("\n")
            self._stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.write(self._snapshot())

    def write(self, snapshot: Snapshot) -> None:
        if self._json:
            text = json.dumps({"progress": snapshot.as_dict()}) + "\n"
        elif self._tty:
            line = snapshot.line()
            text = "\r" + line.ljust(self._width)
            self._width = len(line)
        else:
            text = snapshot.line() + "\n"
        self._stream.write(text)
        self._stream.flush()
