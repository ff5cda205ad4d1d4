"""The checkpoint: where a backfill stands, so an interrupted run continues and a finished one does nothing.

A small JSON file, replaced atomically (write a temporary file, fsync, rename) after every registered batch, so a
crash leaves either the old or the new state, never a torn one. It records the listing position, the counts so
far, and what the run was made with (URI, registry, a fingerprint of the decision settings), so it is never
applied to another bucket, registry or configuration by mistake.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bucket_ingest.backfill.listing import Position
from bucket_ingest.backfill.target import Target
from shared.settings import Settings

FORMAT = 1
DEFAULT_DIRECTORY = Path(".bucket-ingest") / "backfill"


class CheckpointError(Exception):
    """The checkpoint cannot be read or does not belong to this run; the message says what to do."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def settings_fingerprint(settings: Settings) -> str:
    """A digest of everything that decides what a listed object becomes (filters, routes, media rules)."""
    decisive = {
        f.name: _canonical(getattr(settings, f.name))
        for f in dataclasses.fields(settings)
        if f.name not in NOT_DECISIVE
    }
    return hashlib.sha256(repr(sorted(decisive.items())).encode()).hexdigest()[:16]


# Left out: secrets, time budgets, the endpoint, and the default AWS region (listed S3 objects always carry their
# bucket's region, so it never decides; AWS_REGION may differ between the shells of two runs).
NOT_DECISIVE = frozenset({"api_key", "api_key_secret", "timeout_seconds", "labelbox_endpoint", "aws_region"})


def _canonical(value: Any) -> Any:
    """Sets and mappings in a fixed order (a frozenset's repr follows the process's hash seed)."""
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, dict | Mapping):
        return sorted((k, repr(v)) for k, v in value.items())
    return repr(value)


def default_path(target: Target, registry_url: str) -> Path:
    """``.bucket-ingest/backfill/CLOUD-BUCKET-DIGEST.json`` in the current directory: the same command finds it."""
    digest = hashlib.sha256(f"{target.uri}\0{registry_url}".encode()).hexdigest()[:12]
    name = re.sub(r"[^a-z0-9.-]+", "-", f"{target.cloud}-{target.bucket}".lower())
    return DEFAULT_DIRECTORY / f"{name}-{digest}.json"


@dataclass
class Checkpoint:
    uri: str
    registry: str
    settings: str
    position: Position = field(default_factory=Position)
    batches: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    complete: bool = False
    started_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "uri": self.uri,
            "registry": self.registry,
            "settings": self.settings,
            "position": self.position.as_dict(),
            "batches": self.batches,
            "counts": dict(sorted(self.counts.items())),
            "complete": self.complete,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
        }

    def save(self, path: Path) -> None:
        self.updated_at = now()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.as_dict(), out, ensure_ascii=False, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint in ``path``, or None when there is none yet."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} cannot be read ({exc}): fix or delete it") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a backfill checkpoint (format {FORMAT}): pass another --checkpoint")
        counts = data.get("counts")
        counts = counts if isinstance(counts, dict) else {}
        return cls(
            uri=str(data.get("uri", "")),
            registry=str(data.get("registry", "")),
            settings=str(data.get("settings", "")),
            position=Position.from_dict(data.get("position") or {}),
            batches=int(data.get("batches", 0)),
            counts=Counter({str(k): int(v) for k, v in counts.items()}),
            complete=bool(data.get("complete")),
            started_at=str(data.get("started_at", "")),
            updated_at=str(data.get("updated_at", "")),
        )

    def mismatch(self, uri: str, registry: str, settings: str) -> str | None:
        """Why this checkpoint must not be continued by a run with these parameters, if it must not."""
        if self.uri != uri:
            return f"it is for {self.uri}, not {uri}"
        if self.registry != registry:
            return f"it registered into {self.registry}, not {registry}"
        if self.settings != settings:
            return (
                "the INGEST_* settings (filters, routes, media types or region) changed since it was written, so "
                "resuming would mix two sets of decisions: run with the original settings, or --restart"
            )
        return None
