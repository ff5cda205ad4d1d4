"""A recording HTTP endpoint for the push-delivery tests: keeps every request, answers from a script."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Recorder:
    """Serves on a free loopback port; ``answer(request_number)`` gives each request's status (1-based)."""

    def __init__(self, answer: Callable[[int], int] = lambda n: 200) -> None:
        self.requests: list[Request] = []
        self.answer = answer
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._lock:
                    recorder.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = recorder.answer(len(recorder.requests))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(name="recorder")
def recorder_fixture() -> Iterator[Recorder]:
    """Answers 503 to the first request and 200 to every other one."""
    recorder = Recorder(lambda n: 503 if n == 1 else 200)
    recorder.start()
    yield recorder
    recorder.stop()
