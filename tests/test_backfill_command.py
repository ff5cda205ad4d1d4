"""`bucket-ingest backfill` as a user meets it, against moto S3 (and Azurite for Azure credentials):

- --dry-run counts per media type, dataset and skip reason, shows sample payloads and registers nothing;
- bad input (unknown scheme, no bucket, a bucket that does not exist, no permission, a checkpoint that cannot be
  written or belongs to another run) → exit status 2, one line naming what to fix, nothing registered;
- a registry that fails for a while: the batch retries and the run completes; a registry that keeps failing:
  the run stops with status 75 and the checkpoint before the failing batch, and the next run completes it;
- killed with SIGKILL mid-run, then run again: every row exactly once; stopped with SIGTERM: exit 130, and the
  next run handles each remaining object exactly once;
- several calls in flight, stopped after a few batches: the checkpoint only covers batches finished in order;
- the progress line (listed, registered, skipped by reason, rate, ETA).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.backfill.checkpoint import Checkpoint, settings_fingerprint
from bucket_ingest.backfill.listing import Endpoints
from bucket_ingest.backfill.runner import Backfill, Plan, Status
from bucket_ingest.backfill.s3 import S3Lister
from bucket_ingest.backfill.target import parse_target
from bucket_ingest.cli import main
from bucket_ingest.emulators import PROJECT_ROOT, Azurite, Moto
from shared.registries.sqlite import SqliteCatalog
from shared.settings import Settings
from tests.support.backfill import (
    ALL_OBJECTS,
    FILLER_OBJECTS,
    S3Bucket,
    catalog_fixture,  # noqa: F401 (fixture)
    run_backfill,
    unique_name,
)
from tests.support.handlers import Catalog, clean_env

BUCKET_INGEST = str(Path(sys.executable).parent / "bucket-ingest")


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with Moto() as server:
        yield server


@pytest.fixture
def bucket(moto: Moto) -> S3Bucket:
    bucket = S3Bucket(moto, unique_name("cmd"))
    bucket.put(ALL_OBJECTS)
    return bucket


@pytest.fixture
def env(moto: Moto, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    clean_env(monkeypatch, catalog.url, moto.env())
    return dict(os.environ)


def test_dry_run_counts_and_samples_without_registering(
    bucket: S3Bucket,
    catalog: Catalog,
    env: dict[str, str],
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGEST_ROUTES", "*/bulk/**=bulk-dataset")
    checkpoint = tmp_path / "checkpoint.json"

    code, out, _ = run_backfill(
        capsys, bucket.uri, "--dry-run", "--json", "--sample", "3", "--checkpoint", str(checkpoint)
    )

    report = json.loads(out)
    assert code == 0
    assert report["listed"] == len(ALL_OBJECTS)
    assert report["skipped"] == {"unknown_media_type": 2, "unservable_key": 1, "zero_byte": 1, "folder_marker": 1}
    assert report["datasets"] == {"bulk-dataset": len(FILLER_OBJECTS), "backfilled": len(ALL_OBJECTS) - 5 - 40}
    assert report["media_types"] == {"IMAGE": 51, "TEXT": 1, "PDF": 1, "VIDEO": 1, "AUDIO": 1, "HTML": 1,
                                     "CONVERSATIONAL": 1, "DICOM": 1}  # fmt: skip
    assert report["would_register"] == len(ALL_OBJECTS) - 5
    assert len(report["sample"]) == 3
    assert all(p["row_data"].startswith(f"https://{bucket.name}.s3.us-east-1.amazonaws.com/") for p in report["sample"])
    assert report["skip_examples"]["zero_byte"]["object"] == f"aws://{bucket.name}/empty/zero.jpg"
    assert catalog.rows() == []
    assert not checkpoint.exists()


def test_dry_run_as_text_names_each_reason(bucket: S3Bucket, env: dict[str, str], capsys: Any) -> None:
    code, out, _ = run_backfill(capsys, bucket.uri, "--dry-run")

    assert code == 0
    assert f"dry run of {bucket.uri}: {len(ALL_OBJECTS)} objects listed, {len(ALL_OBJECTS) - 5} would register" in out
    assert "e.g. unservable_key: " in out and "INGEST_UNSERVABLE_KEYS" in out
    assert "sample payloads:" in out


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://host/path", "unknown scheme 'ftp://': use s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or https://"),
        ("s3://", "names no bucket"),
        ("bucket/prefix", "is not a bucket URI"),
        ("s3://Not_A_Bucket/", "'Not_A_Bucket' is not a valid S3 bucket name"),
        ("https://example.com/container/", "is not an Azure blob URL"),
        ("s3://no-such-bucket-here/", "bucket 'no-such-bucket-here' does not exist"),
    ],
)
def test_bad_input_names_what_to_fix_and_registers_nothing(
    uri: str, message: str, catalog: Catalog, env: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    checkpoint = tmp_path / "checkpoint.json"

    code, out, err = run_backfill(capsys, uri, "--checkpoint", str(checkpoint))

    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (out, catalog.rows(), checkpoint.exists()) == ("", [], False)


def test_no_permission_to_list_an_s3_bucket(
    catalog: Catalog, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")  # moto enforces IAM after three actions
    with Moto() as strict:
        strict.client("s3").create_bucket(Bucket="locked-bucket")
        iam = strict.client("iam")
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        clean_env(monkeypatch, catalog.url, strict.env())
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

        code, _, err = run_backfill(capsys, "s3://locked-bucket/", "--checkpoint", str(tmp_path / "c.json"))

    assert code == 2
    assert "no permission to list s3://locked-bucket/" in err
    assert "need s3:ListBucket on arn:aws:s3:::locked-bucket" in err
    assert key["SecretAccessKey"] not in err
    assert catalog.rows() == []


def test_wrong_azure_key_says_which_role_to_grant_and_shows_no_secret(
    catalog: Catalog, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Azurite() as azurite:
        azurite.client().create_container("images")
        wrong_key = "d3Jvbmcga2V5IGZvciB0aGlzIGFjY291bnQ="
        clean_env(monkeypatch, catalog.url)
        monkeypatch.setenv(
            "AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string.replace(azurite.account_key, wrong_key)
        )

        code, _, err = run_backfill(
            capsys, f"https://{azurite.account}.blob.core.windows.net/images/", "--checkpoint", str(tmp_path / "c.json")
        )
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        missing_code, _, missing_err = run_backfill(
            capsys, f"https://{azurite.account}.blob.core.windows.net/nothing-here/"
        )

    assert code == 2
    assert f"no permission to list https://{azurite.account}.blob.core.windows.net/images/" in err
    assert "Storage Blob Data Reader" in err
    assert wrong_key not in err and "AccountKey" not in err
    assert missing_code == 2
    assert f"container 'nothing-here' does not exist in account '{azurite.account}'" in missing_err


def test_a_checkpoint_that_cannot_be_written_stops_the_run_before_any_registration(
    bucket: S3Bucket, catalog: Catalog, env: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")

    code, _, err = run_backfill(capsys, bucket.uri, "--checkpoint", str(not_a_folder / "checkpoint.json"))

    assert code == 2
    assert "cannot write the checkpoint" in err and "pass a writable --checkpoint" in err
    assert catalog.rows() == []


def test_a_checkpoint_is_never_applied_to_another_run(
    moto: Moto, bucket: S3Bucket, catalog: Catalog, env: dict[str, str], tmp_path: Path, capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    checkpoint = str(tmp_path / "checkpoint.json")
    other = S3Bucket(moto, unique_name("other"))
    run_backfill(capsys, bucket.uri, "--checkpoint", checkpoint, "--max-objects", "5")
    rows = catalog.rows()

    other_code, _, other_err = run_backfill(capsys, other.uri, "--checkpoint", checkpoint)
    monkeypatch.setenv("INGEST_EXCLUDE", "*.png")
    settings_code, _, settings_err = run_backfill(capsys, bucket.uri, "--checkpoint", checkpoint)

    assert other_code == 2 and f"it is for {bucket.uri}, not {other.uri}" in other_err
    assert settings_code == 2 and "the INGEST_* settings" in settings_err and "--restart" in settings_err
    assert catalog.rows() == rows  # the refused runs registered nothing


def test_a_registry_failing_for_a_while_is_retried_until_the_batch_registers(
    bucket: S3Bucket, catalog: Catalog, env: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    result: dict[str, Any] = {}

    def run() -> None:
        result["code"], result["out"], _ = run_backfill(
            capsys, bucket.uri, "--json", "--checkpoint", str(tmp_path / "c.json"), "--call-timeout", "0.3"
        )

    thread = threading.Thread(target=run)
    with catalog.locked():  # another writer holds the catalog: the first attempts time out as "catalog busy"
        thread.start()
        time.sleep(1.0)
    thread.join(60)

    summary = json.loads(result["out"])
    assert (result["code"], summary["status"]) == (0, "complete")
    assert summary["this_run"]["register_calls"] > 1  # one batch (58 rows), tried more than once
    assert len(catalog.rows()) == len(ALL_OBJECTS) - 5


def test_a_registry_that_keeps_failing_stops_the_run_resumably(
    bucket: S3Bucket, catalog: Catalog, env: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    options = ("--json", "--checkpoint", str(checkpoint), "--batch-size", "20")
    run_backfill(capsys, bucket.uri, *options, "--max-objects", "25")  # one batch of 20 rows checkpointed, then 5

    with catalog.locked():
        code, out, _ = run_backfill(capsys, bucket.uri, *options, "--call-timeout", "0.2", "--max-attempts", "2")
    stopped = Checkpoint.load(checkpoint)
    resumed_code, resumed_out, _ = run_backfill(capsys, bucket.uri, *options)

    summary = json.loads(out)
    assert (code, summary["status"]) == (75, "registry_unavailable")
    assert "the registry kept failing after 2 attempts" in summary["message"]
    assert "catalog busy" in summary["message"]
    assert stopped is not None and not stopped.complete
    assert stopped.counts["listed"] == 25  # nothing past the failing batch was checkpointed
    resumed = json.loads(resumed_out)
    assert (resumed_code, resumed["status"]) == (0, "complete")
    assert resumed["totals"]["listed"] == len(ALL_OBJECTS)
    assert len(catalog.rows()) == len(ALL_OBJECTS) - 5


def run_in_background(env: dict[str, str], *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [BUCKET_INGEST, "backfill", *argv, "--progress-interval", "0"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_batches(checkpoint: Path, batches: int, process: subprocess.Popen[str]) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end and process.poll() is None:
        state = Checkpoint.load(checkpoint) if checkpoint.exists() else None
        if state is not None and state.batches >= batches:
            return
        time.sleep(0.02)
    pytest.fail(f"the run did not reach {batches} batches (exit {process.poll()})")


def test_killed_mid_run_then_run_again_every_row_exactly_once(
    bucket: S3Bucket, catalog: Catalog, env: dict[str, str], tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    argv = (bucket.uri, "--checkpoint", str(checkpoint), "--outcomes", str(tmp_path / "outcomes.jsonl"))
    slow = ("--batch-size", "4", "--calls-per-minute", "600")  # ten calls a second: time to kill it mid-run

    process = run_in_background(env, *argv, *slow)
    wait_for_batches(checkpoint, 3, process)
    process.kill()
    process.communicate()
    at_kill = Checkpoint.load(checkpoint)
    again = subprocess.run(
        [BUCKET_INGEST, "backfill", *argv, "--json"], check=False, env=env, capture_output=True, text=True
    )

    assert at_kill is not None and not at_kill.complete and at_kill.batches >= 3
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "complete"
    rows = catalog.rows()
    assert len(rows) == len(ALL_OBJECTS) - 5
    assert {r["writes"] for r in rows} == {1}  # no row written twice
    outcomes = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    created = Counter(o["global_key"] for o in outcomes if o["outcome"] == "created")
    assert set(created) == {r["global_key"] for r in rows} and set(created.values()) == {1}
    # a batch registered just before the kill, but not yet checkpointed, is sent again and found present
    assert {o["outcome"] for o in outcomes} <= {"created", "present", "skipped"}


def test_sigterm_stops_after_the_calls_in_flight_and_the_next_run_continues(
    bucket: S3Bucket, catalog: Catalog, env: dict[str, str], tmp_path: Path
) -> None:
    checkpoint, outcomes = tmp_path / "checkpoint.json", tmp_path / "outcomes.jsonl"
    argv = (bucket.uri, "--checkpoint", str(checkpoint), "--outcomes", str(outcomes), "--batch-size", "4")

    process = run_in_background(env, *argv, "--calls-per-minute", "600")
    wait_for_batches(checkpoint, 2, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    again = subprocess.run(
        [BUCKET_INGEST, "backfill", *argv, "--json"], check=False, env=env, capture_output=True, text=True
    )

    assert process.returncode == 130, err
    assert "interrupted (stopped)" in out and "run the same command to continue" in out
    assert json.loads(again.stdout)["status"] == "complete"
    handled = Counter(json.loads(line)["object"] for line in outcomes.read_text().splitlines())
    assert len(handled) == len(ALL_OBJECTS) and set(handled.values()) == {1}  # each object exactly once


def test_with_calls_in_flight_the_checkpoint_covers_only_batches_finished_in_order(
    bucket: S3Bucket, catalog: Catalog, env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings.from_env(os.environ)
    target = parse_target(bucket.uri)
    path = tmp_path / "checkpoint.json"
    plan = Plan(batch_size=3, concurrency=3, calls_per_minute=None)

    def run(stop_after: int | None) -> Any:
        checkpoint = Checkpoint.load(path) or Checkpoint(target.uri, catalog.url, settings_fingerprint(settings))
        registry = SqliteCatalog.from_url(catalog.url)
        commits: list[int] = []

        def on_batch(state: Checkpoint) -> None:
            commits.append(state.counts["listed"])
            if stop_after is not None and len(commits) == stop_after:
                job.stop()

        job = Backfill(S3Lister(target, Endpoints()), settings, registry, checkpoint, path, plan, on_batch=on_batch)
        try:
            return job.run(), commits
        finally:
            registry.close()

    (first, first_commits), (second, _) = run(stop_after=2), run(stop_after=None)

    assert first.status is Status.INTERRUPTED
    assert first_commits == sorted(first_commits)  # the listed count only grows: batches committed in order
    assert second.status is Status.COMPLETE
    assert first.listed_this_run + second.listed_this_run == len(ALL_OBJECTS)
    rows = catalog.rows()
    assert len(rows) == len(ALL_OBJECTS) - 5 and {r["writes"] for r in rows} == {1}


def test_progress_lines_show_counts_rate_and_eta(
    bucket: S3Bucket, env: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    capsys.readouterr()
    code = main(
        ["backfill", bucket.uri, "--batch-size", "5", "--calls-per-minute", "1200", "--expected", str(len(ALL_OBJECTS)),
         "--progress-interval", "0.1", "--checkpoint", str(tmp_path / "checkpoint.json")]
    )  # fmt: skip
    out, err = capsys.readouterr()

    lines = [line for line in err.splitlines() if line.startswith("listed ")]
    assert code == 0 and len(lines) >= 3
    assert all("objects/s" in line for line in lines)
    assert "ETA " in lines[-1]
    assert f"/{len(ALL_OBJECTS)}" in lines[-1]
    assert "skipped" in out and "unknown_media_type 2" in out and "registered 58 (new 58)" in out
