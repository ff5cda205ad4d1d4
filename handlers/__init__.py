"""The three functions (``aws``, ``gcp``, ``azure``) and what every one of them does alike.

A function is a thin adapter: its platform's event in, ``shared.ingest.ingest`` in the middle, its platform's
failure signal out. What they share lives here: the per-instance state (settings read and validated on the first
invocation, the registry opened once, the existence check for deletes), the log level of each outcome, and the
exception that makes a platform redeliver.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from shared import logs
from shared.deadline import Deadline
from shared.decision import SkipReason
from shared.events.model import Cloud, Delivery
from shared.ingest import SKIPPED, Outcome, Report, StillExists, ingest
from shared.registries.base import Registry, RowStatus
from shared.settings import Settings, SettingsError

# Log level of each object outcome; anything not listed is INFO.
OUTCOME_LEVELS: Mapping[tuple[str, bool], int] = {
    (RowStatus.FAILED, True): logging.WARNING,  # retryable: the platform redelivers
    (RowStatus.FAILED, False): logging.ERROR,
}
SKIP_LEVELS: Mapping[str, int] = {
    SkipReason.UNSUPPORTED_EVENT: logging.WARNING,  # input that can never succeed: someone should look
    SkipReason.NO_REGION: logging.WARNING,
    SkipReason.NO_ROUTE: logging.WARNING,
}


class RedeliveryRequested(RuntimeError):
    """Raised past the handler so the platform delivers the event again (and, in the end, dead-letters it)."""

    @classmethod
    def from_report(cls, report: Report) -> RedeliveryRequested:
        failed = report.failed()
        first = next((o for d in failed for o in d.outcomes if o.status == RowStatus.FAILED), None)
        why = f": {first.location}: {first.detail}" if first else ""
        ids = ", ".join(d.id or "?" for d in failed)
        return cls(f"{len(failed)} of {len(report.deliveries)} deliveries must be redelivered ({ids}){why}")


def raise_for_failures(report: Report) -> None:
    """Raise RedeliveryRequested when any delivery has a failed row (retryable or not: the platform's retry
    limit and dead-letter keep what never succeeds)."""
    if report.failed():
        raise RedeliveryRequested.from_report(report)


def summary(report: Report) -> dict[str, Any]:
    """One invocation in a few fields: for its last log line and the responses that carry a body."""
    return {
        "deliveries": len(report.deliveries),
        "redeliver": [d.id for d in report.failed()],
        "outcomes": {str(name): count for name, count in sorted(report.counts().items())},
    }


def outcome_level(outcome: Outcome) -> int:
    if outcome.status == SKIPPED:
        return SKIP_LEVELS.get(outcome.reason, logging.INFO)
    return OUTCOME_LEVELS.get((outcome.status, outcome.retryable), logging.INFO)


class WarmInstance:
    """What one function instance keeps between invocations. Nothing is read at import; the first invocation
    reads and validates the settings (a bad one fails that invocation, naming the variable) and opens the
    registry, and later invocations reuse both."""

    def __init__(self, cloud: Cloud, environ: Mapping[str, str] = os.environ) -> None:
        self.cloud = cloud
        self._environ = environ
        self._settings: Settings | None = None
        self._registry: Registry | None = None
        self._still_exists: StillExists | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env(self._environ)
        return self._settings

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from shared.existence import still_exists_check
            from shared.registries import open_registry

            self._registry = open_registry(self.settings)
            self._still_exists = still_exists_check(self.cloud, self.settings)
        return self._registry

    def ingest(self, deliveries: Sequence[Delivery], deadline: Deadline) -> Report:
        registry = self.registry
        return ingest(deliveries, self.settings, registry, deadline, self._still_exists)

    def ingest_logged(self, deliveries: Sequence[Delivery], logger: logging.Logger) -> Report:
        """Ingest within INGEST_TIMEOUT_SECONDS (for platforms that give no remaining time), writing each outcome
        and a summary as structured lines (``shared.logs``)."""
        try:
            report = self.ingest(deliveries, Deadline(self.settings.timeout_seconds))
        except SettingsError as exc:  # fails this invocation; the message names each bad variable
            logs.log(logger, logging.ERROR, "invalid configuration", error=str(exc))
            raise
        for outcome in report.outcomes:
            logs.log(logger, outcome_level(outcome), "object outcome", **outcome.log_fields())
        logs.log(logger, logging.INFO, "invocation done", **summary(report))
        return report

    def reset(self) -> None:
        """Forget the settings and close the registry, as a new instance would start (tests, `invoke`)."""
        if self._registry is not None:
            self._registry.close()
        self._settings = self._registry = self._still_exists = None
