"""The three functions running as their platforms run them, each in its own process with its own environment.

- ``LambdaRuntime``: Lambda's side of the Runtime API (one small HTTP server per execution environment) and the
  real runtime interface client, ``awslambdaric``, running ``handlers.aws.lambda_handler`` (or any handler, from
  the project or an unpacked package) against it. The handler gets the runtime's own context (request id,
  deadline, ARN, trace header). A crashed or timed-out environment is replaced before the next invocation, as
  Lambda does. https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
- ``cloud_run_function``: ``functions-framework`` serving one entry point (``on_storage_event`` by default) from
  the ``main.py`` Cloud Functions deploys (re-exporting ``handlers/gcp.py``), as Cloud Run runs it.
- ``azure_functions_host``: a stand-in for the Functions host's Event Grid webhook (``azure_host.py``), invoking
  ``function_app.py``'s ``on_blob_event``; the real host cannot be installed here.

Each process gets a clean environment: the caller's PATH and locale, the functions' settings, and the variables
that point the SDKs at the emulators; nothing else from the caller's ``AWS_*``, ``INGEST_*``, ``LABELBOX_*``...
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bucket_ingest.emulators import LOOPBACK, PROJECT_ROOT, EmulatorError, Managed, ManagedProcess, http_answers

# Caller variables a function process may inherit; everything else is left out so that nothing in the user's
# shell (AWS_PROFILE, INGEST_REGISTRY, ...) reaches the functions by accident.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")
RUNTIME_API = "/2018-06-01/runtime"
LAMBDA_HANDLER = "handlers.aws.lambda_handler"
GCP_TARGET = "on_storage_event"


def function_env(*parts: Mapping[str, str]) -> dict[str, str]:
    """A function process's environment: the inherited basics, the project on the import path, then ``parts``."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update({"PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    for part in parts:
        env.update(part)
    return env


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one Lambda invocation gave back: the function's JSON response, or Lambda's error document."""

    request_id: str
    ok: bool
    response: Any = None
    error: Mapping[str, Any] | None = None
    seconds: float = 0.0

    @property
    def error_message(self) -> str:
        if not self.error:
            return ""
        return f"{self.error.get('errorType', 'Error')}: {self.error.get('errorMessage', '')}"


class _RuntimeApi(http.server.ThreadingHTTPServer):
    """One execution environment's Runtime API: hands out the next event, collects its response or error."""

    daemon_threads = True

    def __init__(self, function_arn: str, sampled: bool) -> None:
        super().__init__((LOOPBACK, 0), _RuntimeApiHandler)
        self.function_arn = function_arn
        self.sampled = sampled
        self.events: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
        self.results: dict[str, Future[Invocation]] = {}
        self.asked_next = threading.Event()  # the runtime finished its init and waits for work
        self.init_error: str = ""
        self.closing = False
        self.thread = threading.Thread(target=self.serve_forever, name="lambda-runtime-api", daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime stopped mid-request (its environment was stopped): nothing to report."""

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.server_address[1]}"

    def resolve(self, request_id: str, invocation: Invocation) -> None:
        future = self.results.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(invocation)


class _RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    server: _RuntimeApi
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: without this, 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the function's own output is what matters
        return

    def _answer(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != f"{RUNTIME_API}/invocation/next":
            self._answer(404)
            return
        self.server.asked_next.set()
        while not self.server.closing:
            try:
                request_id, body, deadline_ms = self.server.events.get(timeout=0.5)
            except queue.Empty:
                continue
            root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
            sampled = int(self.server.sampled)
            headers = {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self.server.function_arn,
                "Lambda-Runtime-Trace-Id": f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled={sampled}",
            }
            self._answer(200, body, headers)
            return
        # closing: the runtime process is being stopped; leave its request unanswered

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.removeprefix(f"{RUNTIME_API}/").split("/")
        if parts == ["init", "error"]:
            self.server.init_error = body.decode("utf-8", "replace")
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            try:
                document = json.loads(body) if body else None
            except ValueError:
                document = body.decode("utf-8", "replace")
            if parts[2] == "response":
                self.server.resolve(parts[1], Invocation(parts[1], True, response=document))
            else:
                error = document if isinstance(document, dict) else {"errorMessage": str(document)}
                self.server.resolve(parts[1], Invocation(parts[1], False, error=error))
        else:
            self._answer(404)
            return
        self._answer(202, b'{"status":"OK"}', {"Content-Type": "application/json"})


class _Environment:
    """One Lambda execution environment: a Runtime API server and the awslambdaric process it serves."""

    def __init__(self, runtime: LambdaRuntime, number: int) -> None:
        self.api = _RuntimeApi(runtime.function_arn, runtime.tracing)
        self.api.thread.start()
        env = function_env(
            {"PYTHONPATH": str(runtime.task_root)},  # the handler's code only (the project's, or a package's)
            runtime.env,
            {  # Lambda's reserved variables: they win over the function's own
                "AWS_LAMBDA_RUNTIME_API": self.api.address,
                "AWS_REGION": runtime.region,
                "AWS_DEFAULT_REGION": runtime.region,
                "AWS_LAMBDA_FUNCTION_NAME": runtime.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(runtime.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(runtime.timeout_s),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{runtime.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{number}",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
                "LAMBDA_TASK_ROOT": str(runtime.task_root),
                "_HANDLER": runtime.handler,
            },
        )
        self.process = ManagedProcess(
            f"lambda runtime {number}",
            lambda _: [sys.executable, "-m", "awslambdaric", runtime.handler],
            lambda _: self.api.asked_next.is_set(),
            env=env,
            cwd=runtime.task_root,  # the runtime imports the handler from its working directory, as from /var/task
            on_line=runtime.on_line,
            port=False,
        )

    def ensure_started(self) -> None:
        if not self.process.running():
            self.process.stop()
            self.api.asked_next.clear()
            self.api.init_error = ""
            self.process.start()

    def invoke(self, event: Any, timeout_s: float) -> Invocation:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        future: Future[Invocation] = Future()
        self.api.results[request_id] = future
        deadline_ms = int((time.time() + timeout_s) * 1000)
        self.api.events.put((request_id, json.dumps(event).encode("utf-8"), deadline_ms))
        result = self._wait(request_id, future, started, timeout_s)
        return replace(result, seconds=time.monotonic() - started)

    def _wait(self, request_id: str, future: Future[Invocation], started: float, timeout_s: float) -> Invocation:
        while True:
            try:
                return future.result(timeout=0.1)
            except FutureTimeout:
                pass
            if not self.process.running():
                self.api.results.pop(request_id, None)
                tail = " | ".join(list(self.process.tail)[-5:])
                message = f"Runtime exited: {self.api.init_error or tail}"
                return Invocation(request_id, False, error={"errorType": "Runtime.ExitError", "errorMessage": message})
            if time.monotonic() - started > timeout_s:
                self.api.results.pop(request_id, None)
                self.process.stop()  # Lambda stops the environment of a timed-out invocation
                message = f"Task timed out after {timeout_s:.2f} seconds"
                return Invocation(request_id, False, error={"errorType": "Sandbox.Timedout", "errorMessage": message})

    def stop(self) -> None:
        self.process.stop()
        self.api.closing = True
        self.api.shutdown()
        self.api.server_close()


class LambdaRuntime(Managed):
    """A Lambda function with ``instances`` execution environments; ``invoke`` is synchronous (RequestResponse)
    and thread-safe, taking a free environment (waiting for one when all are busy).

    ``env`` is the function's own variables; Lambda's reserved ones (region, function name, ...) are set from the
    other arguments. ``task_root`` is where the handler is imported from (an unpacked package, or the project);
    ``tracing`` is active X-Ray tracing (sampled trace headers). Every output line of the function (its log
    records and metrics) goes to ``on_line``.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        handler: str = LAMBDA_HANDLER,
        function_name: str = "bucket-ingest",
        instances: int = 1,
        timeout_s: int = 60,
        memory_mb: int = 256,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        task_root: Path = PROJECT_ROOT,
        tracing: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.env = dict(env)
        self.handler = handler
        self.function_name = function_name
        self.function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.instances = instances
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.region = region
        self.task_root = task_root
        self.tracing = tracing
        self.on_line = on_line
        self._environments: list[_Environment] = []
        self._idle: queue.Queue[_Environment] = queue.Queue()

    def __repr__(self) -> str:
        return f"LambdaRuntime({self.handler!r}, instances={self.instances})"

    def start(self) -> None:
        for number in range(1, self.instances + 1):
            environment = _Environment(self, number)
            self._environments.append(environment)
            environment.ensure_started()
            self._idle.put(environment)

    def stop(self) -> None:
        for environment in self._environments:
            environment.stop()
        self._environments = []

    @property
    def pids(self) -> list[int]:
        """The process ids of the running execution environments."""
        return [pid for environment in self._environments if (pid := environment.process.pid) is not None]

    def invoke(self, event: Any, *, timeout_s: float | None = None) -> Invocation:
        """Run one invocation; ``timeout_s`` is its time limit instead of the function's timeout."""
        environment = self._idle.get()
        try:
            try:
                # A new environment after a crash or a time-out (a cold start), started from the caller's thread:
                # the event source mapping's pollers, which live until the pipeline stops.
                environment.ensure_started()
            except EmulatorError as exc:
                error = {"errorType": "Runtime.InitError", "errorMessage": str(exc)}
                return Invocation(str(uuid.uuid4()), False, error=error)
            return environment.invoke(event, self.timeout_s if timeout_s is None else timeout_s)
        finally:
            self._idle.put(environment)


def cloud_run_function(
    source_dir: Path,
    env: Mapping[str, str],
    *,
    target: str = GCP_TARGET,
    on_line: Callable[[str], None] | None = None,
) -> ManagedProcess:
    """functions-framework serving ``target`` of the Cloud Functions ``main.py`` (written into ``source_dir``) on
    a free port; POST its requests (CloudEvents, or Pub/Sub pushes for ``on_pubsub_push``) to
    ``http://127.0.0.1:<port>/``."""
    from bucket_ingest.commands.invoke import GCP_SIGNATURE_TYPES, write_gcp_source

    source = write_gcp_source(source_dir)
    return ManagedProcess(
        f"functions-framework {target}",
        lambda port: [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            target,
            "--source",
            str(source),
            "--signature-type",
            GCP_SIGNATURE_TYPES[target],
            "--host",
            LOOPBACK,
            "--port",
            str(port),
        ],
        lambda port: http_answers(f"http://{LOOPBACK}:{port}/"),
        env=function_env(env, {"K_SERVICE": "bucket-ingest", "FUNCTION_TARGET": target}),
        cwd=PROJECT_ROOT,
        on_line=on_line,
    )


def azure_functions_host(env: Mapping[str, str], *, on_line: Callable[[str], None] | None = None) -> ManagedProcess:
    """The Functions host stand-in serving ``function_app.py`` on a free port (``azure_host.py``)."""
    return ManagedProcess(
        "azure functions host",
        lambda port: [sys.executable, "-m", "bucket_ingest.pipeline.azure_host", "--port", str(port)],
        lambda port: http_answers(f"http://{LOOPBACK}:{port}/admin/host/status"),
        env=function_env(env, {"AzureWebJobsScriptRoot": str(PROJECT_ROOT), "FUNCTIONS_WORKER_RUNTIME": "python"}),
        cwd=PROJECT_ROOT,
        on_line=on_line,
    )
