"""From deliveries to outcomes: decide every event, make one registry call per batch, report per object.

The handlers call ``ingest`` and translate its ``Report`` into their platform's failure signal; backfill calls
it too. Within a batch, several events for the same object collapse to the latest (by the storage service's
sequencer or generation, else by arrival), so a create and a delete delivered together end in the right state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.deadline import Deadline
from shared.decision import Decision, Delete, Register, Skip, SkipReason, decide
from shared.events.model import Cloud, Delivery, ObjectEvent, UnsupportedEvent
from shared.registries.base import Registry, RowResult, RowStatus
from shared.settings import Settings

SKIPPED = "skipped"

# Confirms, just before a delete is acted on, that the object is really gone: GCS sends "deleted" for the old
# generation of every overwrite, and any cloud may deliver a delete after a later re-upload.
StillExists = Callable[[ObjectEvent], bool]


class DeliveryStatus(StrEnum):
    DONE = "done"  # every object registered, deleted or skipped for a reason
    RETRY = "retry"  # some row failed for a reason a redelivery may cure
    FAILED = "failed"  # some row was refused for good; the platform's retry limit and dead-letter keep it


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: str
    status: str  # a RowStatus value, or "skipped"
    location: str
    global_key: str | None = None
    reason: str = ""  # a SkipReason value for skipped objects
    detail: str = ""
    retryable: bool = False

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"outcome": self.status, "object": self.location, "delivery": self.delivery_id}
        fields.update(
            {
                k: v
                for k, v in (
                    ("global_key", self.global_key),
                    ("reason", self.reason),
                    ("detail", self.detail),
                )
                if v
            }
        )
        if self.status == RowStatus.FAILED:
            fields["retryable"] = self.retryable
        return fields


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    id: str
    status: DeliveryStatus
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class Report:
    deliveries: tuple[DeliveryResult, ...]

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for d in self.deliveries for o in d.outcomes]

    def failed(self) -> list[DeliveryResult]:
        return [d for d in self.deliveries if d.status is not DeliveryStatus.DONE]

    def counts(self) -> Counter[str]:
        """Objects per outcome (created, updated, ..., failed) and skipped per reason ("skipped:zero_byte")."""
        return Counter(f"{SKIPPED}:{o.reason}" if o.status == SKIPPED else o.status for o in self.outcomes)


def ingest(
    deliveries: Sequence[Delivery],
    settings: Settings,
    registry: Registry,
    deadline: Deadline,
    still_exists: StillExists | None = None,
) -> Report:
    decided = [(d.id, decide(event, settings)) for d in deliveries for event in d.events]
    winners = _latest_per_key(decided)
    results = _apply([decided[i][1] for i in winners.values()], registry, deadline, still_exists)
    outcomes: dict[str, list[Outcome]] = {d.id: [] for d in deliveries}
    for position, (delivery_id, decision) in enumerate(decided):
        outcomes[delivery_id].append(_outcome(delivery_id, position, decision, decided, winners, results))
    return Report(tuple(DeliveryResult(d.id, _status(outcomes[d.id]), tuple(outcomes[d.id])) for d in deliveries))


def _key_of(decision: Decision) -> str | None:
    if isinstance(decision, Register):
        return decision.payload.global_key
    if isinstance(decision, Delete):
        return decision.global_key
    return None


def _latest_per_key(decided: Sequence[tuple[str, Decision]]) -> dict[str, int]:
    winners: dict[str, int] = {}
    for position, (_, decision) in enumerate(decided):
        key = _key_of(decision)
        if key is None:
            continue
        best = winners.get(key)
        if best is None or _is_later(decision, decided[best][1]):
            winners[key] = position
    return winners


def _is_later(new: Decision, old: Decision) -> bool:
    """Whether ``new`` (which arrived after ``old``) describes a later state of the object."""
    assert isinstance(new, Register | Delete) and isinstance(old, Register | Delete)
    a, b = _sequence(new.event), _sequence(old.event)
    return a >= b if a is not None and b is not None else True


def _sequence(event: ObjectEvent) -> int | None:
    """S3 and Azure sequencers are hex strings (compare as numbers, per the S3 docs: pad, then compare);
    GCS orders by generation."""
    if not event.sequencer:
        return None
    try:
        return int(event.sequencer, 10 if event.cloud is Cloud.GCP else 16)
    except ValueError:
        return None


def _apply(
    actions: Sequence[Decision],
    registry: Registry,
    deadline: Deadline,
    still_exists: StillExists | None,
) -> dict[str, RowResult | Skip]:
    results: dict[str, RowResult | Skip] = {}
    registers = [a for a in actions if isinstance(a, Register)]
    deletes = [a for a in actions if isinstance(a, Delete)]
    if deletes and still_exists is not None:
        confirmed = []
        for delete in deletes:
            try:
                exists = still_exists(delete.event)
            except Exception as exc:  # any failure to confirm: when in doubt, retry
                results[delete.global_key] = RowResult.failed(
                    delete.global_key, f"could not confirm the object is gone: {exc}", retryable=True
                )
                continue
            if exists:
                results[delete.global_key] = Skip(
                    delete.event,
                    SkipReason.STILL_EXISTS,
                    "the object exists again (overwritten or re-uploaded): row kept",
                )
            else:
                confirmed.append(delete)
        deletes = confirmed
    calls: list[tuple[Callable[[Sequence[Any], Deadline], list[RowResult]], list[Any]]] = [
        (registry.register, [r.payload for r in registers]),
        (registry.delete, [d.global_key for d in deletes if not d.tag_only]),
        (registry.mark_deleted, [d.global_key for d in deletes if d.tag_only]),
    ]
    for call, items in calls:
        if not items:
            continue
        keys = [_item_key(item) for item in items]
        try:
            rows = call(items, deadline)
        except Exception as exc:  # a registry that raises is a bug or an outage: retry, never lose the batch
            rows = [
                RowResult.failed(k, f"registry error: {exc.__class__.__name__}: {exc}", retryable=True) for k in keys
            ]
        results.update({row.global_key: row for row in rows})
        for key in keys:  # a registry that forgot a row: treat it as unknown, so retry
            results.setdefault(key, RowResult.failed(key, "the registry reported no result", retryable=True))
    return results


def _item_key(item: Any) -> str:
    return item if isinstance(item, str) else str(item.global_key)


def _outcome(
    delivery_id: str,
    position: int,
    decision: Decision,
    decided: Sequence[tuple[str, Decision]],
    winners: dict[str, int],
    results: dict[str, RowResult | Skip],
) -> Outcome:
    location = _location(decision)
    if isinstance(decision, Skip):
        return Outcome(delivery_id, SKIPPED, location, reason=decision.reason, detail=decision.detail)
    key = _key_of(decision)
    assert key is not None
    result = results[key]
    if winners[key] != position:  # a later event for the same object decided its row
        winner = decided[winners[key]][0]
        failed = isinstance(result, RowResult) and result.status is RowStatus.FAILED
        return Outcome(
            delivery_id,
            RowStatus.FAILED if failed else SKIPPED,
            location,
            key,
            reason=SkipReason.SUPERSEDED,
            detail=f"a later event for this object (delivery {winner}) decides its row",
            retryable=failed and isinstance(result, RowResult) and result.retryable,
        )
    if isinstance(result, Skip):
        return Outcome(delivery_id, SKIPPED, location, key, reason=result.reason, detail=result.detail)
    return Outcome(delivery_id, result.status, location, key, detail=result.message, retryable=result.retryable)


def _location(decision: Decision) -> str:
    event = decision.event
    return "" if isinstance(event, UnsupportedEvent) else event.location


def _status(outcomes: Iterable[Outcome]) -> DeliveryStatus:
    failed = [o for o in outcomes if o.status == RowStatus.FAILED]
    if any(o.retryable for o in failed):
        return DeliveryStatus.RETRY
    return DeliveryStatus.FAILED if failed else DeliveryStatus.DONE
