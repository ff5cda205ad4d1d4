"""The endpoint's state in SQLite, with Labelbox's data-row semantics.

As Labelbox documents them (https://docs.labelbox.com/reference/data-row-global-keys,
https://docs.labelbox.com/reference/data-row): global keys are unique per organisation and compared
case-insensitively; an upsert by global key updates only the fields it supplies (metadata and attachments replace
the old set) and creates the row when no row has the key; a create whose key exists fails that row with
"Duplicate global key"; deleting a row frees its key. Upsert tasks run asynchronously: they stay IN_PROGRESS
until a worker applies them, then report per-row failures through ``failedDataRowImports``.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.global_keys import is_valid_global_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS integrations (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, provider TEXT NOT NULL, valid INTEGER NOT NULL,
    is_default INTEGER NOT NULL, settings TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, signer_id TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS data_rows (
    id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, global_key TEXT UNIQUE COLLATE NOCASE,
    row_data TEXT NOT NULL, external_id TEXT, media_type TEXT,
    metadata TEXT NOT NULL DEFAULT '[]', attachments TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, writes INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS metadata_schemas (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, reserved INTEGER NOT NULL, parent TEXT
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, content_type TEXT, body BLOB NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, manifest_uri TEXT NOT NULL,
    held INTEGER NOT NULL, ready_at REAL NOT NULL, failures TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL DEFAULT '[]', error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, result TEXT NOT NULL);
"""

# Labelbox's reserved metadata fields and their schema ids, as Labelbox's own SDK tests and docs use them
# (labelbox-python tests/integration/test_data_row_metadata.py; docs.labelbox.com/reference/import-video-data).
RESERVED_SCHEMAS: tuple[tuple[str, str, str, str | None], ...] = (
    ("cko8s9r5v0001h2dk9elqdidh", "tag", "CustomMetadataString", None),
    ("cko8sbczn0002h2dkdaxb5kal", "split", "CustomMetadataEnum", None),
    ("cko8sbscr0003h2dk04w86hof", "train", "CustomMetadataEnumOption", "cko8sbczn0002h2dkdaxb5kal"),
    ("cko8scbz70005h2dkastwhgqt", "test", "CustomMetadataEnumOption", "cko8sbczn0002h2dkdaxb5kal"),
    ("cko8sdzv70006h2dk8jg64zvb", "captureDateTime", "CustomMetadataDateTime", None),
    ("ckpyije740000yxdk81pbgjdc", "embedding", "CustomMetadataEmbedding", None),
)
TASK_TYPE = "adv-upsert-data-rows"
# Media types the SDK names (labelbox.schema.media_type.MediaType), plus DICOM, which Labelbox lists as a data type.
MEDIA_TYPES = frozenset(
    {"AUDIO", "CONVERSATIONAL", "PDF", "TMS_GEO", "HTML", "IMAGE", "TMS_SIMPLE", "TEXT", "VIDEO", "POINT_CLOUD", "LLM"}
    | {"DICOM"}
)
ATTACHMENT_TYPES = frozenset(
    {"AUDIO", "VIDEO", "IMAGE", "IMAGE_OVERLAY", "HTML", "RAW_TEXT", "TEXT_URL", "PDF_URL", "CAMERA_IMAGE"}
)
PAYLOAD_FIELDS = frozenset(
    {
        "row_data",
        "global_key",
        "external_id",
        "media_type",
        "dataset_id",
        "metadata_fields",
        "attachments",
        "embeddings",
    }
)
MAX_STRING_METADATA = 4096
MAX_ROW_DATA = 65_536
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id() -> str:
    """A cuid-shaped id (25 characters, starting with 'c'), like Labelbox's."""
    return "c" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def now() -> str:
    """Labelbox's timestamp form, which the SDK parses with %Y-%m-%dT%H:%M:%S.%fZ."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RowRefused(Exception):
    """One data row refused, with the message Labelbox would give for it."""


class Store:
    def __init__(self, path: str | Path = ":memory:") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        with self.lock:
            if str(path) != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SCHEMA)
            self.user_id = self._meta("user_id", new_id)
            self.organization_id = self._meta("organization_id", new_id)
            self.created_at = self._meta("created_at", now)
            for schema_id, name, kind, parent in RESERVED_SCHEMAS:
                self.db.execute(
                    "INSERT OR IGNORE INTO metadata_schemas VALUES (?, ?, ?, 1, ?)", (schema_id, name, kind, parent)
                )
            if not self.db.execute("SELECT 1 FROM integrations").fetchone():
                self.add_integration("local delegated access", "AWS", {"roleArn": "arn:aws:iam::000000000000:role/lb"})

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _meta(self, key: str, make: Any) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row:
            return str(row["value"])
        value = str(make())
        self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, value))
        return value

    # --- organisation, user, integrations, ontology ----------------------------------------------------------

    def user(self) -> dict[str, Any]:
        return {
            "__typename": "User",
            "id": self.user_id,
            "email": "local@bucket-ingest.invalid",
            "name": "local",
            "nickname": "local",
            "picture": None,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "lastLoginAt": self.created_at,
            "isViewer": False,
            "isExternalUser": False,
            "organization": self.organization(),
        }

    def organization(self) -> dict[str, Any]:
        return {
            "__typename": "Organization",
            "id": self.organization_id,
            "name": "local organization",
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
        }

    def add_integration(
        self, name: str, provider: str, settings: Mapping[str, Any], *, valid: bool = True, default: bool = True
    ) -> str:
        integration_id = new_id()
        with self.lock:
            if default:
                self.db.execute("UPDATE integrations SET is_default = 0")
            self.db.execute(
                "INSERT INTO integrations VALUES (?, ?, ?, ?, ?, ?, ?)",
                (integration_id, name, provider, int(valid), int(default), json.dumps(dict(settings)), now()),
            )
        return integration_id

    def set_integrations_valid(self, valid: bool) -> None:
        with self.lock:
            self.db.execute("UPDATE integrations SET valid = ?", (int(valid),))

    def integrations(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM integrations ORDER BY created_at").fetchall()
        return [self._integration(row) for row in rows]

    def integration(self, integration_id: str | None) -> dict[str, Any] | None:
        if not integration_id:
            return None
        with self.lock:
            row = self.db.execute("SELECT * FROM integrations WHERE id = ?", (integration_id,)).fetchone()
        return self._integration(row) if row else None

    @staticmethod
    def _integration(row: sqlite3.Row) -> dict[str, Any]:
        typename = {"AWS": "AwsIamIntegrationSettings", "GCP": "GcpIamIntegrationSettings"}.get(
            row["provider"], "AzureIamIntegrationSettings"
        )
        return {
            "__typename": "IAMIntegration",
            "id": row["id"],
            "name": row["name"],
            "provider": row["provider"],
            "valid": bool(row["valid"]),
            "isOrgDefault": bool(row["is_default"]),
            "createdAt": row["created_at"],
            "updatedAt": row["created_at"],
            "lastValidAt": row["created_at"] if row["valid"] else None,
            "settings": {"__typename": typename, **json.loads(row["settings"])},
        }

    def ontology(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM metadata_schemas ORDER BY reserved DESC, name").fetchall()
        options: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["parent"]:
                options.setdefault(row["parent"], []).append(self._schema(row, []))
        return [self._schema(row, options.get(row["id"], [])) for row in rows if not row["parent"]]

    @staticmethod
    def _schema(row: sqlite3.Row, options: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "__typename": "CustomMetadataSchema",
            "id": row["id"],
            "name": row["name"],
            "kind": row["kind"],
            "reserved": bool(row["reserved"]),
            "options": options,
        }

    def upsert_schema(self, name: str, kind: str, schema_id: str | None = None) -> dict[str, Any]:
        """Create (or rename) a custom metadata field; returns it as the ontology lists it."""
        with self.lock:
            existing = self.db.execute("SELECT * FROM metadata_schemas WHERE id = ? OR name = ?", (schema_id, name))
            row = existing.fetchone()
            if row is not None and row["reserved"]:
                raise RowRefused(f"'{name}' is a reserved metadata field")
            schema_id = row["id"] if row is not None else new_id()
            self.db.execute(
                "INSERT OR REPLACE INTO metadata_schemas VALUES (?, ?, ?, 0, NULL)", (schema_id, name, kind)
            )
            row = self.db.execute("SELECT * FROM metadata_schemas WHERE id = ?", (schema_id,)).fetchone()
        return self._schema(row, [])

    def _schemas_by_id(self) -> dict[str, sqlite3.Row]:
        return {row["id"]: row for row in self.db.execute("SELECT * FROM metadata_schemas")}

    # --- datasets -----------------------------------------------------------------------------------------------

    def create_dataset(
        self, name: str, description: str | None = None, dataset_id: str | None = None
    ) -> dict[str, Any]:
        stamp = now()
        dataset_id = dataset_id or new_id()
        with self.lock:
            self.db.execute(
                "INSERT OR IGNORE INTO datasets (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (dataset_id, name, description, stamp, stamp),
            )
        dataset = self.dataset(dataset_id)
        assert dataset is not None
        return dataset

    def dataset(self, dataset_id: str | None) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM datasets WHERE id = ? AND deleted = 0", (dataset_id,)).fetchone()
            if row is None:
                return None
            count = self.db.execute("SELECT COUNT(*) FROM data_rows WHERE dataset_id = ?", (row["id"],)).fetchone()[0]
        return {
            "__typename": "Dataset",
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
            "rowCount": count,
            "deleted": False,
            "signer": self.integration(row["signer_id"]),
            "createdBy": self.user(),
            "organization": self.organization(),
        }

    def update_dataset(self, dataset_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        columns = {"name": "name", "description": "description", "deleted": "deleted"}
        with self.lock:
            for field, value in changes.items():
                if field in columns:
                    self.db.execute(
                        f"UPDATE datasets SET {columns[field]} = ?, updated_at = ? WHERE id = ?",  # noqa: S608
                        (int(value) if field == "deleted" else value, now(), dataset_id),
                    )
            row = self.db.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return {"__typename": "Dataset", "id": row["id"]} if row else None

    def set_signer(self, dataset_id: str, signer_id: str | None) -> dict[str, Any] | None:
        with self.lock:
            self.db.execute("UPDATE datasets SET signer_id = ? WHERE id = ? AND deleted = 0", (signer_id, dataset_id))
        return self.dataset(dataset_id)

    def validate_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        dataset = self.dataset(dataset_id)
        if dataset is None:
            return None
        signer = dataset["signer"]
        checks = [
            {"name": "integration attached", "success": signer is not None},
            {"name": "integration valid", "success": bool(signer and signer["valid"])},
        ]
        return {"valid": all(c["success"] for c in checks), "checks": checks}

    # --- files --------------------------------------------------------------------------------------------------

    def save_file(self, filename: str, content_type: str | None, body: bytes) -> str:
        file_id = new_id()
        with self.lock:
            self.db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)", (file_id, filename, content_type, body, now()))
        return file_id

    def file(self, file_id: str) -> tuple[str, str | None, bytes] | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return (row["filename"], row["content_type"], bytes(row["body"])) if row else None

    def _file_at(self, uri: str) -> bytes:
        """The bytes of a file this endpoint handed out (…/files/ID/NAME)."""
        parts = urlsplit(uri).path.split("/")
        found = self.file(parts[2]) if len(parts) >= 3 and parts[1] == "files" else None
        if found is None:
            raise RowRefused(f"File not found: {uri}")
        return found[2]

    # --- upsert tasks -------------------------------------------------------------------------------------------

    def create_task(self, manifest_uri: str, held: bool, delay: float) -> dict[str, Any]:
        task_id, stamp = new_id(), now()
        with self.lock:
            self.db.execute(
                "INSERT INTO tasks (id, name, type, status, manifest_uri, held, ready_at, created_at, updated_at)"
                " VALUES (?, ?, ?, 'IN_PROGRESS', ?, ?, ?, ?, ?)",
                (
                    task_id,
                    "Upsert data rows",
                    TASK_TYPE,
                    manifest_uri,
                    int(held),
                    time.monotonic() + delay,
                    stamp,
                    stamp,
                ),
            )
        task = self.task(task_id)
        assert task is not None
        return task

    def task(self, task_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        done = row["status"] != "IN_PROGRESS"
        return {
            "__typename": "Task",
            "id": row["id"],
            "name": row["name"],
            "type": row["type"],
            "status": row["status"],
            "completionPercentage": 100.0 if done else 0.0,
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
            "result": None,
            "errors": row["error"],
            "metadata": None,
            "createdBy": None,
            "organization": self.organization(),
        }

    def user_tasks(self, task_ids: Iterable[str] | None, skip: int, first: int) -> list[dict[str, Any]]:
        with self.lock:
            if task_ids is None:
                ids = [r["id"] for r in self.db.execute("SELECT id FROM tasks ORDER BY created_at DESC")]
            else:
                ids = list(task_ids)
        tasks = [t for t in (self.task(i) for i in ids) if t is not None]
        return tasks[skip : skip + first]

    def release_tasks(self) -> None:
        with self.lock:
            self.db.execute("UPDATE tasks SET held = 0 WHERE status = 'IN_PROGRESS'")

    def process_ready_tasks(self, reject: Mapping[str, str]) -> int:
        """Apply every task that is due and not held; returns how many ran."""
        with self.lock:
            due = [
                r["id"]
                for r in self.db.execute(
                    "SELECT id FROM tasks WHERE status = 'IN_PROGRESS' AND held = 0 AND ready_at <= ? ORDER BY rowid",
                    (time.monotonic(),),
                )
            ]
            for task_id in due:
                self._apply_task(task_id, reject)
        return len(due)

    def _apply_task(self, task_id: str, reject: Mapping[str, str]) -> None:
        row = self.db.execute("SELECT manifest_uri FROM tasks WHERE id = ?", (task_id,)).fetchone()
        try:
            manifest = json.loads(self._file_at(row["manifest_uri"]))
            items: list[Any] = []
            for uri in manifest["chunk_uris"]:
                chunk = json.loads(self._file_at(uri))
                if not isinstance(chunk, list):
                    raise RowRefused(f"Chunk {uri} is not a JSON array")
                items.extend(chunk)
        except (RowRefused, ValueError, KeyError, TypeError) as exc:
            self.db.execute(
                "UPDATE tasks SET status = 'FAILED', error = ?, updated_at = ? WHERE id = ?",
                (json.dumps({"message": f"Could not read the manifest: {exc}"}), now(), task_id),
            )
            return
        failures: list[dict[str, Any]] = []
        created: list[str] = []
        seen: set[str] = set()
        schemas = self._schemas_by_id()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                try:
                    created.append(self._apply_item(item, seen, schemas, reject))
                except RowRefused as refused:
                    failures.append({"message": str(refused), "spec": _spec(item)})
            self.db.execute(
                "UPDATE tasks SET status = 'COMPLETE', failures = ?, created = ?, updated_at = ? WHERE id = ?",
                (json.dumps(failures), json.dumps(created), now(), task_id),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _apply_item(
        self, item: Any, seen: set[str], schemas: Mapping[str, sqlite3.Row], reject: Mapping[str, str]
    ) -> str:
        if not isinstance(item, dict) or not isinstance(item.get("payload"), dict):
            raise RowRefused("Each item must be an object with a payload")
        key = item.get("id") or {"type": "AUTO", "value": ""}
        payload = item["payload"]
        unknown = sorted(set(payload) - PAYLOAD_FIELDS)
        if unknown:
            raise RowRefused(f"Unknown data row fields: {', '.join(unknown)}")
        global_key = payload.get("global_key")
        if key.get("type") == "GKEY" and global_key is None:
            global_key = key.get("value")
        if global_key is not None:
            if not isinstance(global_key, str) or not is_valid_global_key(global_key):
                raise RowRefused(
                    f"Invalid global key: '{str(global_key)[:220]}' (at most 200 characters: letters, digits, "
                    "spaces and !_.*'()&$@=;/:+,?- with no leading or trailing space)"
                )
            message = reject.get(global_key.lower())
            if message is not None:
                raise RowRefused(message)
            if global_key.lower() in seen:
                raise RowRefused(f"Duplicate global key: '{global_key}'")
            seen.add(global_key.lower())
        fields = self._validated_fields(payload, schemas)
        existing = self._existing_row(key)
        stamp = now()
        if existing is None:
            if key.get("type") == "ID":
                raise RowRefused(f"Data row not found: '{key.get('value')}'")
            if "row_data" not in fields:
                raise RowRefused("row_data is required to create a data row")
            if "dataset_id" not in fields:
                raise RowRefused("dataset_id is required to create a data row")
            if global_key is not None and self._row_by_key(global_key) is not None:
                raise RowRefused(f"Duplicate global key: '{global_key}'")
            row_id = new_id()
            self.db.execute(
                "INSERT INTO data_rows (id, dataset_id, global_key, row_data, external_id, media_type, metadata,"
                " attachments, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row_id,
                    fields["dataset_id"],
                    global_key,
                    fields["row_data"],
                    fields.get("external_id"),
                    fields.get("media_type"),
                    fields.get("metadata", "[]"),
                    fields.get("attachments", "[]"),
                    stamp,
                    stamp,
                ),
            )
            return row_id
        if global_key is not None:
            holder = self._row_by_key(global_key)
            if holder is not None and holder["id"] != existing["id"]:
                raise RowRefused(f"Duplicate global key: '{global_key}'")
            fields["global_key"] = global_key
        fields.pop("dataset_id", None)  # an upsert updates the row where it is
        assignments = ", ".join(f"{column} = :{column}" for column in fields)
        self.db.execute(
            f"UPDATE data_rows SET {assignments}{', ' if fields else ''}updated_at = :stamp, writes = writes + 1"  # noqa: S608
            " WHERE id = :id",
            {**fields, "stamp": stamp, "id": existing["id"]},
        )
        return str(existing["id"])

    def _validated_fields(self, payload: Mapping[str, Any], schemas: Mapping[str, sqlite3.Row]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "dataset_id" in payload:
            dataset = self.db.execute(
                "SELECT id FROM datasets WHERE id = ? AND deleted = 0", (payload["dataset_id"],)
            ).fetchone()
            if dataset is None:
                raise RowRefused(f"Dataset not found: '{payload['dataset_id']}'")
            fields["dataset_id"] = dataset["id"]
        if "row_data" in payload:
            row_data = payload["row_data"]
            if isinstance(row_data, dict):
                row_data = json.dumps(row_data)
            if not isinstance(row_data, str) or not row_data:
                raise RowRefused("row_data must be a non-empty string")
            if row_data.startswith("s3:/"):
                raise RowRefused("row_data: s3 assets must start with 'https'.")
            if len(row_data) > MAX_ROW_DATA:
                raise RowRefused(f"row_data is longer than {MAX_ROW_DATA} characters")
            fields["row_data"] = row_data
        if "external_id" in payload:
            fields["external_id"] = payload["external_id"]
        if payload.get("media_type") is not None:
            media_type = str(payload["media_type"]).upper()
            if media_type not in MEDIA_TYPES:
                raise RowRefused(f"Invalid media type: '{payload['media_type']}'")
            fields["media_type"] = media_type
        if "metadata_fields" in payload:
            fields["metadata"] = json.dumps(_validated_metadata(payload["metadata_fields"] or [], schemas))
        if "attachments" in payload:
            attachments = payload["attachments"] or []
            for attachment in attachments:
                if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES:
                    raise RowRefused(f"Invalid attachment type in {attachment!r}")
                if not attachment.get("value"):
                    raise RowRefused("Attachment value must be a non-empty string")
            fields["attachments"] = json.dumps(attachments)
        return fields

    def _existing_row(self, key: Mapping[str, Any]) -> sqlite3.Row | None:
        if key.get("type") == "GKEY":
            return self._row_by_key(str(key.get("value")))
        if key.get("type") == "ID":
            row: sqlite3.Row | None = self.db.execute(
                "SELECT * FROM data_rows WHERE id = ?", (key.get("value"),)
            ).fetchone()
            return row
        return None

    def _row_by_key(self, global_key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM data_rows WHERE global_key = ?", (global_key,)
        ).fetchone()
        return row

    def _task_list(self, task_id: str, column: str) -> list[Any] | None:
        with self.lock:
            row = self.db.execute(f"SELECT {column} FROM tasks WHERE id = ?", (task_id,)).fetchone()  # noqa: S608
        return json.loads(row[column]) if row else None

    def failed_imports(self, task_id: str, first: int | None, cursor: str | None) -> dict[str, Any] | None:
        failures = self._task_list(task_id, "failures")
        return None if failures is None else _page(failures, first, cursor, "results")

    def successful_imports(self, task_id: str, first: int | None, cursor: str | None) -> dict[str, Any] | None:
        created = self._task_list(task_id, "created")
        if created is None:
            return None
        rows = [self.data_row(row_id) or {"id": row_id} for row_id in created]
        return _page(rows, first, cursor, "nodes")

    # --- data rows ----------------------------------------------------------------------------------------------

    def data_row(self, row_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM data_rows WHERE id = ?", (row_id,)).fetchone()
            return self._row_object(row) if row else None

    def _row_object(self, row: sqlite3.Row) -> dict[str, Any]:
        schemas = self._schemas_by_id()
        metadata = json.loads(row["metadata"])
        return {
            "__typename": "DataRow",
            "id": row["id"],
            "globalKey": row["global_key"],
            "externalId": row["external_id"],
            "rowData": row["row_data"],
            "mediaType": row["media_type"],
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
            "deleted": False,
            "mediaAttributes": {},
            "customMetadata": metadata,
            "metadataFields": [
                {
                    "schemaId": m["schemaId"],
                    "value": m["value"],
                    "name": schemas[m["schemaId"]]["name"] if m["schemaId"] in schemas else None,
                    "kind": schemas[m["schemaId"]]["kind"] if m["schemaId"] in schemas else None,
                }
                for m in metadata
            ],
            "attachments": json.loads(row["attachments"]),
            "dataset": {"__typename": "Dataset", "id": row["dataset_id"]},
        }

    def dataset_rows(self, dataset_id: str, cursor: str | None, first: int) -> dict[str, Any]:
        """Newest first, from the row ``cursor`` names; the next page starts at ``startCursor`` (SDK contract)."""
        with self.lock:
            rows = self.db.execute(
                "SELECT * FROM data_rows WHERE dataset_id = ? ORDER BY rowid DESC", (dataset_id,)
            ).fetchall()
            ids = [r["id"] for r in rows]
            start = ids.index(cursor) if cursor in ids else 0
            page = rows[start : start + first]
            following = ids[start + first] if start + first < len(ids) else None
            return {
                "nodes": [self._row_object(r) for r in page],
                "pageInfo": {"hasNextPage": following is not None, "startCursor": following},
            }

    def rows(self, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """Every row as a plain record (admin route, `bucket-ingest rows`, tests)."""
        where, params = ("WHERE dataset_id = ?", (dataset_id,)) if dataset_id else ("", ())
        with self.lock:
            rows = self.db.execute(f"SELECT * FROM data_rows {where} ORDER BY rowid", params).fetchall()  # noqa: S608
        return [
            {
                **{k: row[k] for k in row.keys() if k not in ("metadata", "attachments")},  # noqa: SIM118 (sqlite3.Row)
                "metadata": json.loads(row["metadata"]),
                "attachments": json.loads(row["attachments"]),
            }
            for row in rows
        ]

    def lookup_global_keys(self, keys: Sequence[str]) -> str:
        """Start a dataRowsForGlobalKeys job; its result is fixed now. Ids come in input order, '' when missing."""
        fetched, not_found = [], []
        with self.lock:
            for key in keys:
                row = self._row_by_key(key)
                if row is None:
                    fetched.append({"__typename": "DataRow", "id": "", "globalKey": None})
                    not_found.append(key)
                else:
                    fetched.append({"__typename": "DataRow", "id": row["id"], "globalKey": row["global_key"]})
            job_id = new_id()
            result = {"fetchedDataRows": fetched, "notFoundGlobalKeys": not_found, "accessDeniedGlobalKeys": []}
            self.db.execute("INSERT INTO jobs VALUES (?, ?)", (job_id, json.dumps(result)))
        return job_id

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT result FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return json.loads(row["result"]) if row else None

    def delete_rows(self, row_ids: Sequence[str]) -> list[dict[str, Any]]:
        deleted = []
        with self.lock:
            for row_id in row_ids:
                if self.db.execute("DELETE FROM data_rows WHERE id = ?", (row_id,)).rowcount:
                    deleted.append({"__typename": "DataRow", "id": row_id})
        return deleted

    def upsert_metadata(self, updates: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """upsertDataRowCustomMetadata: set the given fields of each row (by id or global key), keep the others.
        Answers with the updates that failed only (the SDK's ``bulk_upsert``: "an empty list means success")."""
        out = []
        with self.lock:
            schemas = self._schemas_by_id()
            for update in updates:
                row_id, key = update.get("dataRowId"), update.get("globalKey")
                row = self._existing_row({"type": "ID", "value": row_id} if row_id else {"type": "GKEY", "value": key})
                entry: dict[str, Any] = {"dataRowId": row_id, "globalKey": key, "error": None, "fields": []}
                try:
                    if row is None:
                        raise RowRefused("Data row not found")
                    fields = _validated_metadata(update.get("fields") or [], schemas)
                    given = {f["schemaId"] for f in fields}
                    kept = [m for m in json.loads(row["metadata"]) if m["schemaId"] not in given]
                    self.db.execute(
                        "UPDATE data_rows SET metadata = ?, updated_at = ?, writes = writes + 1 WHERE id = ?",
                        (json.dumps(kept + fields), now(), row["id"]),
                    )
                except RowRefused as refused:
                    entry["error"] = str(refused)
                    out.append(entry)
        return out


def _validated_metadata(fields: Any, schemas: Mapping[str, sqlite3.Row]) -> list[dict[str, Any]]:
    if not isinstance(fields, list):
        raise RowRefused("metadata_fields must be a list")
    out, seen = [], set()
    for entry in fields:
        schema_id = entry.get("schemaId") if isinstance(entry, dict) else None
        if not isinstance(schema_id, str) or schema_id not in schemas:
            raise RowRefused(f"Metadata schema not found: '{schema_id}'")
        schema = schemas[schema_id]
        if schema_id in seen and schema["kind"] != "CustomMetadataEnumOption":
            raise RowRefused(f"Duplicate metadata field: '{schema['name']}'")
        seen.add(schema_id)
        value = entry.get("value")
        kind = schema["kind"]
        problem = _METADATA_CHECKS.get(kind, lambda v: None)(value)
        if problem:
            raise RowRefused(f"Invalid value for metadata field '{schema['name']}' ({kind}): {problem}")
        out.append({"schemaId": schema_id, "value": value})
    return out


def _check_string(value: Any) -> str | None:
    if not isinstance(value, str):
        return "expected a string"
    return f"longer than {MAX_STRING_METADATA} characters" if len(value) > MAX_STRING_METADATA else None


def _check_datetime(value: Any) -> str | None:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return "expected an ISO 8601 date and time"
    return None


_METADATA_CHECKS: Mapping[str, Any] = {
    "CustomMetadataString": _check_string,
    "CustomMetadataNumber": lambda v: (
        None if isinstance(v, int | float) and not isinstance(v, bool) else "expected a number"
    ),
    "CustomMetadataDateTime": _check_datetime,
}


def _spec(item: Any) -> dict[str, Any]:
    """What failedDataRowImports echoes of a refused item."""
    payload = item.get("payload", {}) if isinstance(item, dict) else {}
    key = item.get("id", {}) if isinstance(item, dict) else {}
    global_key = payload.get("global_key") or (key.get("value") if key.get("type") == "GKEY" else None)
    return {
        "externalId": payload.get("external_id"),
        "globalKey": global_key,
        "rowData": payload.get("row_data") if isinstance(payload.get("row_data"), str) else None,
        "metadata": [
            {"schemaId": m.get("schemaId"), "value": m.get("value"), "name": None}
            for m in payload.get("metadata_fields") or []
            if isinstance(m, dict)
        ],
        "attachments": [
            {"type": a.get("type"), "value": a.get("value"), "name": a.get("name")}
            for a in payload.get("attachments") or []
            if isinstance(a, dict)
        ],
    }


def _page(items: list[Any], first: int | None, cursor: str | None, key: str) -> dict[str, Any]:
    """A cursor page: ``after`` is the next page's cursor, null at the end (the SDK stops on a falsy cursor)."""
    start = int(cursor) if cursor and cursor.isdigit() else 0
    size = first or 5000
    after = str(start + size) if start + size < len(items) else None
    return {key: items[start : start + size], "after": after, "total": len(items)}
