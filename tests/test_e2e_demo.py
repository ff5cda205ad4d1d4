"""`bucket-ingest demo` as a user runs it (what `make demo` does): it works from the venv and node_modules alone,
shows every sample's outcome and a summary, and leaves no process behind, whether it ends, is interrupted with
Ctrl-C or is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bucket_ingest.emulators import PROJECT_ROOT
from bucket_ingest.pipeline.samples import REGISTER, SAMPLES
from tests.support.labelbox import API_KEY, running_endpoint

pytestmark = pytest.mark.slow

DEMO_TIMEOUT_S = 180
REGISTERED_PER_TARGET = sum(s.expect == REGISTER for s in SAMPLES)


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bucket_ingest.cli", "demo", *args]


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """A TMPDIR of the test's own: every process the demo starts inherits it, which is how they are found."""
    folder = tmp_path / "demo-tmp"
    folder.mkdir()
    yield folder
    for pid in processes_with(folder):  # a failed test must not leave its processes to the next ones
        os.kill(pid, signal.SIGKILL)


def environment(marker: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "LABELBOX_", "AWS_"))}
    return {**keep, "TMPDIR": str(marker), "PYTHONUNBUFFERED": "1", **extra}


def processes_with(marker: Path) -> list[int]:
    """Live (not zombie) processes whose environment has TMPDIR=marker."""
    needle = f"TMPDIR={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().split(") ", 1)[1].startswith("Z"):
                continue
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


def wait_until_gone(marker: Path, timeout: float = 15.0) -> list[int]:
    end = time.monotonic() + timeout
    while (left := processes_with(marker)) and time.monotonic() < end:
        time.sleep(0.2)
    return left


def read_until(process: subprocess.Popen[str], text: str, timeout: float) -> str:
    assert process.stdout is not None
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    pytest.fail(f"{text!r} never appeared; output:\n{''.join(seen)}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")
def test_the_demo_registers_the_samples_shows_them_and_stops_everything(marker: Path) -> None:
    result = subprocess.run(
        demo_command(),
        env=environment(marker),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "every sample reached the outcome the default settings give it" in out
    for target in ("aws", "aws-eventbridge", "gcp", "azure"):
        [line] = [line for line in out.splitlines() if line.startswith(f"  {target} ") and " ms " in line]
        assert line.split()[1:3] == [str(REGISTERED_PER_TARGET), "0"], line
    assert out.count("  created ") == 4 * REGISTERED_PER_TARGET
    assert "-> gs://demo-gcs/unicode/日本語/données é.mp4" in out
    assert "-> https://demo-eb.s3.us-east-1.amazonaws.com/reports/%2541%20is%20not%20A.txt" in out
    assert "aws --endpoint-url http://127.0.0.1:" in out and "AZURE_STORAGE_CONNECTION_STRING=" in out
    assert "Traceback" not in result.stderr
    assert wait_until_gone(marker, timeout=2.0) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")
@pytest.mark.parametrize("stop", ["ctrl-c", "kill -9"])
def test_watch_mode_leaves_no_process_behind(marker: Path, stop: str) -> None:
    process = subprocess.Popen(
        demo_command("--watch"),
        env=environment(marker),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        read_until(process, "Watching for your uploads", DEMO_TIMEOUT_S)
        running = processes_with(marker)
        # moto, fake-gcs-server, Azurite, the Lambda runtime, functions-framework (and its worker), the host
        assert len(running) >= 7, running
        process.send_signal(signal.SIGINT if stop == "ctrl-c" else signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
    assert wait_until_gone(marker) == []
    if stop == "ctrl-c":
        assert process.returncode in (0, 130)


def test_the_demo_with_the_labelbox_registry(marker: Path) -> None:
    with running_endpoint() as endpoint:
        dataset = endpoint.create_dataset("demo")
        env = environment(marker, LABELBOX_ENDPOINT=endpoint.url, LABELBOX_API_KEY=API_KEY)
        result = subprocess.run(
            demo_command("--registry", f"labelbox://{dataset}"),
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_S,
            check=False,
        )
        rows = endpoint.store.rows()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("  upserted ") == 4 * REGISTERED_PER_TARGET
    assert len(rows) == 4 * REGISTERED_PER_TARGET
    assert API_KEY not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--registry", "ftp://somewhere"], {}, "INGEST_REGISTRY: 'ftp://somewhere' is not a registry URL"),
        (["--registry", "labelbox://ckdataset"], {}, "LABELBOX_API_KEY_SECRET"),
        (
            ["--registry", "labelbox://ckdataset"],
            {"LABELBOX_API_KEY": "k", "LABELBOX_ENDPOINT": "nowhere"},
            "LABELBOX_ENDPOINT: 'nowhere' is not an http(s) URL",
        ),
    ],
)
def test_a_bad_registry_is_named_before_anything_starts(
    marker: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        demo_command(*args),
        env=environment(marker, **env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "Starting the emulated clouds" not in result.stdout
