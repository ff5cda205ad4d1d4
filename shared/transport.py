"""HTTP within a deadline: a request retried through throttling and outages, never outliving the caller's deadline.

- HTTP 429 waits as long as ``Retry-After`` says (RFC 9110 §10.2.3; Labelbox answers throttled calls with it:
  https://docs.labelbox.com/docs/limits), or backs off when it is absent.
- HTTP 5xx, timeouts and dropped connections back off exponentially with full jitter, capped
  (https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/).
- Any other status goes back to the caller, which knows what it means for its API.

Every socket operation gets the deadline's remaining time as its timeout, and no wait starts that the deadline
cannot cover, so a call returns or raises ``TransportError`` by the deadline. Connections are kept alive per
origin and thread, so a warm function instance reuses its TLS session.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from shared.deadline import Deadline

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0  # per attempt, as the Labelbox SDK's requests (lbox request_client.py)
_READ_SIZE = 1 << 16


class TransportError(Exception):
    """No usable answer before the deadline: throttled, unreachable or failing server. Worth trying later."""

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff: attempt n waits a random time up to min(cap, base * 2**n)."""

    base: float = 0.1
    cap: float = 4.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0.0, min(self.cap, self.base * 2**attempt))  # noqa: S311 (jitter, not crypto)


DEFAULT_BACKOFF = Backoff()


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    deadline: Deadline,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> Response:
    """Send one request, retrying 429, 5xx and network failures until an answer or the deadline.

    Raises ``TransportError`` when the deadline leaves no time for another attempt or wait; the message names
    the host and the last problem, never the headers (they may carry credentials).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {_safe(url)}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    where = _safe(url)
    attempt = 0
    while True:
        problem, wait, throttled = "", 0.0, False
        try:
            response = _send(parts.scheme, parts.netloc, method, target, body, dict(headers or {}), deadline, timeout)
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
            wait = backoff.delay(attempt)
        else:
            if response.status == 429:
                throttled = True
                problem = "HTTP 429 Too Many Requests"
                retry_after = _retry_after(response.headers.get("retry-after"))
                wait = backoff.delay(attempt) if retry_after is None else retry_after
            elif 500 <= response.status < 600:
                problem = f"HTTP {response.status}"
                wait = backoff.delay(attempt)
            else:
                return response
        attempt += 1
        if deadline.expired() or wait >= deadline.remaining():
            left = deadline.remaining()
            raise TransportError(
                f"{method} {where}: {problem}; no time left to retry before the deadline "
                f"(attempt {attempt}, would wait {wait:.2f}s, {left:.2f}s left)",
                throttled=throttled,
            )
        logger.warning("%s %s: %s; retrying in %.2fs (attempt %d)", method, where, problem, wait, attempt)
        time.sleep(wait)


def _send(
    scheme: str,
    netloc: str,
    method: str,
    target: str,
    body: bytes | None,
    headers: dict[str, str],
    deadline: Deadline,
    timeout: float,
) -> Response:
    connection = _connection(scheme, netloc, min(timeout, deadline.remaining()))
    try:
        _arm(connection, deadline, timeout)
        connection.request(method, target, body=body, headers=headers)
        _arm(connection, deadline, timeout)
        answer = connection.getresponse()
        chunks = []
        while True:
            _arm(connection, deadline, timeout)
            chunk = answer.read(_READ_SIZE)
            if not chunk:
                break
            chunks.append(chunk)
        if answer.will_close:
            _drop(scheme, netloc)
        headers = {name.lower(): value for name, value in answer.headers.items()}
        return Response(answer.status, headers, b"".join(chunks))
    except BaseException:
        _drop(scheme, netloc)
        raise


def _arm(connection: http.client.HTTPConnection, deadline: Deadline, timeout: float) -> None:
    """Give the next socket operation only the time the deadline has left."""
    left = min(timeout, deadline.remaining())
    if left <= 0:
        raise TimeoutError("the deadline passed")
    connection.timeout = left
    if connection.sock is not None:
        connection.sock.settimeout(left)


_pool = threading.local()


def _connection(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    connections: dict[tuple[str, str], http.client.HTTPConnection] = _pool.__dict__.setdefault("connections", {})
    connection = connections.get((scheme, netloc))
    if connection is None:
        if scheme == "https":
            connection = http.client.HTTPSConnection(netloc, timeout=timeout, context=_tls_context())
        else:
            connection = http.client.HTTPConnection(netloc, timeout=timeout)
        connections[(scheme, netloc)] = connection
    return connection


def _drop(scheme: str, netloc: str) -> None:
    connection = _pool.__dict__.get("connections", {}).pop((scheme, netloc), None)
    if connection is not None:
        connection.close()


_tls: Any = None


def _tls_context() -> Any:
    global _tls  # noqa: PLW0603 (one TLS context per warm instance)
    if _tls is None:
        import ssl

        _tls = ssl.create_default_context()
    return _tls


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _safe(url: str) -> str:
    """A URL without its query string or user info, fit for a message."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
