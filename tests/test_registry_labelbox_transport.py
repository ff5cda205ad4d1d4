"""The deadline-aware HTTP transport under the Labelbox client (what it retries, how long it waits, when it stops),
and how the client reads Labelbox's error answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.deadline import Deadline
from shared.registries.labelbox import LabelboxApi, LabelboxError
from shared.secrets import Secret
from shared.transport import Backoff, TransportError, request


class Scripted:
    """A loopback server answering from a script: (status, headers, body), "drop", or ("slow", seconds)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.arrivals: list[float] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scripted.arrivals.append(time.monotonic())
                step = scripted.script.pop(0) if scripted.script else (200, {}, b"ok")
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(step, tuple) and step[0] == "slow":
                    time.sleep(step[1])
                    step = (200, {}, b"late")
                status, headers, body = step
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its deadline passed)
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/graphql"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Scripted] = []

    def start(*script: Any) -> Scripted:
        servers.append(Scripted(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


FAST = Backoff(base=0.01, cap=0.05)


def test_5xx_and_dropped_connections_are_retried(serve: Any) -> None:
    server = serve((503, {}, b"busy"), "drop", (502, {}, b"bad gateway"), (200, {}, b"done"))
    answer = request("POST", server.url, Deadline(5), body=b"{}", backoff=FAST)
    assert (answer.status, answer.body) == (200, b"done")
    assert len(server.arrivals) == 4


def test_429_waits_as_long_as_retry_after_says(serve: Any) -> None:
    server = serve((429, {"Retry-After": "1"}, b""), (200, {}, b"done"))
    answer = request("POST", server.url, Deadline(5), body=b"{}", backoff=FAST)
    assert answer.status == 200
    assert server.arrivals[1] - server.arrivals[0] >= 0.95


def test_429_without_retry_after_backs_off(serve: Any) -> None:
    server = serve((429, {}, b""), (429, {}, b""), (200, {}, b"done"))
    assert request("POST", server.url, Deadline(5), body=b"{}", backoff=FAST).status == 200
    assert len(server.arrivals) == 3


def test_a_retry_after_past_the_deadline_gives_up_at_once(serve: Any) -> None:
    server = serve((429, {"Retry-After": "60"}, b""))
    started = time.monotonic()
    with pytest.raises(TransportError, match="HTTP 429") as failure:
        request("POST", server.url, Deadline(3), body=b"{}", backoff=FAST)
    assert failure.value.throttled
    assert time.monotonic() - started < 0.5


def test_client_errors_come_back_without_retries(serve: Any) -> None:
    server = serve((400, {}, b"bad"), (200, {}, b"never"))
    assert request("POST", server.url, Deadline(5), body=b"{}", backoff=FAST).status == 400
    assert len(server.arrivals) == 1


def test_a_slow_answer_cannot_outlive_the_deadline(serve: Any) -> None:
    server = serve(("slow", 3.0))
    started = time.monotonic()
    with pytest.raises(TransportError, match="deadline"):
        request("POST", server.url, Deadline(0.5), body=b"{}", backoff=FAST)
    assert time.monotonic() - started < 0.75
    assert len(server.arrivals) == 1


def test_outage_until_the_deadline_ends_in_a_transport_error(serve: Any) -> None:
    server = serve(*[(503, {}, b"busy")] * 1000)
    started = time.monotonic()
    with pytest.raises(TransportError, match="HTTP 503"):
        request("POST", server.url, Deadline(1.0), body=b"{}", backoff=Backoff(base=0.05, cap=0.2))
    elapsed = time.monotonic() - started
    assert elapsed < 1.1
    assert len(server.arrivals) > 3  # kept trying while time allowed


def test_nobody_listening_is_retried_then_reported(serve: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match="ConnectionRefusedError"):
        request("POST", f"http://127.0.0.1:{port}/graphql", Deadline(0.5), body=b"{}", backoff=FAST)


def test_connections_are_kept_alive(serve: Any) -> None:
    server = serve()
    ports = set()
    original = socket.socket.connect

    def spy(self: socket.socket, address: Any) -> Any:
        ports.add(address)
        return original(self, address)

    socket.socket.connect = spy  # type: ignore[method-assign]
    try:
        for _ in range(5):
            request("POST", server.url, Deadline(5), body=b"{}")
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]
    assert len(server.arrivals) == 5
    assert len(ports) <= 1  # one connection (or none new, when an earlier test left one open)


def test_messages_never_carry_headers(serve: Any) -> None:
    server = serve(*[(503, {}, b"busy")] * 100)
    with pytest.raises(TransportError) as failure:
        request(
            "POST",
            server.url + "?token=query-secret",
            Deadline(0.3),
            body=b"{}",
            headers={"Authorization": "Bearer header-secret"},
            backoff=FAST,
        )
    assert "header-secret" not in str(failure.value) and "query-secret" not in str(failure.value)


def _graphql(document: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


def test_the_api_retries_errors_labelbox_reports_as_passing(serve: Any) -> None:
    internal = {
        "errors": [{"message": "boom", "extensions": {"code": "INTERNAL_SERVER_ERROR", "exception": {"status": 503}}}]
    }
    server = serve(
        _graphql(internal),
        _graphql({"message": "You have exceeded the API limit"}),
        _graphql({"data": {"user": {"id": "u1"}}}),
    )
    api = LabelboxApi(server.url, Secret("k"), None)
    assert api.execute("query Q {user {id}}", {}, Deadline(10)) == {"user": {"id": "u1"}}
    assert len(server.arrivals) == 3


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            _graphql(
                {"errors": [{"message": "Cannot query field", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]},
                400,
            ),
            "upgrade bucket-ingest",
        ),
        (_graphql({"errors": [{"message": "no", "extensions": {"code": "AUTHORIZATION_ERROR"}}]}), "give it a role"),
        (
            _graphql(
                {
                    "errors": [
                        {
                            "message": "LBU",
                            "extensions": {"code": "INTERNAL_SERVER_ERROR", "exception": {"status": 426}},
                        }
                    ]
                }
            ),
            "usage limit",
        ),
        (_graphql({"message": "Unauthorized"}, 401), "refused the API key"),
        ((200, {}, b"<html>maintenance</html>"), "something other than a JSON object"),
    ],
)
def test_the_api_does_not_retry_refusals(serve: Any, answer: Any, message: str) -> None:
    server = serve(answer, _graphql({"data": {}}))
    with pytest.raises(LabelboxError, match=message):
        LabelboxApi(server.url, Secret("k"), None).execute("query Q {user {id}}", {}, Deadline(10))
    assert len(server.arrivals) == 1
