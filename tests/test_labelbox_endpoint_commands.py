"""`bucket-ingest labelbox-endpoint`, `bucket-ingest rows` and `bucket-ingest doctor`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bucket_ingest.cli import main
from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, LabelboxEndpoint
from shared.deadline import Deadline
from shared.registries.sqlite import SqliteCatalog
from shared.settings import VARIABLES
from tests.support.labelbox import (  # noqa: F401 (fixtures)
    API_KEY,
    dataset_id_fixture,
    labelbox_endpoint_fixture,
    labelbox_settings,
    payloads,
    registry,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def labelbox_env(monkeypatch: pytest.MonkeyPatch, labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> str:
    for name, value in labelbox_settings(labelbox_endpoint, dataset_id).items():
        monkeypatch.setenv(name, value)
    return dataset_id


def test_the_endpoint_command_serves_until_interrupted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    process = subprocess.Popen(
        [sys.executable, "-m", "bucket_ingest.cli", "labelbox-endpoint", "--db", str(tmp_path / "e.sqlite")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/graphql")
        query = urllib.request.Request(
            url,
            data=b'{"query": "{dataset(where: {id: \\"local-dataset\\"}) {id signer {valid}}}"}',
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(query, timeout=5) as answer:
            assert json.loads(answer.read())["data"]["dataset"] == {"id": "local-dataset", "signer": {"valid": True}}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "e.sqlite").exists()


def test_rows_lists_the_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    catalog = SqliteCatalog.from_url(url)
    items = payloads(2, "ds")
    catalog.register(items, Deadline(5))
    catalog.mark_deleted([items[1].global_key], Deadline(5))
    assert main(["rows", "--registry", url]) == 0
    table = capsys.readouterr().out
    assert items[0].global_key in table and f"{items[1].global_key} [tagged deleted]" in table
    assert table.rstrip().endswith("2 rows")
    assert main(["rows", "--registry", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [p.as_dict() for p in items]


def test_rows_says_when_there_is_no_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rows", "--registry", f"sqlite:///{tmp_path / 'none.sqlite'}"]) == 2
    assert "nothing registered yet" in capsys.readouterr().err


def test_rows_lists_a_labelbox_dataset(
    labelbox_env: str,
    labelbox_endpoint: LabelboxEndpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size_id = labelbox_endpoint.store.upsert_schema("object size", "CustomMetadataNumber")["id"]
    monkeypatch.setenv("INGEST_METADATA_SCHEMAS", f"size={size_id}")
    registry(labelbox_endpoint, metadata_schemas={"size": size_id}).register(payloads(3, labelbox_env), Deadline(10))
    assert main(["rows", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["global_key"] for r in listed) == sorted(p.global_key for p in payloads(3, labelbox_env))
    assert all(r["metadata"] == {"size": 1234} and r["dataset_id"] == labelbox_env for r in listed)


def test_rows_pages_through_a_big_dataset(
    labelbox_env: str, labelbox_endpoint: LabelboxEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    registry(labelbox_endpoint).register(payloads(1_201, labelbox_env), Deadline(30))
    assert main(["rows", "--json"]) == 0
    assert len({r["global_key"] for r in json.loads(capsys.readouterr().out)}) == 1_201


def test_doctor_passes_a_good_configuration(labelbox_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "ok    API key accepted" in out and "validateDataset passes" in out and "all checks passed" in out
    assert "https://my-bucket.s3.us-east-1.amazonaws.com/photos/2024/cat%201.jpg" in out
    assert "gs://my-bucket/photos/2024/cat 1.jpg" in out
    assert "https://myaccount.blob.core.windows.net/container/photos/2024/cat%201.jpg" in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"LABELBOX_API_KEY": "wrong-key-31337"}, "refused the API key"),
        ({"INGEST_REGISTRY": "labelbox://cnosuchdataset000000000000"}, "not found (or not visible to this key)"),
        ({"INGEST_ROUTES": "other/**=cnosuchdataset000000000001"}, "dataset cnosuchdataset000000000001: not found"),
        ({"INGEST_METADATA_SCHEMAS": "size=cnosuchschema000000000000"}, "is not a metadata field"),
    ],
)
def test_doctor_names_what_is_wrong(
    labelbox_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    expected: str,
) -> None:
    for name, value in change.items():
        monkeypatch.setenv(name, value)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert expected in out and "1 problem found" in out
    assert "wrong-key-31337" not in out


def test_doctor_finds_a_dataset_without_integration(
    labelbox_env: str,
    labelbox_endpoint: LabelboxEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    unsigned = labelbox_endpoint.create_dataset("unsigned", signed=False)
    monkeypatch.setenv("INGEST_REGISTRY", f"labelbox://{unsigned}")
    assert main(["doctor"]) == 1
    assert "no IAM integration attached" in capsys.readouterr().out


def test_doctor_finds_an_integration_that_does_not_validate(
    labelbox_env: str, labelbox_endpoint: LabelboxEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    labelbox_endpoint.set_faults(integrations_valid=False)
    assert main(["doctor"]) == 1
    assert "validateDataset fails (integration valid)" in capsys.readouterr().out


def test_doctor_reports_invalid_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("INGEST_REGISTRY", "labelbox://ds")  # and no key anywhere
    assert main(["doctor"]) == 2
    assert "LABELBOX_API_KEY_SECRET" in capsys.readouterr().out


def test_doctor_on_the_embedded_catalog_checks_nothing_remote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INGEST_REGISTRY", f"sqlite:///{tmp_path / 'c.sqlite'}")
    assert main(["doctor"]) == 0
    assert "nothing to check against Labelbox" in capsys.readouterr().out
