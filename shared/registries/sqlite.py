"""The embedded catalog: a SQLite file with Labelbox's data-row semantics.

Global keys are unique and compared case-insensitively, an upsert updates the row with the same key, a delete
frees the key. Safe for concurrent writers (processes and threads): WAL journal, one short IMMEDIATE
transaction per batch, and a busy timeout bounded by the caller's deadline.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.deadline import Deadline
from shared.global_keys import is_valid_global_key
from shared.payloads import Payload
from shared.registries.base import RowResult, RowStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS data_rows (
    global_key  TEXT PRIMARY KEY COLLATE NOCASE,
    row_data    TEXT NOT NULL,
    media_type  TEXT,
    external_id TEXT,
    dataset_id  TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    deleted_at  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    writes      INTEGER NOT NULL DEFAULT 1
);
"""
_FIELDS = ("global_key", "row_data", "media_type", "external_id", "dataset_id", "metadata")


def path_from_url(url: str) -> Path:
    """``sqlite:///tmp/x.sqlite`` → /tmp/x.sqlite; ``sqlite://rel.sqlite`` → rel.sqlite; query ignored."""
    return Path(url.removeprefix("sqlite://").partition("?")[0])


class SqliteCatalog:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect(5.0) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> SqliteCatalog:
        return cls(path_from_url(url))

    def __repr__(self) -> str:
        return f"SqliteCatalog({str(self.path)!r})"

    def _connect(self, timeout: float) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=True)
            db.row_factory = sqlite3.Row
            self._local.db = db
        db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def register(self, payloads: Sequence[Payload], deadline: Deadline) -> list[RowResult]:
        valid: list[Payload] = []
        results: dict[int, RowResult] = {}
        seen: set[str] = set()
        for i, p in enumerate(payloads):
            problem = _problem(p)
            if problem is None and p.global_key.lower() in seen:
                problem = f"Duplicate global key: '{p.global_key}' (twice in one batch)"
            if problem:
                results[i] = RowResult.failed(p.global_key, problem, retryable=False)
            else:
                seen.add(p.global_key.lower())
                valid.append(p)
        written = self._write(valid, deadline, self._upsert)
        it = iter(written)
        return [results[i] if i in results else next(it) for i in range(len(payloads))]

    def delete(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]:
        return self._write(list(global_keys), deadline, self._delete)

    def mark_deleted(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]:
        return self._write(list(global_keys), deadline, self._mark_deleted)

    def rows(self, include_deleted: bool = True) -> list[dict[str, Any]]:
        db = self._connect(5.0)
        where = "" if include_deleted else "WHERE deleted_at IS NULL"
        out = []
        for row in db.execute(f"SELECT * FROM data_rows {where} ORDER BY created_at, global_key"):  # noqa: S608
            item = dict(row)
            item["metadata"] = json.loads(item["metadata"])
            out.append(item)
        return out

    def _write(
        self, items: list[Any], deadline: Deadline, step: Callable[[sqlite3.Connection, Any, str], RowResult]
    ) -> list[RowResult]:
        if not items:
            return []
        keys = [i if isinstance(i, str) else i.global_key for i in items]
        if deadline.expired():
            return [RowResult.failed(k, "no time left before the deadline", retryable=True) for k in keys]
        db = self._connect(deadline.remaining())
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                results = [step(db, item, now) for item in items]
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked past the deadline, disk full, ...
            return [RowResult.failed(k, f"catalog busy or unavailable: {exc}", retryable=True) for k in keys]
        return results

    @staticmethod
    def _upsert(db: sqlite3.Connection, p: Payload, now: str) -> RowResult:
        values = {
            "global_key": p.global_key,
            "row_data": p.row_data,
            "media_type": p.media_type.value if p.media_type else None,
            "external_id": p.external_id,
            "dataset_id": p.dataset_id,
            "metadata": json.dumps(dict(p.metadata), sort_keys=True),
        }
        old = db.execute("SELECT * FROM data_rows WHERE global_key = ?", (p.global_key,)).fetchone()
        if old is None:
            db.execute(
                "INSERT INTO data_rows (global_key, row_data, media_type, external_id, dataset_id, metadata,"
                " created_at, updated_at) VALUES (:global_key, :row_data, :media_type, :external_id, :dataset_id,"
                " :metadata, :now, :now)",
                {**values, "now": now},
            )
            return RowResult(p.global_key, RowStatus.CREATED)
        if old["deleted_at"] is None and all(old[f] == values[f] for f in _FIELDS if f != "global_key"):
            return RowResult(p.global_key, RowStatus.PRESENT)
        db.execute(
            "UPDATE data_rows SET row_data = :row_data, media_type = :media_type, external_id = :external_id,"
            " dataset_id = :dataset_id, metadata = :metadata, deleted_at = NULL, updated_at = :now,"
            " writes = writes + 1 WHERE global_key = :global_key",
            {**values, "now": now},
        )
        return RowResult(p.global_key, RowStatus.UPDATED)

    @staticmethod
    def _delete(db: sqlite3.Connection, key: str, now: str) -> RowResult:
        gone = db.execute("DELETE FROM data_rows WHERE global_key = ?", (key,)).rowcount
        return RowResult(key, RowStatus.DELETED if gone else RowStatus.ABSENT)

    @staticmethod
    def _mark_deleted(db: sqlite3.Connection, key: str, now: str) -> RowResult:
        marked = db.execute(
            "UPDATE data_rows SET deleted_at = ?, updated_at = ?, writes = writes + 1"
            " WHERE global_key = ? AND deleted_at IS NULL",
            (now, now, key),
        ).rowcount
        if marked:
            return RowResult(key, RowStatus.TAGGED)
        exists = db.execute("SELECT 1 FROM data_rows WHERE global_key = ?", (key,)).fetchone()
        return RowResult(key, RowStatus.PRESENT if exists else RowStatus.ABSENT)


def _problem(p: Payload) -> str | None:
    """What Labelbox would refuse in this payload, in Labelbox's terms."""
    if not is_valid_global_key(p.global_key):
        return f"invalid global key {p.global_key[:80]!r}: at most 200 allowed characters, no edge spaces"
    if not p.row_data:
        return "row_data is required"
    if not p.dataset_id:
        return "dataset_id is required"
    return None
