"""The functions' processes in the local pipeline: Lambda execution environments under the real runtime client
(context, errors, crashes, time-outs, cold starts, concurrency) and the Azure Functions host stand-in."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.emulators import PROJECT_ROOT, EmulatorError, ManagedProcess
from bucket_ingest.pipeline.functions import LambdaRuntime, azure_functions_host, function_env
from tests.support.handlers import blob_event, http_post

PROBE = """
import os, time

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    if event.get("raise"):
        raise ValueError(event["raise"])
    return {
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "name": context.function_name,
        "setting": os.environ.get("INGEST_REGISTRY"),
        "caller_only": os.environ.get("ONLY_IN_THE_CALLER"),
    }
"""


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE), encoding="utf-8")
    return tmp_path


@pytest.fixture
def runtime(probe_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaRuntime]:
    monkeypatch.setenv("ONLY_IN_THE_CALLER", "leaked")
    env = {"PYTHONPATH": f"{probe_dir}:{PROJECT_ROOT}", "INGEST_REGISTRY": "sqlite:///x.sqlite"}
    with LambdaRuntime(env, handler="probe.handler", timeout_s=3, instances=2) as runtime:
        yield runtime


def test_the_handler_gets_the_runtimes_context_and_only_its_own_environment(runtime: LambdaRuntime) -> None:
    result = runtime.invoke({})
    assert result.ok, result.error
    response = result.response
    assert response["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:bucket-ingest"
    assert response["name"] == "bucket-ingest" and response["request_id"] == result.request_id
    assert 2000 < response["remaining_ms"] <= 3000
    assert response["setting"] == "sqlite:///x.sqlite"
    assert response["caller_only"] is None


def test_an_exception_comes_back_as_lambdas_error_document(runtime: LambdaRuntime) -> None:
    result = runtime.invoke({"raise": "boom"})
    assert not result.ok
    assert result.error is not None and result.error["errorType"] == "ValueError"
    assert result.error_message == "ValueError: boom"
    assert runtime.invoke({}).ok  # the environment lives on


def test_a_crash_or_a_time_out_ends_the_environment_and_the_next_invocation_starts_a_new_one(
    probe_dir: Path,
) -> None:
    env = {"PYTHONPATH": f"{probe_dir}:{PROJECT_ROOT}"}
    with LambdaRuntime(env, handler="probe.handler", timeout_s=1, instances=1) as runtime:
        first = runtime.invoke({}).response["pid"]
        crashed = runtime.invoke({"crash": True})
        assert not crashed.ok and crashed.error is not None
        assert crashed.error["errorType"] == "Runtime.ExitError"
        second = runtime.invoke({}).response["pid"]
        timed_out = runtime.invoke({"sleep": 5})
        assert timed_out.error is not None and timed_out.error["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in timed_out.error_message
        assert 1.0 <= timed_out.seconds < 3.0
        third = runtime.invoke({}).response["pid"]
    assert len({first, second, third}) == 3


def test_an_import_error_fails_the_invocation_with_the_runtimes_message(probe_dir: Path) -> None:
    env = {"PYTHONPATH": f"{probe_dir}:{PROJECT_ROOT}"}
    runtime = LambdaRuntime(env, handler="no_such_module.handler", timeout_s=2)
    with pytest.raises(EmulatorError, match="no_such_module"):
        runtime.start()  # Lambda's init phase fails: the environment never asks for work
    runtime.stop()


def test_environments_run_side_by_side(runtime: LambdaRuntime) -> None:
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(runtime.invoke({"sleep": 1.5}))) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 2.8  # one after the other would take 3 s
    assert len({r.response["pid"] for r in results}) == 2


def test_function_env_keeps_the_callers_settings_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_REGISTRY", "labelbox://from-the-shell")
    monkeypatch.setenv("AWS_PROFILE", "production")
    env = function_env({"INGEST_DELETE_POLICY": "tag"})
    assert "INGEST_REGISTRY" not in env and "AWS_PROFILE" not in env
    assert env["INGEST_DELETE_POLICY"] == "tag" and env["PYTHONPATH"] == str(PROJECT_ROOT)


def post_events(host: ManagedProcess, events: Any, function: str = "on_blob_event") -> tuple[int, Any]:
    url = f"http://127.0.0.1:{host.port}/runtime/webhooks/eventgrid?functionName={function}"
    headers = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
    status, body = http_post(url, json.dumps(events).encode(), headers)
    return status, json.loads(body)


def test_the_azure_host_invokes_the_function_per_event_and_answers_500_when_it_raises(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.sqlite"
    lines: list[str] = []
    with azure_functions_host({"INGEST_REGISTRY": f"sqlite:///{catalog}"}, on_line=lines.append) as host:
        created = [blob_event(name, container="ctr") for name in ("a.png", "b c.png")]
        assert post_events(host, created) == (200, {"invocations": 2})
        assert post_events(host, [blob_event("x.png", container="ctr")], function="nope")[0] == 404
    with azure_functions_host({"INGEST_REGISTRY": "labelbox://ds", "LABELBOX_API_KEY": ""}) as host:
        status, body = post_events(host, [blob_event("a.png", container="ctr")])
    assert status == 500 and "LABELBOX_API_KEY_SECRET" in body["error"]
    outcomes = [json.loads(line) for line in lines if '"object outcome"' in line]
    assert sorted(o["object"] for o in outcomes) == ["azure://acct/ctr/a.png", "azure://acct/ctr/b c.png"]
    assert {o["outcome"] for o in outcomes} == {"created"}
