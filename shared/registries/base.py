"""The registry interface: where payloads become rows.

``register(payloads)`` → one ``RowResult`` per payload, in order; ``delete`` / ``mark_deleted`` by global key.
Every operation is idempotent (upsert by global key), so a retryable failure, or an unknown result when the
deadline passes, is safe to send back to the platform for redelivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shared.deadline import Deadline
from shared.payloads import Payload


class RowStatus(StrEnum):
    CREATED = "created"  # a new row
    UPDATED = "updated"  # an existing row (same global key) now has these fields
    PRESENT = "present"  # the row was already there, unchanged
    UPSERTED = "upserted"  # registered; the registry does not say whether it was new (Labelbox)
    DELETED = "deleted"
    TAGGED = "tagged"  # marked deleted in its metadata, row kept
    ABSENT = "absent"  # nothing to delete: no row has this key
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RowResult:
    global_key: str
    status: RowStatus
    retryable: bool = False  # only for FAILED: worth sending back to the platform
    message: str = ""  # for FAILED: what went wrong and what to fix

    @classmethod
    def failed(cls, global_key: str, message: str, *, retryable: bool) -> RowResult:
        return cls(global_key, RowStatus.FAILED, retryable, message)


class Registry(Protocol):
    def register(self, payloads: Sequence[Payload], deadline: Deadline) -> list[RowResult]: ...

    def delete(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]: ...

    def mark_deleted(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]: ...

    def close(self) -> None: ...
