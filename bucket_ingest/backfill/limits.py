"""How hard a backfill may push each registry: rows per call, calls in flight, calls per minute.

- Labelbox: at most 150,000 rows per upsert task, 30,000 with metadata (https://docs.labelbox.com/docs/limits);
  each register call is a few requests (upload, manifest, upsert, task polls), and an organisation may make
  1,500 (Free) to 20,000 (Enterprise) requests a minute, answered with HTTP 429 beyond. 10,000-row calls, two in
  flight and 30 a minute stay well inside the Free tier and still carry 300,000 rows a minute.
- The embedded catalog: one SQLite transaction per call and one writer at a time, so larger calls and no
  concurrency; no rate limit.

``--batch-size``, ``--concurrency`` and ``--calls-per-minute`` override these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    batch_size: int  # rows per register call
    max_batch_size: int  # what the registry accepts at most in one call
    concurrency: int  # register calls in flight
    calls_per_minute: float | None  # None: no limit
    call_timeout: float  # seconds one register call may take (Labelbox tasks run asynchronously)


LIMITS: Mapping[str, RegistryLimits] = {
    "labelbox": RegistryLimits(
        batch_size=10_000, max_batch_size=30_000, concurrency=2, calls_per_minute=30, call_timeout=300.0
    ),
    # --publish-to: Pub/Sub accepts 1,000 messages per publish request; the client batches and flow-controls.
    "pubsub": RegistryLimits(
        batch_size=1_000, max_batch_size=10_000, concurrency=2, calls_per_minute=None, call_timeout=120.0
    ),
    "sqlite": RegistryLimits(
        batch_size=1_000, max_batch_size=100_000, concurrency=1, calls_per_minute=None, call_timeout=60.0
    ),
}


def limits_for(registry_url: str) -> RegistryLimits:
    scheme = registry_url.partition("://")[0]
    if scheme not in LIMITS:
        raise ValueError(f"no backfill limits for registry {registry_url!r}: use labelbox:// or sqlite://")
    return LIMITS[scheme]
