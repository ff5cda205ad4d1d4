"""The Labelbox registry: data rows through Labelbox's GraphQL API, with the wire format of SDK 7.x and no SDK.

One batch is one bulk upsert by global key, as ``Dataset.upsert_data_rows`` sends it (labelbox-python
``schema/dataset.py``, ``schema/internal/descriptor_file_creator.py``, ``data_row_uploader.py``):

1. ``uploadFile`` (GraphQL multipart request) of JSON chunks ≤ 10 MB of
   ``{"id": {"type": "GKEY", "value": KEY}, "payload": {...}}`` items;
2. ``uploadFile`` of ``manifest.json`` ``{"source", "item_count", "chunk_uris"}``;
3. ``upsertDataRows(data: {manifestUri})``, which starts a task;
4. ``user(where: {id}) { createdTasks(where: {id}) { status } }`` until the task ends or the deadline nears;
5. ``failedDataRowImports(data: {taskId, first, from})`` for the rows Labelbox refused.

That is four requests plus the polls, whatever the batch size up to 150,000 rows per task (30,000 with metadata;
https://docs.labelbox.com/docs/limits). The user id (tasks are read through their creator), the datasets'
existence and the metadata fields' kinds are fetched once per warm instance, in one request.

Upsert by global key makes every redelivery an update, so anything uncertain is reported retryable: outages,
throttling, a task still IN_PROGRESS at the deadline, and configuration a human fixes (a refused key, a missing
dataset, an unknown metadata schema). A row Labelbox refuses as invalid is not: redelivering it cannot help.

Deletes (``INGEST_DELETE_POLICY=delete``): ``dataRowsForGlobalKeys`` job → ids → ``deleteDataRows`` in batches
of ≤ 4,000 (https://docs.labelbox.com/reference/data-row). ``mark_deleted`` (policy ``tag``) keeps the row and
sets Labelbox's reserved ``tag`` metadata field to "deleted" through ``upsertDataRowCustomMetadata``; with that
policy every upsert sends its metadata list, even empty, so an object uploaded again loses the tag (an upsert's
metadata replaces the row's set).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.deadline import Deadline
from shared.global_keys import is_valid_global_key
from shared.payloads import Payload
from shared.registries.base import RowResult, RowStatus
from shared.secrets import Secret, SecretError, api_key, forget
from shared.settings import DeletePolicy, Settings
from shared.transport import DEFAULT_BACKOFF, TransportError, request

logger = logging.getLogger(__name__)

# Limits (https://docs.labelbox.com/docs/limits, https://docs.labelbox.com/reference/data-row,
# https://docs.labelbox.com/docs/import-metadata) and the SDK's own sizes (datarow_upload_constants.py).
MAX_ROWS_PER_TASK = 150_000
MAX_ROWS_PER_TASK_WITH_METADATA = 30_000
MAX_CHUNK_BYTES = 10_000_000
MAX_DELETE_BATCH = 4_000
METADATA_BATCH = 50  # the SDK's batch for upsertDataRowCustomMetadata
RESULT_PAGE = 5_000
MAX_ROW_DATA = 65_536
MAX_STRING_METADATA = 4_096
# Labelbox's reserved "tag" field (String); its id is fixed across organisations (labelbox-python integration
# tests, TEXT_SCHEMA_ID; docs.labelbox.com/reference/import-video-data uses it as "my tag").
TAG_SCHEMA_ID = "cko8s9r5v0001h2dk9elqdidh"
DELETED_TAG = "deleted"

POLL_DELAYS = (0.2, 0.3, 0.5, 1.0)  # then 2 s, the SDK's check_frequency
POLL_CAP = 2.0
_RESULT_RESERVE = 1.0  # seconds kept back from polling to read the per-row results (a quarter of short deadlines)

# Per-row refusals whose cause is outside the object (configuration, permissions, a passing condition): retried
# so the object is not lost while a human fixes it. Matched case-insensitively. Labelbox does not document its
# row messages; these follow the ones the local endpoint gives and the SDK's tests quote.
RETRYABLE_ROW_MESSAGES = (
    "dataset not found",
    "metadata schema not found",
    "not authorized",
    "access denied",
    "permission",
    "internal error",
    "timed out",
    "try again",
)
ALREADY_REGISTERED = "duplicate global key"

# Request-level GraphQL errors (lbox request_client.py maps the same codes), with what to do about them.
_ERROR_HINTS: Mapping[str, str] = {
    "AUTHORIZATION_ERROR": "the API key's user may not do this ({detail}): give it a role that can edit the dataset",
    "GRAPHQL_VALIDATION_FAILED": "Labelbox rejected bucket-ingest's request ({detail}): its API may have changed; "
    "upgrade bucket-ingest",
    "GRAPHQL_PARSE_FAILED": "Labelbox could not parse bucket-ingest's request ({detail}): upgrade bucket-ingest",
    "MALFORMED_REQUEST": "Labelbox refused the request as malformed ({detail}): upgrade bucket-ingest",
    "OPERATION_NOT_ALLOWED": "Labelbox does not allow this ({detail}): check the organisation's plan and limits",
    "RESOURCE_CONFLICT": "Labelbox reports a conflict ({detail})",
}

_UPLOAD = (
    "mutation UploadFile($file: Upload!, $contentLength: Int!, $sign: Boolean) "
    "{uploadFile(file: $file, contentLength: $contentLength, sign: $sign) {url filename}}"
)
_UPSERT = (
    "mutation BucketIngestUpsertDataRows($manifestUri: String!) "
    "{upsertDataRows(data: {manifestUri: $manifestUri}) {id status}}"
)
_TASK = (
    "query BucketIngestTask($userId: ID!, $taskId: ID!) "
    "{user(where: {id: $userId}) {createdTasks(where: {id: $taskId} skip: 0 first: 1) {id status errors}}}"
)
_FAILED = (
    "query BucketIngestFailedImports($taskId: ID!, $first: Int, $from: String) "
    "{failedDataRowImports(data: {taskId: $taskId, first: $first, from: $from}) "
    "{after total results {message spec {globalKey externalId}}}}"
)
_FIND = "query BucketIngestFindRows($globalKeys: [ID!]!) {dataRowsForGlobalKeys(where: {ids: $globalKeys}) {jobId}}"
_FOUND = (
    "query BucketIngestFoundRows($jobId: ID!) {dataRowsForGlobalKeysResult(jobId: {id: $jobId}) "
    "{jobStatus data {fetchedDataRows {id globalKey} notFoundGlobalKeys accessDeniedGlobalKeys}}}"
)
_TAG = (
    "mutation BucketIngestTagRows($metadata: [DataRowCustomMetadataBatchUpsertInput!]!) "
    "{upsertDataRowCustomMetadata(data: $metadata) {dataRowId globalKey error}}"
)
# Metadata kinds our payload values can take, and how a value becomes one.
_KINDS: Mapping[str, Any] = {
    "CustomMetadataString": str,
    "CustomMetadataNumber": lambda v: v if isinstance(v, int | float) else float(v),
    "CustomMetadataDateTime": str,
}


class LabelboxError(Exception):
    """Labelbox refused or could not answer a request. The message says what to fix; never the key."""


class _Transient(Exception):
    """A failure Labelbox reports in an answer's body that passes with time: retried within the deadline."""


class LabelboxApi:
    """Labelbox's GraphQL endpoint, with the key attached and errors turned into messages that say what to fix.

    ``execute`` raises ``LabelboxError`` (refused, with the fix), ``TransportError`` (no answer in time) or
    ``SecretError`` (no key); the registry and `bucket-ingest doctor`/`rows` use it."""

    def __init__(self, endpoint: str, key: Secret | None, key_secret: str | None) -> None:
        self.endpoint = endpoint
        self._key = key
        self._key_secret = key_secret

    def _headers(self, deadline: Deadline, content_type: str) -> dict[str, str]:
        secret = api_key(self._key, self._key_secret, deadline).reveal()
        if not secret.isascii() or not secret.isprintable() or " " in secret:
            # http.client would quote such a header value in its exception: refuse it here, unquoted.
            raise SecretError(
                "the Labelbox API key holds spaces, line breaks or non-ASCII characters: store the key alone"
            )
        return {
            "Authorization": f"Bearer {secret}",
            "Content-Type": content_type,
            "Accept": "application/json",
            "User-Agent": "bucket-ingest",
        }

    def execute(
        self, query: str, variables: Mapping[str, Any], deadline: Deadline, *, tolerate_not_found: bool = False
    ) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": dict(variables)}).encode()
        return self._send(body, "application/json", deadline, tolerate_not_found)

    def upload(self, content: bytes, filename: str, deadline: Deadline) -> str:
        """``uploadFile`` as a GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)
        with the SDK's field names (client.py ``upload_data``); returns the URL Labelbox stored it at."""
        boundary = os.urandom(16).hex()
        operations = {"variables": {"file": None, "contentLength": len(content), "sign": False}, "query": _UPLOAD}
        body = b"".join(
            [
                _form_part(boundary, 'name="operations"', json.dumps(operations).encode()),
                _form_part(boundary, 'name="map"', json.dumps({"1": ["variables.file"]}).encode()),
                _form_part(boundary, f'name="1"; filename="{filename}"', content, "application/json"),
                f"--{boundary}--\r\n".encode(),
            ]
        )
        data = self._send(body, f"multipart/form-data; boundary={boundary}", deadline, False)
        url = (data.get("uploadFile") or {}).get("url")
        if not isinstance(url, str):
            raise LabelboxError("Labelbox's uploadFile answer has no url: upgrade bucket-ingest")
        return url

    def _send(self, body: bytes, content_type: str, deadline: Deadline, tolerate_not_found: bool) -> dict[str, Any]:
        attempt = 0
        while True:
            answer = request("POST", self.endpoint, deadline, body=body, headers=self._headers(deadline, content_type))
            try:
                document = answer.json()
            except ValueError:
                document = None
            if not isinstance(document, dict):
                raise LabelboxError(f"Labelbox answered HTTP {answer.status} with something other than a JSON object")
            try:
                return self._data(answer.status, document, tolerate_not_found)
            except _Transient as exc:  # an internal error or API limit said in the body: back off within the deadline
                wait = DEFAULT_BACKOFF.delay(attempt)
                attempt += 1
                if wait >= deadline.remaining():
                    raise LabelboxError(f"{exc}; no time left to retry before the deadline") from None
                logger.warning("Labelbox: %s; retrying in %.2fs", exc, wait)
                time.sleep(wait)

    def _data(self, status: int, document: dict[str, Any], tolerate_not_found: bool) -> dict[str, Any]:
        errors = [e for e in document.get("errors") or [] if isinstance(e, dict)]
        codes = {str((e.get("extensions") or {}).get("code")): e for e in errors}
        if status == 401 or "AUTHENTICATION_ERROR" in codes:
            forget(self._key_secret)  # a rotated key is fetched again next time
            where = (
                f"the secret {self._key_secret} (LABELBOX_API_KEY_SECRET)" if self._key is None else "LABELBOX_API_KEY"
            )
            raise LabelboxError(f"Labelbox refused the API key (AUTHENTICATION_ERROR): put a valid key in {where}")
        if status == 403 and not errors:
            raise LabelboxError(_ERROR_HINTS["AUTHORIZATION_ERROR"].format(detail="HTTP 403"))
        message = str(document.get("message") or "")
        if message.startswith("You have exceeded"):  # the SDK's ApiLimitError: throttled without a 429
            raise _Transient(f"Labelbox API limit ({message[:200]})")
        for code, hint in _ERROR_HINTS.items():
            if code in codes:
                raise LabelboxError(hint.format(detail=str(codes[code].get("message", ""))[:300]))
        if "INTERNAL_SERVER_ERROR" in codes:
            error = codes["INTERNAL_SERVER_ERROR"]
            detail = str(error.get("message", ""))[:300]
            exception = (error.get("extensions") or {}).get("exception") or {}
            if exception.get("status") == 426:
                raise LabelboxError(f"Labelbox usage limit reached ({detail}): raise the plan's limits")
            if exception.get("status") in (400, 422):
                raise LabelboxError(f"Labelbox refused the request ({detail})")
            raise _Transient(f"Labelbox internal error ({detail})")
        not_found = [e for e in errors if (e.get("extensions") or {}).get("code") == "RESOURCE_NOT_FOUND"]
        if not_found and not tolerate_not_found:
            raise LabelboxError(f"Labelbox: {str(not_found[0].get('message', 'not found'))[:300]}")
        others = [e for e in errors if e not in not_found]
        if others:
            raise LabelboxError(f"Labelbox error: {str(others[0].get('message', others[0]))[:300]}")
        if not 200 <= status < 300:
            raise LabelboxError(f"Labelbox answered HTTP {status}: {message[:200] or 'no detail'}")
        data = document.get("data")
        return data if isinstance(data, dict) else {}


def _form_part(boundary: str, disposition: str, data: bytes, content_type: str | None = None) -> bytes:
    """One part of a multipart/form-data body (RFC 7578)."""
    head = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


@dataclass(slots=True)
class _Task:
    """One upsert task: the batch positions it carries and what Labelbox said of it."""

    positions: list[int]
    task_id: str | None = None
    status: str = "IN_PROGRESS"
    errors: str = ""


class LabelboxRegistry:
    """``Registry`` over Labelbox's API (see the module docstring)."""

    def __init__(
        self,
        endpoint: str,
        *,
        key: Secret | None = None,
        key_secret: str | None = None,
        metadata_schemas: Mapping[str, str] | None = None,
        delete_policy: DeletePolicy = DeletePolicy.IGNORE,
    ) -> None:
        self.api = LabelboxApi(endpoint, key, key_secret)
        self._metadata_schemas = dict(metadata_schemas or {})
        self._always_send_metadata = delete_policy is DeletePolicy.TAG
        self._user_id: str | None = None  # cached per warm instance
        self._datasets: set[str] = set()  # known to exist, per warm instance
        self._kinds: dict[str, str] | None = None  # schema id → kind, per warm instance

    @classmethod
    def from_settings(cls, settings: Settings) -> LabelboxRegistry:
        return cls(
            settings.labelbox_endpoint,
            key=settings.api_key,
            key_secret=settings.api_key_secret,
            metadata_schemas=settings.metadata_schemas,
            delete_policy=settings.delete_policy,
        )

    def __repr__(self) -> str:
        return f"LabelboxRegistry(endpoint={self.api.endpoint!r})"

    def close(self) -> None:
        """Nothing to release: connections are pooled per warm instance by the transport."""

    # --- register ---------------------------------------------------------------------------------------------

    def register(self, payloads: Sequence[Payload], deadline: Deadline) -> list[RowResult]:
        if not payloads:
            return []
        results: dict[int, RowResult] = {}
        try:
            missing = self._prepare({p.dataset_id for p in payloads if p.dataset_id}, deadline)
        except (LabelboxError, TransportError, SecretError) as exc:
            return [self._refusal(p) or RowResult.failed(p.global_key, str(exc), retryable=True) for p in payloads]
        items: dict[int, bytes] = {}
        seen: set[str] = set()
        for position, payload in enumerate(payloads):
            refused = self._refusal(payload)
            if refused is None and payload.global_key.lower() in seen:
                refused = RowResult.failed(
                    payload.global_key,
                    f"Duplicate global key: '{payload.global_key}' (twice in one batch)",
                    retryable=False,
                )
            if refused is None and payload.dataset_id in missing:
                refused = RowResult.failed(
                    payload.global_key,
                    f"Labelbox has no dataset {payload.dataset_id!r} that this API key can see: check INGEST_REGISTRY "
                    "and INGEST_ROUTES, and the key's workspace",
                    retryable=True,
                )
            if refused is None:
                try:
                    items[position] = self._item(payload)
                except _MetadataProblem as problem:
                    refused = RowResult.failed(payload.global_key, str(problem), retryable=problem.retryable)
            if refused is not None:
                results[position] = refused
            else:
                seen.add(payload.global_key.lower())
        tasks = self._submit(items, payloads, deadline, results)
        self._await(tasks, deadline)
        for task in tasks:
            self._settle(task, payloads, deadline, results)
        return [results[i] for i in range(len(payloads))]

    def _prepare(self, dataset_ids: set[str], deadline: Deadline) -> set[str]:
        """Fetch, in one request and once per warm instance, what every batch needs: the user id (tasks are read
        through their creator), which datasets exist, and the metadata fields' kinds. Returns missing datasets."""
        unknown = sorted(dataset_ids - self._datasets)
        want_kinds = bool(self._metadata_schemas) and self._kinds is None
        if self._user_id is not None and not unknown and not want_kinds:
            return set()
        variables = {f"d{i}": dataset_id for i, dataset_id in enumerate(unknown)}
        fields = ["user {id}"] + [f"{name}: dataset(where: {{id: ${name}}}) {{id}}" for name in variables]
        if want_kinds:
            fields.append("customMetadataOntology {id name kind}")
        declarations = f"({', '.join(f'${name}: ID!' for name in variables)})" if variables else ""
        query = f"query BucketIngestPrepare{declarations} {{{' '.join(fields)}}}"
        data = self.api.execute(query, variables, deadline, tolerate_not_found=True)
        user = data.get("user") or {}
        if not user.get("id"):
            raise LabelboxError("Labelbox did not say who the API key belongs to: check the key")
        self._user_id = str(user["id"])
        missing = set()
        for i, dataset_id in enumerate(unknown):
            if data.get(f"d{i}"):
                self._datasets.add(dataset_id)
            else:
                missing.add(dataset_id)
        if want_kinds:
            self._kinds = {str(s["id"]): str(s["kind"]) for s in data.get("customMetadataOntology") or []}
        return missing

    def _refusal(self, payload: Payload) -> RowResult | None:
        """What Labelbox would refuse in this row, said before sending it (so it cannot hold up the others)."""
        problem = None
        if not is_valid_global_key(payload.global_key):
            problem = (
                f"invalid global key {payload.global_key[:80]!r}: Labelbox takes at most 200 characters "
                "(letters, digits, spaces and !_.*'()&$@=;/:+,?-) with no leading or trailing space"
            )
        elif not payload.row_data:
            problem = "row_data is empty"
        elif payload.row_data.startswith("s3:/"):
            problem = "row_data is an s3:// URI: Labelbox needs https://BUCKET.s3.REGION.amazonaws.com/KEY"
        elif len(payload.row_data) > MAX_ROW_DATA:
            problem = f"row_data is {len(payload.row_data)} characters, over Labelbox's limit of {MAX_ROW_DATA}"
        elif not payload.dataset_id:
            problem = "no dataset: set INGEST_REGISTRY=labelbox://DATASET_ID or a route in INGEST_ROUTES"
        if problem is None:
            return None
        return RowResult.failed(payload.global_key, problem, retryable=not payload.dataset_id)

    def _item(self, payload: Payload) -> bytes:
        body: dict[str, Any] = {
            "row_data": payload.row_data,
            "global_key": payload.global_key,
            "external_id": payload.external_id,
            "dataset_id": payload.dataset_id,
        }
        if payload.media_type is not None:
            body["media_type"] = payload.media_type.value
        metadata = self._metadata_fields(payload)
        if metadata or self._always_send_metadata:
            body["metadata_fields"] = metadata
        item = json.dumps({"id": {"type": "GKEY", "value": payload.global_key}, "payload": body}).encode()
        if len(item) + 2 > MAX_CHUNK_BYTES:
            raise _MetadataProblem(
                f"the row is {len(item)} bytes as JSON, over Labelbox's {MAX_CHUNK_BYTES}-byte upload chunk",
                retryable=False,
            )
        return item

    def _metadata_fields(self, payload: Payload) -> list[dict[str, Any]]:
        """Metadata by schema id, only for the names INGEST_METADATA_SCHEMAS maps; values in the schema's kind."""
        fields = []
        for name, schema_id in self._metadata_schemas.items():
            if name not in payload.metadata:
                continue
            kind = (self._kinds or {}).get(schema_id)
            if kind is None:
                raise _MetadataProblem(
                    f"INGEST_METADATA_SCHEMAS maps {name} to {schema_id!r}, which is not a metadata field of the "
                    "organisation: use an id from Labelbox's schema page (Catalog → Metadata)",
                    retryable=True,
                )
            if kind not in _KINDS:
                raise _MetadataProblem(
                    f"INGEST_METADATA_SCHEMAS maps {name} to a {kind} field: map it to a String, Number or "
                    "DateTime field",
                    retryable=True,
                )
            try:
                value = _KINDS[kind](payload.metadata[name])
            except ValueError:
                raise _MetadataProblem(
                    f"metadata {name}={payload.metadata[name]!r} is not a number, but INGEST_METADATA_SCHEMAS maps "
                    "it to a Number field",
                    retryable=True,
                ) from None
            if isinstance(value, str) and len(value) > MAX_STRING_METADATA:
                raise _MetadataProblem(
                    f"metadata {name} is {len(value)} characters, over Labelbox's limit of {MAX_STRING_METADATA}",
                    retryable=False,
                )
            fields.append({"schemaId": schema_id, "value": value})
        return fields

    def _submit(
        self, items: Mapping[int, bytes], payloads: Sequence[Payload], deadline: Deadline, results: dict[int, RowResult]
    ) -> list[_Task]:
        limit = MAX_ROWS_PER_TASK_WITH_METADATA if self._metadata_schemas else MAX_ROWS_PER_TASK
        positions = sorted(items)
        tasks = [_Task(positions[i : i + limit]) for i in range(0, len(positions), limit)]
        for task in tasks:
            try:
                chunk_uris = [
                    self.api.upload(chunk, "json_import.json", deadline)
                    for chunk in _chunks([items[i] for i in task.positions])
                ]
                manifest = {"source": "SDK", "item_count": len(task.positions), "chunk_uris": chunk_uris}
                manifest_uri = self.api.upload(json.dumps(manifest).encode(), "manifest.json", deadline)
                answer = self.api.execute(_UPSERT, {"manifestUri": manifest_uri}, deadline)
                started = answer.get("upsertDataRows") or {}
                if not started.get("id"):
                    raise LabelboxError("Labelbox started no upsert task: upgrade bucket-ingest")
                task.task_id, task.status = str(started["id"]), str(started.get("status") or "IN_PROGRESS")
                logger.info("Labelbox upsert task %s started for %d rows", task.task_id, len(task.positions))
            except (LabelboxError, TransportError, SecretError) as exc:
                task.status = "NOT_STARTED"
                for i in task.positions:
                    results[i] = RowResult.failed(
                        payloads[i].global_key, f"not sent to Labelbox: {exc}", retryable=True
                    )
        return tasks

    def _await(self, tasks: list[_Task], deadline: Deadline) -> None:
        """Poll the tasks until they end, keeping time back to read their per-row results."""
        delays = _poll_delays()
        reserve = min(_RESULT_RESERVE, deadline.remaining() / 4)
        while pending := [t for t in tasks if t.status == "IN_PROGRESS"]:
            delay = next(delays)
            if deadline.remaining() < delay + reserve:
                return
            time.sleep(delay)
            for task in pending:
                try:
                    answer = self.api.execute(_TASK, {"userId": self._user_id, "taskId": task.task_id}, deadline)
                except (LabelboxError, TransportError, SecretError) as exc:
                    logger.warning("Labelbox task %s: could not read its status: %s", task.task_id, exc)
                    continue
                found = ((answer.get("user") or {}).get("createdTasks") or [None])[0]
                if found:
                    task.status = str(found.get("status") or "IN_PROGRESS")
                    task.errors = json.dumps(found.get("errors"))[:300] if found.get("errors") else ""

    def _settle(
        self, task: _Task, payloads: Sequence[Payload], deadline: Deadline, results: dict[int, RowResult]
    ) -> None:
        if task.status == "NOT_STARTED":
            return
        keys = {payloads[i].global_key.lower(): i for i in task.positions}

        def fail_all(message: str) -> None:
            for i in task.positions:
                results.setdefault(i, RowResult.failed(payloads[i].global_key, message, retryable=True))

        if task.status == "IN_PROGRESS":
            fail_all(
                f"Labelbox task {task.task_id} was still IN_PROGRESS at the deadline: it may finish on its own; "
                "a redelivery upserts the same global keys"
            )
            return
        if task.status != "COMPLETE":
            fail_all(f"Labelbox task {task.task_id} ended {task.status}{': ' + task.errors if task.errors else ''}")
            return
        try:
            failures = list(self._failures(str(task.task_id), deadline))
        except (LabelboxError, TransportError, SecretError) as exc:
            fail_all(f"Labelbox task {task.task_id} completed, but its per-row results could not be read: {exc}")
            return
        unattributed = 0
        for message, global_key in failures:
            position = keys.get((global_key or "").lower())
            if position is None:
                unattributed += 1
                continue
            results[position] = _row_result(payloads[position].global_key, message)
        if unattributed:
            logger.warning("Labelbox task %s: %d failures name no row of the batch", task.task_id, unattributed)
            fail_all(
                f"Labelbox task {task.task_id} reported {unattributed} failure(s) it did not attribute to a row; "
                "a redelivery upserts the same global keys"
            )
            return
        for i in task.positions:
            results.setdefault(i, RowResult(payloads[i].global_key, RowStatus.UPSERTED))

    def _failures(self, task_id: str, deadline: Deadline) -> Iterator[tuple[str, str | None]]:
        cursor: str | None = None
        while True:
            answer = self.api.execute(_FAILED, {"taskId": task_id, "first": RESULT_PAGE, "from": cursor}, deadline)
            page = answer.get("failedDataRowImports") or {}
            for failure in page.get("results") or []:
                yield str(failure.get("message") or "refused"), (failure.get("spec") or {}).get("globalKey")
            cursor = page.get("after")
            if not cursor:
                return

    # --- delete and tag ---------------------------------------------------------------------------------------

    def delete(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]:
        try:
            ids = self._row_ids(global_keys, deadline)
            found = [row_id for row_id in ids.values() if row_id]
            for start in range(0, len(found), MAX_DELETE_BATCH):
                batch = found[start : start + MAX_DELETE_BATCH]
                self.api.execute(_delete_query(batch), {}, deadline)
        except (LabelboxError, TransportError, SecretError) as exc:
            return [RowResult.failed(k, f"not deleted: {exc}", retryable=True) for k in global_keys]
        return [RowResult(k, RowStatus.DELETED if ids.get(k) else RowStatus.ABSENT) for k in global_keys]

    def mark_deleted(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]:
        try:
            ids = self._row_ids(global_keys, deadline)
            errors: dict[str, str] = {}
            found = [(k, row_id) for k, row_id in ids.items() if row_id]
            for start in range(0, len(found), METADATA_BATCH):
                batch = found[start : start + METADATA_BATCH]
                updates = [
                    {"dataRowId": row_id, "fields": [{"schemaId": TAG_SCHEMA_ID, "value": DELETED_TAG}]}
                    for _, row_id in batch
                ]
                answer = self.api.execute(_TAG, {"metadata": updates}, deadline)
                by_id = {str(r.get("dataRowId")): r for r in answer.get("upsertDataRowCustomMetadata") or []}
                for key, row_id in batch:
                    error = (by_id.get(row_id) or {}).get("error")
                    if error:
                        errors[key] = str(error)
        except (LabelboxError, TransportError, SecretError) as exc:
            return [RowResult.failed(k, f"not tagged: {exc}", retryable=True) for k in global_keys]
        out = []
        for key in global_keys:
            if key in errors:
                out.append(RowResult.failed(key, f"Labelbox did not tag the row: {errors[key]}", retryable=True))
            else:
                out.append(RowResult(key, RowStatus.TAGGED if ids.get(key) else RowStatus.ABSENT))
        return out

    def _row_ids(self, global_keys: Sequence[str], deadline: Deadline) -> dict[str, str]:
        """Global key → data-row id ('' when no row has it), through a dataRowsForGlobalKeys job."""
        if not global_keys:
            return {}
        job = self.api.execute(_FIND, {"globalKeys": list(global_keys)}, deadline)
        job_id = (job.get("dataRowsForGlobalKeys") or {}).get("jobId")
        delays = _poll_delays(first=0.0)
        while True:
            answer = self.api.execute(_FOUND, {"jobId": job_id}, deadline)
            result = answer.get("dataRowsForGlobalKeysResult") or {}
            if result.get("jobStatus") == "COMPLETE":
                break
            if result.get("jobStatus") == "FAILED":
                raise LabelboxError("Labelbox's dataRowsForGlobalKeys job failed")
            delay = next(delays)
            if deadline.remaining() <= delay:
                raise LabelboxError("Labelbox's dataRowsForGlobalKeys job did not finish before the deadline")
            time.sleep(delay)
        data = result.get("data") or {}
        denied = {str(k).lower() for k in data.get("accessDeniedGlobalKeys") or []}
        if denied:
            raise LabelboxError(
                f"the API key's user may not see {len(denied)} of these rows: give it access to their datasets"
            )
        fetched = data.get("fetchedDataRows") or []
        by_key = {str(r["globalKey"]).lower(): str(r.get("id") or "") for r in fetched if r.get("globalKey")}
        if not by_key and len(fetched) == len(global_keys):  # ids in input order, '' where missing (SDK contract)
            return {k: str(r.get("id") or "") for k, r in zip(global_keys, fetched, strict=True)}
        return {k: by_key.get(k.lower(), "") for k in global_keys}


class _MetadataProblem(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _delete_query(row_ids: Sequence[str]) -> str:
    """The SDK's form (orm/query.py ``bulk_delete``): ids inline, JSON-quoted (a valid GraphQL string)."""
    ids = ", ".join(json.dumps(row_id) for row_id in row_ids)
    return f"mutation deleteDataRowsPyApi{{deleteDataRows(where: {{dataRowIds: [{ids}]}}){{id}}}}"


def _row_result(global_key: str, message: str) -> RowResult:
    lowered = message.lower()
    if lowered.startswith(ALREADY_REGISTERED):
        return RowResult(global_key, RowStatus.PRESENT)
    retryable = any(fragment in lowered for fragment in RETRYABLE_ROW_MESSAGES)
    return RowResult.failed(global_key, f"Labelbox refused the row: {message[:500]}", retryable=retryable)


def _chunks(items: Sequence[bytes]) -> Iterator[bytes]:
    """JSON arrays of whole items, each at most MAX_CHUNK_BYTES (an item alone never exceeds it: checked earlier)."""
    batch: list[bytes] = []
    size = 2
    for item in items:
        if batch and size + len(item) + 1 > MAX_CHUNK_BYTES:
            yield b"[" + b",".join(batch) + b"]"
            batch, size = [], 2
        batch.append(item)
        size += len(item) + 1
    if batch:
        yield b"[" + b",".join(batch) + b"]"


def _poll_delays(first: float | None = None) -> Iterator[float]:
    if first is not None:
        yield first
    yield from POLL_DELAYS
    while True:
        yield POLL_CAP
