"""Configuration from environment variables, validated once; each error names the variable and the fix.

The README's configuration table lists the same variables; ``VARIABLES`` is the source of truth for the
infrastructure consistency test.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from shared.globs import Glob
from shared.media_types import MediaType
from shared.secrets import Secret

DEFAULT_LABELBOX_ENDPOINT = "https://api.labelbox.com/graphql"
DEFAULT_SQLITE_DATASET = "default"

# Every variable the functions read, with a one-line description (README table, infra consistency test).
VARIABLES: Mapping[str, str] = {
    "INGEST_REGISTRY": "where rows go: labelbox://DATASET_ID or sqlite:///PATH[?dataset=NAME]",
    "INGEST_ROUTES": "GLOB=DATASET rules over BUCKET/KEY, separated by ';' or newlines; first match wins",
    "INGEST_INCLUDE": "comma-separated key globs; when set, only matching objects register",
    "INGEST_EXCLUDE": "comma-separated key globs never registered",
    "INGEST_ALLOWED_BUCKETS": "comma-separated bucket/container names; events for others are refused",
    "INGEST_SKIP_ZERO_BYTE": "skip empty objects (true/false)",
    "INGEST_SKIP_FOLDER_MARKERS": "skip 'folder/' placeholder objects (true/false)",
    "INGEST_MAX_SIZE": "skip objects larger than this (bytes, or 500MB, 2GiB, ...)",
    "INGEST_DELETE_POLICY": "what a deleted object does to its row: ignore, tag or delete",
    "INGEST_UNKNOWN_MEDIA": "objects of no known media type: skip, or register and let Labelbox infer it",
    "INGEST_MEDIA_TYPES": "extra extension rules, e.g. 'tif=IMAGE,webm=VIDEO,json=skip'",
    "INGEST_UNSERVABLE_KEYS": "keys with # < > | or control characters: skip, or register anyway",
    "INGEST_METADATA_SCHEMAS": "send metadata to Labelbox: 'size=SCHEMA_ID,etag=SCHEMA_ID,...'",
    "INGEST_TIMEOUT_SECONDS": "time budget of one invocation where the platform gives none (GCP, Azure; default 50)",
    "INGEST_AWS_REGION": "S3 bucket region when an event does not carry one (default: AWS_REGION)",
    "LABELBOX_API_KEY": "the API key itself (development; prefer LABELBOX_API_KEY_SECRET)",
    "LABELBOX_API_KEY_SECRET": "where the key is kept: Secrets Manager/SSM ARN, GCP secret, Key Vault URL",
    "LABELBOX_ENDPOINT": "GraphQL endpoint (default https://api.labelbox.com/graphql)",
}

METADATA_FIELDS = ("size", "content_type", "etag", "version", "event_time", "bucket", "cloud")
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B|B)?", re.IGNORECASE)
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_Choice = TypeVar("_Choice", bound=StrEnum)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class DeletePolicy(StrEnum):
    IGNORE = "ignore"  # keep the row (deleting a row destroys its labels)
    TAG = "tag"  # keep the row, mark it deleted in its metadata
    DELETE = "delete"  # delete the row


class Choice(StrEnum):
    SKIP = "skip"
    REGISTER = "register"


class SettingsError(ValueError):
    """One or more variables are wrong; the message names each and says what to set instead."""


@dataclass(frozen=True, slots=True)
class Route:
    glob: Glob  # over "BUCKET/KEY"
    dataset: str


@dataclass(frozen=True, slots=True)
class Settings:
    registry_url: str
    default_dataset: str | None
    routes: tuple[Route, ...] = ()
    include: tuple[Glob, ...] = ()
    exclude: tuple[Glob, ...] = ()
    allowed_buckets: frozenset[str] = frozenset()
    skip_zero_byte: bool = True
    skip_folder_markers: bool = True
    max_size: int | None = None
    delete_policy: DeletePolicy = DeletePolicy.IGNORE
    unknown_media: Choice = Choice.SKIP
    media_types: Mapping[str, MediaType | None] = field(default_factory=dict)
    unservable_keys: Choice = Choice.SKIP
    metadata_schemas: Mapping[str, str] = field(default_factory=dict)
    aws_region: str | None = None
    timeout_seconds: float = 50.0
    labelbox_endpoint: str = DEFAULT_LABELBOX_ENDPOINT
    api_key: Secret | None = None
    api_key_secret: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every variable; all problems are reported together."""
        reader = _Reader(env)
        registry_url = (
            reader.get("INGEST_REGISTRY") or f"sqlite:///{Path(tempfile.gettempdir()) / 'bucket-ingest.sqlite'}"
        )
        default_dataset = reader.registry_dataset(registry_url)
        settings = cls(
            registry_url=registry_url,
            default_dataset=default_dataset,
            routes=reader.routes("INGEST_ROUTES"),
            include=reader.globs("INGEST_INCLUDE"),
            exclude=reader.globs("INGEST_EXCLUDE"),
            allowed_buckets=frozenset(reader.items("INGEST_ALLOWED_BUCKETS")),
            skip_zero_byte=reader.boolean("INGEST_SKIP_ZERO_BYTE", True),
            skip_folder_markers=reader.boolean("INGEST_SKIP_FOLDER_MARKERS", True),
            max_size=reader.size("INGEST_MAX_SIZE"),
            delete_policy=reader.choice("INGEST_DELETE_POLICY", DeletePolicy, DeletePolicy.IGNORE),
            unknown_media=reader.choice("INGEST_UNKNOWN_MEDIA", Choice, Choice.SKIP),
            media_types=reader.media_types("INGEST_MEDIA_TYPES"),
            unservable_keys=reader.choice("INGEST_UNSERVABLE_KEYS", Choice, Choice.SKIP),
            metadata_schemas=reader.metadata_schemas("INGEST_METADATA_SCHEMAS"),
            aws_region=reader.get("INGEST_AWS_REGION")
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
            or None,
            timeout_seconds=reader.seconds("INGEST_TIMEOUT_SECONDS", 50.0),
            labelbox_endpoint=reader.url("LABELBOX_ENDPOINT", DEFAULT_LABELBOX_ENDPOINT),
            api_key=Secret(key) if (key := reader.get("LABELBOX_API_KEY")) else None,
            api_key_secret=reader.get("LABELBOX_API_KEY_SECRET") or None,
        )
        if registry_url.startswith("labelbox:") and not (settings.api_key or settings.api_key_secret):
            reader.error(
                "LABELBOX_API_KEY_SECRET",
                "the labelbox registry needs an API key: set LABELBOX_API_KEY_SECRET "
                "to where it is stored (or LABELBOX_API_KEY for local use)",
            )
        reader.raise_errors()
        return settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[str] = []

    def error(self, name: str, message: str) -> None:
        self.errors.append(f"{name}: {message}")

    def raise_errors(self) -> None:
        if self.errors:
            raise SettingsError("invalid configuration: " + "; ".join(self.errors))

    def get(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def items(self, name: str) -> list[str]:
        return [item.strip() for item in self.get(name).split(",") if item.strip()]

    def globs(self, name: str) -> tuple[Glob, ...]:
        return tuple(Glob(item) for item in self.items(name))

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name).lower()
        if not value:
            return default
        if value in _TRUE | _FALSE:
            return value in _TRUE
        self.error(name, f"{value!r} is not a boolean: use true or false")
        return default

    def choice(self, name: str, enum: type[_Choice], default: _Choice) -> _Choice:
        value = self.get(name).lower()
        if not value:
            return default
        try:
            return enum(value)
        except ValueError:
            self.error(name, f"{value!r} is not one of {', '.join(e.value for e in enum)}")
            return default

    def size(self, name: str) -> int | None:
        value = self.get(name)
        if not value:
            return None
        match = _SIZE.fullmatch(value)
        if not match:
            self.error(name, f"{value!r} is not a size: use bytes or a number with KB, MB, GB, GiB (e.g. 5GB)")
            return None
        return int(float(match["number"]) * _UNITS[(match["unit"] or "").upper()])

    def seconds(self, name: str, default: float) -> float:
        value = self.get(name)
        if not value:
            return default
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 3600:
            self.error(name, f"{value!r} is not a number of seconds between 0 and 3600")
            return default
        return seconds

    def url(self, name: str, default: str) -> str:
        value = self.get(name) or default
        if not value.startswith(("https://", "http://")):
            self.error(name, f"{value!r} is not an http(s) URL")
        return value

    def registry_dataset(self, url: str) -> str | None:
        if url.startswith("labelbox://"):
            return url[len("labelbox://") :].strip("/") or None
        if url.startswith("sqlite://"):
            _, _, query = url.partition("?")
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            return params.get("dataset") or DEFAULT_SQLITE_DATASET
        self.error("INGEST_REGISTRY", f"{url!r} is not a registry URL: use labelbox://DATASET_ID or sqlite:///PATH")
        return None

    def routes(self, name: str) -> tuple[Route, ...]:
        routes = []
        for rule in re.split(r"[;\n]", self.get(name)):
            if not rule.strip():
                continue
            pattern, sep, dataset = rule.strip().rpartition("=")
            if not sep or not pattern.strip() or not dataset.strip():
                self.error(name, f"rule {rule.strip()!r} should be GLOB=DATASET (e.g. 'photos/**=ckxyz...')")
                continue
            routes.append(Route(Glob(pattern.strip()), dataset.strip()))
        return tuple(routes)

    def media_types(self, name: str) -> dict[str, MediaType | None]:
        rules: dict[str, MediaType | None] = {}
        for item in self.items(name):
            extension, sep, value = item.partition("=")
            extension = extension.strip().lstrip(".").lower()
            value = value.strip().upper()
            if not sep or not extension:
                self.error(name, f"rule {item!r} should be EXTENSION=TYPE (e.g. tif=IMAGE, json=skip)")
            elif value == "SKIP":
                rules[extension] = None
            elif value in MediaType.__members__:
                rules[extension] = MediaType[value]
            else:
                self.error(
                    name,
                    f"{value!r} in {item!r} is not a media type: use one of {', '.join(MediaType.__members__)} or skip",
                )
        return rules

    def metadata_schemas(self, name: str) -> dict[str, str]:
        schemas: dict[str, str] = {}
        for item in self.items(name):
            field_name, sep, schema_id = item.partition("=")
            field_name, schema_id = field_name.strip(), schema_id.strip()
            if not sep or field_name not in METADATA_FIELDS or not schema_id:
                self.error(
                    name,
                    f"rule {item!r} should be FIELD=SCHEMA_ID with FIELD one of {', '.join(METADATA_FIELDS)}",
                )
            else:
                schemas[field_name] = schema_id
        return schemas
