"""A local HTTP server speaking Labelbox's GraphQL subset, with faults to inject and a request log to read.

Routes:
- ``POST /graphql``: GraphQL, JSON or multipart (uploads), ``Authorization: Bearer KEY``.
- ``GET /files/ID/NAME``: a file uploaded through ``uploadFile`` (the URL it answered with).
- ``GET|POST /_admin/faults``: read or change the faults (JSON, fields of ``Faults``).
- ``GET|DELETE /_admin/requests``: the request log (operation, root fields with arguments and selections).
- ``GET /_admin/rows[?dataset=ID]``, ``POST /_admin/datasets`` ``{"name", "id"?}``: look and set up.

Faults apply to ``/graphql`` only. 5xx and 429 answer before the request runs; a dropped connection closes
after it ran (the client never learns the outcome: the at-least-once case); a slow answer waits first.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from bucket_ingest.labelbox_endpoint import graphql
from bucket_ingest.labelbox_endpoint.schema import SCHEMA, Upload, resolvers
from bucket_ingest.labelbox_endpoint.store import Store

DEFAULT_API_KEY = "local-api-key"


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong, and how often (shares of /graphql requests, drawn from ``seed``)."""

    error_rate: float = 0.0  # answered with ``error_status`` before running
    error_status: int = 503
    throttle_rate: float = 0.0  # answered 429 with Retry-After before running
    retry_after: float = 1.0  # seconds, in the Retry-After header
    slow_rate: float = 0.0  # answered ``slow_seconds`` late
    slow_seconds: float = 0.0
    drop_rate: float = 0.0  # run, then the connection closes with no answer
    hold_tasks: bool = False  # upsert tasks stay IN_PROGRESS until this is switched off
    reject: dict[str, str] = field(default_factory=dict)  # global key → message its row fails with
    integrations_valid: bool = True  # what validateDataset finds
    seed: int | None = None

    @classmethod
    def from_json(cls, document: dict[str, Any], base: Faults | None = None) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        faults = replace(base or cls(), **document)
        return replace(faults, reject={k.lower(): v for k, v in faults.reject.items()})


class LabelboxEndpoint:
    """The endpoint: ``start()`` serves on a free loopback port unless told one; ``stop()`` ends it."""

    def __init__(
        self,
        db: str | Path = ":memory:",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Sequence[str] = (DEFAULT_API_KEY,),
        faults: Faults | None = None,
        task_seconds: float = 0.0,
    ) -> None:
        self.store = Store(db)
        self.api_keys = frozenset(api_keys)
        self.task_seconds = task_seconds
        self._faults = faults or Faults()
        self._random = random.Random(self._faults.seed)  # noqa: S311 (fault draws, not crypto)
        self._log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._resolvers = resolvers(self)
        self._local = threading.local()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self.store.set_integrations_valid(self._faults.integrations_valid)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The GraphQL endpoint, as ``labelbox.Client(endpoint=...)`` and LABELBOX_ENDPOINT take it."""
        return f"{self.base_url}/graphql"

    def start(self) -> LabelboxEndpoint:
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(0.05,), name="labelbox-endpoint", daemon=True),
            threading.Thread(target=self._work, name="labelbox-endpoint-tasks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> LabelboxEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _work(self) -> None:
        """Apply upsert tasks as they come due (Labelbox runs them asynchronously)."""
        while not self._stopped.is_set():
            self._wake.wait(0.02)
            self._wake.clear()
            if not self._stopped.is_set():
                self.store.process_ready_tasks(self._faults.reject)

    # --- faults and log -----------------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults (or change some fields); releasing held tasks lets them complete."""
        new = Faults.from_json(changes, faults or self._faults)
        with self._lock:
            self._faults = new
            if new.seed is not None:
                self._random.seed(new.seed)
        self.store.set_integrations_valid(new.integrations_valid)
        if not new.hold_tasks:
            self.store.release_tasks()
            self._wake.set()
        return new

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _draw(self) -> tuple[str | None, bool, bool]:
        """(answer fault "error"/"throttle"/None, slow, drop) for one request."""
        with self._lock:
            faults, draw = self._faults, self._random.random()
            answer = None
            if draw < faults.error_rate:
                answer = "error"
            elif draw < faults.error_rate + faults.throttle_rate:
                answer = "throttle"
            slow = self._random.random() < faults.slow_rate
            drop = self._random.random() < faults.drop_rate
        return answer, slow, drop

    # --- helpers for resolvers ------------------------------------------------------------------------------------

    def file_url(self, file_id: str, filename: str) -> str:
        return f"{self.base_url}/files/{file_id}/{quote(filename)}"

    def note_upload(self, file_id: str, upload: Upload) -> None:
        entry = getattr(self._local, "entry", None)
        if entry is not None:
            entry["upload"] = {
                "file_id": file_id,
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": len(upload.body),
            }

    def start_task(self, manifest_uri: str) -> dict[str, Any]:
        """A new upsert task, answered IN_PROGRESS as Labelbox does. With no delay and no hold it is applied
        before the answer goes out, so that its first poll finds it done (request counts do not depend on timing)."""
        task = self.store.create_task(manifest_uri, self._faults.hold_tasks, self.task_seconds)
        if self.task_seconds <= 0 and not self._faults.hold_tasks:
            self.store.process_ready_tasks(self._faults.reject)
        else:
            self._wake.set()
        return task

    def create_dataset(self, name: str, dataset_id: str | None = None, *, signed: bool = True) -> str:
        """A dataset (with the organisation's default IAM integration attached unless ``signed`` is false)."""
        dataset = self.store.create_dataset(name, dataset_id=dataset_id)
        default = next((i for i in self.store.integrations() if i["isOrgDefault"]), None)
        if signed and default is not None:
            self.store.set_signer(dataset["id"], default["id"])
        return str(dataset["id"])

    def upload_json(self, file_id: str) -> Any:
        """An uploaded file, parsed (tests compare what clients upload)."""
        found = self.store.file(file_id)
        return None if found is None else json.loads(found[2])

    # --- one GraphQL request --------------------------------------------------------------------------------------

    def handle_graphql(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) to answer, or None to drop the connection."""
        entry: dict[str, Any] = {"at": time.time(), "operation": None, "kind": None, "fields": [], "fault": None}
        with self._lock:
            self._log.append(entry)
        answer_fault, slow, drop = self._draw()
        faults = self._faults
        if slow:
            time.sleep(faults.slow_seconds)
        if answer_fault == "error":
            entry.update(fault="error", status=faults.error_status)
            return faults.error_status, {"Content-Type": "text/plain"}, b"upstream connect error or disconnect/reset"
        if answer_fault == "throttle":
            entry.update(fault="throttle", status=429)
            retry_after = f"{faults.retry_after:g}"
            body_429 = json.dumps({"message": "Too Many Requests"}).encode()
            return 429, {"Content-Type": "application/json", "Retry-After": retry_after}, body_429
        status, answer = self._run(headers, body, entry)
        entry["status"] = status
        if drop:
            entry["fault"] = "drop"
            return None
        return status, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _run(self, headers: Any, body: bytes, entry: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        authorization = headers.get("Authorization", "")
        if not authorization.startswith("Bearer ") or authorization[len("Bearer ") :] not in self.api_keys:
            error = graphql.GraphQLError("Invalid API key", "AUTHENTICATION_ERROR", 401)
            return 401, {"errors": [error.as_dict()], "data": None}
        try:
            document, variables = _read_body(headers.get("Content-Type", ""), body)
            request = graphql.prepare(SCHEMA, document.get("query") or "", variables, document.get("operationName"))
        except graphql.GraphQLError as exc:
            return 400, {"errors": [exc.as_dict()]}
        except ValueError as exc:
            error = graphql.GraphQLError(f"Malformed request: {exc}", "MALFORMED_REQUEST", 400)
            return 400, {"errors": [error.as_dict()]}
        entry.update(
            operation=request.name,
            kind=request.operation.kind,
            fields=[_describe(f, request.variables) for f in request.root_fields()],
            variables=_jsonable(request.variables),
        )
        self._local.entry = entry
        try:
            return 200, graphql.execute(SCHEMA, request, self._resolvers, None)
        finally:
            self._local.entry = None


def _read_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The GraphQL document and its variables, from JSON or a multipart upload request."""
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        parts: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            parts[str(name)] = part
        document = json.loads(parts["operations"].get_payload(decode=True))
        variables = dict(document.get("variables") or {})
        for part_name, paths in json.loads(parts["map"].get_payload(decode=True)).items():
            part = parts[part_name]
            upload = Upload(part.get_filename() or "", part.get_content_type(), part.get_payload(decode=True) or b"")
            for path in paths:
                _place(variables, path.removeprefix("variables."), upload)
        return document, variables
    document = json.loads(body or b"{}")
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object with a query")
    return document, dict(document.get("variables") or {})


def _place(variables: dict[str, Any], path: str, upload: Upload) -> None:
    *parents, last = path.split(".")
    target: Any = variables
    for step in parents:
        target = target[int(step)] if isinstance(target, list) else target[step]
    if isinstance(target, list):
        target[int(last)] = upload
    else:
        target[last] = upload


def _describe(selection: graphql.Field, variables: dict[str, Any]) -> dict[str, Any]:
    """A root field as the log keeps it: name, arguments (variables filled in) and the selected paths."""
    return {
        "name": selection.name,
        "arguments": _jsonable(graphql.substitute(selection.arguments, variables)),
        "selection": sorted(_paths(selection.selections or [])),
    }


def _paths(selections: Sequence[graphql.Field | graphql.InlineFragment], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for selection in selections:
        if isinstance(selection, graphql.InlineFragment):
            out |= _paths(selection.selections, prefix)
            continue
        here = f"{prefix}{selection.name}"
        out |= _paths(selection.selections, f"{here}.") if selection.selections else {here}
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Upload):
        return {"upload": value.filename, "size": len(value.body)}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _handler(endpoint: LabelboxEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "bucket-ingest-labelbox-endpoint"
        disable_nagle_algorithm = True  # headers and body go in two writes: don't let delayed ACKs stall them

        def log_message(self, format: str, *args: Any) -> None:  # the request log replaces the access log
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                for name, value in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first (its deadline passed)
                self.close_connection = True

        def _json(self, value: Any, status: int = 200) -> None:
            self._send(status, json.dumps(value, default=str).encode())

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            body = self._body()
            if path in ("/graphql", "/_gql"):
                answer = endpoint.handle_graphql(self.headers, body)
                if answer is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, headers, answer_body = answer
                self._send(status, answer_body, headers)
            elif path == "/_admin/faults":
                try:
                    self._json(asdict(endpoint.set_faults(**json.loads(body or b"{}"))))
                except (ValueError, TypeError) as exc:
                    self._json({"error": str(exc)}, 400)
            elif path == "/_admin/datasets":
                document = json.loads(body or b"{}")
                self._json({"id": endpoint.create_dataset(document.get("name", "dataset"), document.get("id"))})
            else:
                self._json({"error": f"no route POST {path}"}, 404)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            segments = parts.path.split("/")
            if parts.path.startswith("/files/") and len(segments) >= 3:
                found = endpoint.store.file(segments[2])
                if found is None:
                    self._json({"error": "no such file"}, 404)
                else:
                    self._send(200, found[2], {"Content-Type": found[1] or "application/octet-stream"})
            elif parts.path == "/_admin/faults":
                self._json(asdict(endpoint.faults))
            elif parts.path == "/_admin/requests":
                self._json(endpoint.requests())
            elif parts.path == "/_admin/rows":
                dataset = parse_qs(parts.query).get("dataset", [None])[0]
                self._json(endpoint.store.rows(dataset))
            else:
                self._json({"error": f"no route GET {parts.path}"}, HTTPStatus.NOT_FOUND)

        def do_DELETE(self) -> None:
            if urlsplit(self.path).path == "/_admin/requests":
                endpoint.clear_requests()
                self._json({"cleared": True})
            else:
                self._json({"error": "no route"}, 404)

    return Handler
