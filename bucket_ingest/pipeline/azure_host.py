"""A stand-in for the Azure Functions host's Event Grid webhook, serving ``function_app.py`` (the real host is
.NET and cannot be installed here).

``python -m bucket_ingest.pipeline.azure_host --port P`` indexes ``function_app.app`` at start-up (an import
error stops it, as it stops the host), then serves what Event Grid calls on a function app:

- ``POST /runtime/webhooks/eventgrid?functionName=NAME`` with ``aeg-event-type: Notification`` and a JSON array
  of events in the Event Grid schema: each event is bound by azure.functions' own Event Grid converter and the
  function is invoked once per event; 200 when every invocation returned, 500 (with the error) otherwise, which
  Event Grid retries. https://learn.microsoft.com/azure/azure-functions/functions-bindings-event-grid-trigger
- ``GET /admin/host/status``: ``{"state": "Running"}`` once the app is indexed.

The function's ``logging`` records are written to stdout, one message per line, as the host shows them.
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bucket_ingest.emulators import LOOPBACK

WEBHOOK = "/runtime/webhooks/eventgrid"


class _Host(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, functions: dict[str, Callable[..., Any]]) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.functions = functions


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Host
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: without this, 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, document: Any) -> None:
        body = json.dumps(document).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/admin/host/status":
            self._answer(200, {"state": "Running", "functions": sorted(self.server.functions)})
        else:
            self._answer(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        from bucket_ingest.commands.invoke import event_grid_binding

        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        name = (parse_qs(url.query).get("functionName") or [""])[0]
        if url.path != WEBHOOK or name not in self.server.functions:
            self._answer(404, {"error": f"no Event Grid function {name!r} at {url.path}"})
            return
        if self.headers.get("aeg-event-type") != "Notification":
            self._answer(400, {"error": "only aeg-event-type: Notification deliveries are served here"})
            return
        try:
            events = json.loads(body)
        except ValueError as exc:
            self._answer(400, {"error": f"the body is not JSON: {exc}"})
            return
        errors = []
        for event in events if isinstance(events, list) else [events]:
            try:
                self.server.functions[name](event_grid_binding(event))
            except Exception as exc:  # the invocation failed: Event Grid will retry the event
                errors.append(f"{type(exc).__name__}: {exc}")
        if errors:
            self._answer(500, {"error": "; ".join(errors)})
        else:
            self._answer(200, {"invocations": len(events) if isinstance(events, list) else 1})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bucket_ingest.pipeline.azure_host", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)

    from bucket_ingest.commands.invoke import indexed_functions

    functions = {name: function.get_user_function() for name, function in indexed_functions().items()}
    host = _Host(args.port, functions)
    print(f"Azure Functions host stand-in: {sorted(functions)} on http://{LOOPBACK}:{args.port}", flush=True)
    try:
        host.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        host.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
