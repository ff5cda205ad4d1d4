"""The backfill's small parts on their own: URIs, the checkpoint file, the settings fingerprint, the rate limiter,
the registry limits, the progress line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bucket_ingest.backfill.checkpoint import Checkpoint, CheckpointError, default_path, settings_fingerprint
from bucket_ingest.backfill.limits import LIMITS, limits_for
from bucket_ingest.backfill.listing import Position, event_time
from bucket_ingest.backfill.progress import Snapshot
from bucket_ingest.backfill.runner import RateLimiter
from bucket_ingest.backfill.target import Target, TargetError, parse_target
from bucket_ingest.emulators import PROJECT_ROOT
from shared.events.model import Cloud
from shared.settings import Settings


@pytest.mark.parametrize(
    ("uri", "target"),
    [
        ("s3://my-bucket", Target(Cloud.AWS, "my-bucket", "")),
        ("s3://my-bucket/photos/2024 summer/", Target(Cloud.AWS, "my-bucket", "photos/2024 summer/")),
        ("S3://my.bucket/a%20b", Target(Cloud.AWS, "my.bucket", "a%20b")),  # S3 prefixes are literal
        ("gs://my_bucket/x/", Target(Cloud.GCP, "my_bucket", "x/")),
        (
            "https://acct.blob.core.windows.net/images/raw%20data/",
            Target(Cloud.AZURE, "images", "raw data/", account="acct", endpoint="blob.core.windows.net"),
        ),
        (
            "https://acct.blob.core.chinacloudapi.cn/images",
            Target(Cloud.AZURE, "images", "", account="acct", endpoint="blob.core.chinacloudapi.cn"),
        ),
        (
            "http://127.0.0.1:10000/devstoreaccount1/images/p/",
            Target(
                Cloud.AZURE,
                "images",
                "p/",
                account="devstoreaccount1",
                service_url="http://127.0.0.1:10000/devstoreaccount1",
            ),
        ),
    ],
)
def test_uris_name_cloud_bucket_and_prefix(uri: str, target: Target) -> None:
    assert parse_target(uri) == target
    assert parse_target(target.uri) == target  # the canonical form reads back the same


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3:/bucket", "is not a bucket URI"),
        ("gcs://bucket/", "unknown scheme 'gcs://'"),
        ("gs:///prefix", "names no bucket"),
        ("s3://ab/", "'ab' is not a valid S3 bucket name (3-63"),
        ("s3://-bucket/", "is not a valid S3 bucket name"),
        ("https://acct.blob.core.windows.net/", "names no container"),
        ("https://acct.blob.core.windows.net/Images/", "'Images' is not a valid Azure container name"),
        ("https://a.blob.core.windows.net/images/", "'a' is not a storage account name"),
        ("https://storage.googleapis.com/bucket/", "is not an Azure blob URL"),
    ],
)
def test_bad_uris_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(TargetError) as error:
        parse_target(uri)
    assert message in str(error.value)


def test_the_checkpoint_is_replaced_atomically_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "checkpoint.json"
    checkpoint = Checkpoint("s3://bkt/", "sqlite:///x.sqlite", "fingerprint")
    checkpoint.position = Position("dir/日本 語+%.jpg", "token/1")
    checkpoint.counts.update({"listed": 7, "created": 5, "skipped:zero_byte": 2})
    checkpoint.batches = 2

    checkpoint.save(path)
    checkpoint.save(path)

    loaded = Checkpoint.load(path)
    assert loaded is not None
    assert (loaded.position, loaded.counts, loaded.batches) == (checkpoint.position, checkpoint.counts, 2)
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.json"]  # no temporary file left
    assert Checkpoint.load(tmp_path / "none.json") is None


def test_an_unreadable_checkpoint_is_reported_not_ignored(tmp_path: Path) -> None:
    torn = tmp_path / "torn.json"
    torn.write_text('{"format": 1, "uri": ')
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"hello": "world"}))

    with pytest.raises(CheckpointError, match=r"cannot be read .* fix or delete it"):
        Checkpoint.load(torn)
    with pytest.raises(CheckpointError, match="is not a backfill checkpoint"):
        Checkpoint.load(foreign)


def test_default_checkpoint_paths_differ_per_bucket_prefix_and_registry() -> None:
    a = default_path(parse_target("s3://bkt/a/"), "sqlite:///x")
    paths = {
        a,
        default_path(parse_target("s3://bkt/b/"), "sqlite:///x"),
        default_path(parse_target("s3://bkt/a/"), "sqlite:///y"),
        default_path(parse_target("gs://bkt/a/"), "sqlite:///x"),
    }
    assert len(paths) == 4
    assert a.parent == Path(".bucket-ingest/backfill") and a.name.startswith("aws-bkt-")


def fingerprint_in_a_new_process(env: dict[str, str], seed: str) -> str:
    code = "import os; from shared.settings import Settings; from bucket_ingest.backfill.checkpoint import "
    code += "settings_fingerprint as f; print(f(Settings.from_env(os.environ)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONHASHSEED": seed},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_settings_fingerprint_follows_decisions_not_secrets_or_hash_seeds() -> None:
    env = {
        "PATH": os.environ["PATH"],
        "INGEST_REGISTRY": "sqlite:///x.sqlite",
        "INGEST_ALLOWED_BUCKETS": "a-bucket,b-bucket,c-bucket,d-bucket",
        "INGEST_MEDIA_TYPES": "tif=IMAGE,webm=VIDEO,json=skip",
    }
    base = Settings.from_env(env)

    assert fingerprint_in_a_new_process(env, "1") == fingerprint_in_a_new_process(env, "2")
    assert settings_fingerprint(base) == settings_fingerprint(Settings.from_env({**env, "LABELBOX_API_KEY": "k"}))
    assert settings_fingerprint(base) != settings_fingerprint(Settings.from_env({**env, "INGEST_EXCLUDE": "*.tmp"}))


def test_the_rate_limiter_spaces_calls_across_threads() -> None:
    limiter = RateLimiter(per_minute=600)  # one call every 0.1 s
    starts: list[float] = []
    stop = threading.Event()

    def call() -> None:
        limiter.wait(stop)
        starts.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(6)]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    starts.sort()
    # the i-th call starts no sooner than i tenths of a second after the first slot (a late wake-up only adds)
    assert all(start - begin >= i * 0.1 - 0.01 for i, start in enumerate(starts))
    assert starts[-1] - begin >= 0.49


def test_registry_limits_stay_inside_labelbox_s_documented_limits() -> None:
    labelbox = limits_for("labelbox://dataset")
    assert labelbox.batch_size <= labelbox.max_batch_size <= 30_000  # rows per upsert task with metadata
    assert labelbox.calls_per_minute is not None and labelbox.calls_per_minute * 20 <= 1_500  # Free tier, 20/call
    assert limits_for("sqlite:///x").concurrency == 1
    assert set(LIMITS) == {"labelbox", "sqlite", "pubsub"}
    with pytest.raises(ValueError, match="use labelbox:// or sqlite://"):
        limits_for("redis://x")


def test_the_progress_line_shows_counts_rate_and_eta() -> None:
    counts = Counter({"listed": 1500, "created": 1000, "present": 200, "skipped:zero_byte": 3, "failed": 2})
    snapshot = Snapshot(counts, listed_this_run=1000, seconds=2.0, expected_total=3500)

    line = snapshot.line()

    assert line == (
        "listed 1,500/3,500 · registered 1,200 (new 1,000, already there 200) · skipped 3 (zero_byte 3) · failed 2"
        " · 500 objects/s · ETA 4.0s"
    )
    assert snapshot.as_dict()["eta_seconds"] == 4


def test_event_times_are_rfc3339_utc_with_milliseconds() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 11, 25, 14, 3, 4, 567891, tzinfo=timezone(timedelta(hours=1)))
    assert event_time(moment) == "2026-11-25T13:03:04.567Z"
    assert event_time(None) is None
