"""The emulators and the process wrapper under them: free loopback ports, clear start failures, and no process
left behind (stop() ends the whole process group; a killed parent takes its children with it)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bucket_ingest.emulators import PROJECT_ROOT, EmulatorError, ManagedProcess, Moto, http_answers
from tests.support.pipeline import Emulators, emulators_fixture  # noqa: F401 (fixture)

# Serves HTTP on the port it is given, after starting a grandchild that would outlive a careless stop.
SERVER_WITH_CHILD = textwrap.dedent(
    """
    import http.server, subprocess, sys
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.BaseHTTPRequestHandler).serve_forever()
    """
)


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def children_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def server_with_child() -> ManagedProcess:
    return ManagedProcess(
        "test server",
        lambda port: [sys.executable, "-c", SERVER_WITH_CHILD, str(port)],
        lambda port: http_answers(f"http://127.0.0.1:{port}/"),
    )


def test_the_emulators_listen_on_loopback_and_tell_clients_where(emulators: Emulators) -> None:
    moto, gcs, azurite = emulators
    for url in (moto.endpoint_url, gcs.endpoint_url, azurite.blob_endpoint):
        assert url.startswith("http://127.0.0.1:")
    assert moto.env()["AWS_ENDPOINT_URL"] == moto.endpoint_url
    assert gcs.env() == {"STORAGE_EMULATOR_HOST": gcs.endpoint_url}
    assert f"BlobEndpoint={azurite.blob_endpoint};" in azurite.env()["AZURE_STORAGE_CONNECTION_STRING"]
    assert gcs.publisher is not None and gcs.publisher.host.startswith("127.0.0.1:")
    assert moto.client("sts").get_caller_identity()["Account"] == moto.account_id
    assert isinstance(list(gcs.client().list_buckets()), list)
    assert isinstance(list(azurite.client().list_containers()), list)


def test_moto_reset_forgets_everything_and_stop_ends_the_process() -> None:
    with Moto() as moto:
        moto.client("s3").create_bucket(Bucket="to-be-forgotten")
        moto.reset()
        assert moto.client("s3").list_buckets()["Buckets"] == []
        pid = moto.process.pid
        assert pid is not None
    assert not alive(pid) and not moto.process.running()


def test_a_command_that_exits_is_reported_with_its_exit_code_and_output() -> None:
    process = ManagedProcess(
        "broken",
        lambda port: [sys.executable, "-c", "print('flag -x is not known'); raise SystemExit(2)"],
        lambda port: http_answers(f"http://127.0.0.1:{port}/"),
    )
    with pytest.raises(EmulatorError) as failure:
        process.start()
    assert "broken did not start: it exited with code 2" in str(failure.value)
    assert "flag -x is not known" in str(failure.value)


def test_a_missing_executable_is_named() -> None:
    process = ManagedProcess(
        "ghost", lambda port: ["/nonexistent/ghost-server"], lambda port: http_answers(f"http://127.0.0.1:{port}/")
    )
    with pytest.raises(
        EmulatorError, match=r"(?s)ghost did not start.*cannot run /nonexistent/ghost-server: No such file or directory"
    ):
        process.start()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stop_ends_the_whole_process_group() -> None:
    with server_with_child() as server:
        assert server.pid is not None
        [grandchild] = children_of(server.pid)
        assert alive(grandchild)
    time.sleep(0.2)
    assert not alive(server.pid) and not alive(grandchild)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_parent_takes_its_children_with_it(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(PROJECT_ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_pipeline_emulators import server_with_child
        server = server_with_child()
        server.start()
        print(server.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        end = time.monotonic() + 10
        while alive(child) and time.monotonic() < end:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()
        if parent.stdout:
            parent.stdout.close()
