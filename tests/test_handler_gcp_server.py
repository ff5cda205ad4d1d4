"""The Google Cloud function in real ``functions-framework`` server processes (gunicorn, as Cloud Run runs it),
one per entry point (``bucket_ingest.pipeline.functions.cloud_run_function``), reached over HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from bucket_ingest.emulators import LOOPBACK, ManagedProcess
from bucket_ingest.pipeline.functions import cloud_run_function
from tests.support.handlers import (
    Catalog,
    cloud_event_http,
    gcs_object,
    http_post,
    json_lines,
    outcome_lines,
    push_envelope,
    storage_cloud_event,
    wait_for,
)


class Server(NamedTuple):
    """One entry point's functions-framework process and the lines it wrote."""

    process: ManagedProcess
    lines: list[str]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.process.port}/"

    def records(self) -> list[dict[str, Any]]:
        return json_lines(self.lines)


def serve(source: Path, env: dict[str, str], target: str) -> Server:
    lines: list[str] = []
    return Server(cloud_run_function(source, env, target=target, on_line=lines.append), lines)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    catalog = Catalog(tmp_path_factory.mktemp("catalog"))
    yield catalog
    catalog.close()


@pytest.fixture(scope="module")
def servers(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    env = {"INGEST_REGISTRY": catalog.url, "INGEST_TIMEOUT_SECONDS": "1"}
    source = tmp_path_factory.mktemp("gcp-source")
    events, pushes = serve(source, env, "on_storage_event"), serve(source, env, "on_pubsub_push")
    with events.process, pushes.process:
        yield {"on_storage_event": events, "on_pubsub_push": pushes}


def send_event(server: Server, event: dict[str, Any], mode: str) -> tuple[int, bytes]:
    headers, body = cloud_event_http(event, mode)
    return http_post(server.url, body, headers)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_the_server_registers_a_cloud_event_in_either_mode(
    mode: str, servers: dict[str, Server], catalog: Catalog
) -> None:
    key = f"server/{mode}/photo 1.jpg"
    status, body = send_event(servers["on_storage_event"], storage_cloud_event(gcs_object(key), event_id=mode), mode)
    assert (status, body) == (200, b"OK")
    assert f"gcp:ingest-bucket/{key}" in catalog.external_ids()
    server = servers["on_storage_event"]
    assert wait_for(lambda: any(line["delivery"] == mode for line in outcome_lines(server.records())))


def test_the_server_answers_400_to_a_request_that_is_not_a_cloud_event(
    servers: dict[str, Server], catalog: Catalog
) -> None:
    status, body = http_post(
        servers["on_storage_event"].url,
        json.dumps(gcs_object("plain.jpg")).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 400
    assert b"parsing CloudEvent failed" in body
    assert "gcp:ingest-bucket/plain.jpg" not in catalog.external_ids()


def test_the_server_answers_500_when_the_event_must_be_retried(servers: dict[str, Server], catalog: Catalog) -> None:
    event = storage_cloud_event(gcs_object("server/retry.jpg"), event_id="retry-1")
    with catalog.locked():
        status, _ = send_event(servers["on_storage_event"], event, "binary")
    assert status == 500
    server = servers["on_storage_event"]
    assert wait_for(lambda: any("RedeliveryRequested" in line for line in server.lines))
    failed = [line for line in outcome_lines(server.records()) if line["delivery"] == "retry-1"]
    assert failed and failed[0]["outcome"] == "failed" and failed[0]["retryable"] is True
    assert send_event(server, event, "binary")[0] == 200
    assert "gcp:ingest-bucket/server/retry.jpg" in catalog.external_ids()


def test_the_push_server_acknowledges_registered_and_unreadable_messages(
    servers: dict[str, Server], catalog: Catalog
) -> None:
    url = servers["on_pubsub_push"].url
    headers = {"Content-Type": "application/json"}
    status, body = http_post(url, json.dumps(push_envelope(gcs_object("server/pushed.jpg"))).encode(), headers)
    assert status == 200 and json.loads(body)["outcomes"] == {"created": 1}
    status, body = http_post(url, b"{not json", headers)
    assert status == 200 and json.loads(body)["outcomes"] == {"skipped:unsupported_event": 1}
    with catalog.locked():
        status, body = http_post(
            url, json.dumps(push_envelope(gcs_object("server/later.jpg"), message_id="7")).encode(), headers
        )
    assert status == 503 and json.loads(body)["redeliver"] == ["7"]
    assert "gcp:ingest-bucket/server/pushed.jpg" in catalog.external_ids()
    assert "gcp:ingest-bucket/server/later.jpg" not in catalog.external_ids()


def test_the_server_processes_are_gone_after_the_tests(tmp_path: Path, catalog: Catalog) -> None:
    with cloud_run_function(tmp_path, {"INGEST_REGISTRY": catalog.url}) as server:
        pid = server.pid
        assert pid is not None and server.running()
    assert not server.running()
    assert not Path(f"/proc/{pid}").exists()
