"""Deadlines flow down: the platform's remaining time bounds every registry call beneath the handler."""

from __future__ import annotations

import time


class Deadline:
    """A point in monotonic time; ``remaining()`` never goes below zero."""

    __slots__ = ("_end",)

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    @classmethod
    def from_remaining_ms(cls, remaining_ms: int, margin_s: float = 2.0) -> Deadline:
        """From a platform's remaining time (Lambda's get_remaining_time_in_millis), keeping a margin to
        report results before the platform stops the function."""
        return cls(max(0.0, remaining_ms / 1000 - margin_s))

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"
