"""`bucket-ingest invoke`: each cloud's function run on an event file the way its platform would, as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import fixtures
from tests.support.handlers import PROJECT_ROOT, Catalog, blob_event, gcs_object, json_lines, push_envelope


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(tmp_path / "rows")
    yield catalog
    catalog.close()


def invoke(
    cloud: str, event: str | Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in a fresh process with nothing of this test's environment but PATH and ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "bucket_ingest.cli", "invoke", "--cloud", cloud, str(event), *extra],
        check=False,
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def event_file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_aws_prints_the_lambda_response_on_stdout_and_the_logs_on_stderr(catalog: Catalog) -> None:
    done = invoke("aws", fixtures.EVENTS / "aws-sqs-s3-put.json", "--registry", catalog.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"batchItemFailures": []}
    assert catalog.external_ids() == ["aws:xxx/test.pdf"]
    outcome = next(r for r in json_lines(done.stderr) if r.get("message") == "object outcome")
    assert outcome["function_name"] == "bucket-ingest" and outcome["outcome"] == "created"


def test_aws_reports_a_raised_error_as_lambda_does(catalog: Catalog) -> None:
    done = invoke("aws", fixtures.EVENTS / "aws-s3-put.json", "--registry", catalog.url, env={"INGEST_MAX_SIZE": "x"})
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] == "SettingsError"
    assert "INGEST_MAX_SIZE: 'x' is not a size" in error["errorMessage"]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("gcp-cloudevent-finalized-structured.json", 200),
        ("gcp-legacy-background-finalize.json", 200),  # functions-framework converts the legacy event
        ("gcp-storageobjectdata-binary-body.json", 400),  # no ce-* headers: not a CloudEvent
    ],
)
def test_gcp_posts_the_event_to_functions_framework(name: str, status: int, catalog: Catalog) -> None:
    done = invoke("gcp", fixtures.EVENTS / name, "--registry", catalog.url)
    response = json.loads(done.stdout)
    assert (response["entry"], response["status"]) == ("on_storage_event", status)
    assert done.returncode == (0 if status == 200 else 1)
    if status == 200:
        assert response["body"] == "OK"
        assert catalog.external_ids() == ["gcp:some-bucket/folder/Test.cs"]
    else:
        assert "parsing CloudEvent failed" in response["body"]
        assert catalog.rows() == []


def test_gcp_sends_pubsub_messages_to_the_push_entry_point(catalog: Catalog, tmp_path: Path) -> None:
    envelope = push_envelope(gcs_object("pushed.jpg"))
    done = invoke("gcp", event_file(tmp_path, envelope), "--registry", catalog.url)
    assert json.loads(done.stdout) == {
        "entry": "on_pubsub_push",
        "status": 200,
        "body": {"deliveries": 1, "redeliver": [], "outcomes": {"created": 1}},
    }
    bare_message = push_envelope(gcs_object("bare.jpg"))["message"]  # as pulled: wrapped in a push envelope
    done = invoke("gcp", event_file(tmp_path, bare_message), "--registry", catalog.url)
    assert json.loads(done.stdout)["body"]["outcomes"] == {"created": 1}
    assert catalog.external_ids() == ["gcp:ingest-bucket/bare.jpg", "gcp:ingest-bucket/pushed.jpg"]


def test_azure_invokes_the_indexed_function_once_per_event(catalog: Catalog, tmp_path: Path) -> None:
    document = [
        blob_event("a.jpg", event_id="1"),
        "not an event",
        blob_event("b.jpg", event_id="2", schema="cloudevents"),
    ]
    done = invoke("azure", event_file(tmp_path, document), "--registry", catalog.url)
    assert done.returncode == 1  # one invocation failed
    results = json.loads(done.stdout)["invocations"]
    assert results[0] == {"id": "1", "result": "ok"} and results[2] == {"id": "2", "result": "ok"}
    assert results[1]["error"].startswith("the trigger binding refused the event")
    assert catalog.external_ids() == ["azure:acct/ingest/a.jpg", "azure:acct/ingest/b.jpg"]
    assert any('"message": "object outcome"' in line for line in done.stderr.splitlines())


def test_azure_takes_a_single_event_too(catalog: Catalog) -> None:
    done = invoke("azure", fixtures.EVENTS / "azure-eventgrid-blobcreated-sdk-sample.json", "--registry", catalog.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"invocations": [{"id": "831e1650-001e-001b-66ab-eeb76e069631", "result": "ok"}]}


def test_an_unreadable_event_file_is_a_clear_message(tmp_path: Path) -> None:
    missing = invoke("aws", tmp_path / "nope.json")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.strip() == f"bucket-ingest invoke: {tmp_path / 'nope.json'}: no such file"
    bad = tmp_path / "bad.json"
    bad.write_text('{"Records": [', encoding="utf-8")
    malformed = invoke("gcp", bad)
    assert malformed.returncode == 2
    assert "not JSON (Expecting value at line 1 column 14)" in malformed.stderr
