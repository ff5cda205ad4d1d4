"""End to end with the Labelbox registry: the functions talk to the local Labelbox-compatible endpoint through the
real client, and the endpoint's fault settings play an outage and a row refused for good."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.labelbox_endpoint import LabelboxEndpoint
from bucket_ingest.pipeline import TARGETS, LocalPipeline
from bucket_ingest.pipeline.samples import REGISTER, SAMPLES
from shared.global_keys import global_key
from shared.uris import ObjectLocation, parse_uri
from tests.support.labelbox import API_KEY, running_endpoint
from tests.support.pipeline import Emulators, Run, emulators_fixture, running  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

KEYS = ["outage/a.jpg", "outage/b c.jpg", "outage/d+e%41.jpg"]
POISON = "poison/refused for good.jpg"


@pytest.fixture
def endpoint() -> Iterator[LabelboxEndpoint]:
    with running_endpoint() as endpoint:
        yield endpoint


def labelbox(emulators: Emulators, tmp_path: Path, endpoint: LabelboxEndpoint, **config: Any) -> Any:
    """A pipeline whose functions register in a dataset of the endpoint, with short invocation budgets so that a
    failing registry makes them give the events back rather than retry inside one invocation."""
    dataset = endpoint.create_dataset("e2e")
    settings = {"LABELBOX_ENDPOINT": endpoint.url, "LABELBOX_API_KEY": API_KEY, "INGEST_TIMEOUT_SECONDS": "2"}
    return running(emulators, tmp_path, f"labelbox://{dataset}", settings=settings, lambda_timeout=4, **config)


def gkey(pipeline: LocalPipeline, target: str, key: str) -> str:
    t = pipeline.targets[target]
    return global_key(ObjectLocation(t.cloud, t.bucket, key, account=t.account))


def test_an_outage_loses_nothing_and_everything_registers_once_it_ends(
    emulators: Emulators, tmp_path: Path, endpoint: LabelboxEndpoint
) -> None:
    endpoint.set_faults(error_rate=1.0, error_status=503)
    with labelbox(emulators, tmp_path, endpoint, max_receive_count=50) as run:
        uploads = [run.pipeline.upload(t, k, b"jpeg", "image/jpeg") for t in TARGETS for k in KEYS]
        locations = [u.location for u in uploads]
        # every object failed at least once, retryably, and its event came back
        run.wait_for(locations, lambda o: o.status == "failed" and o.retryable)
        assert endpoint.store.rows() == []
        endpoint.set_faults(error_rate=0.0)
        run.wait_for(locations, lambda o: o.status == "upserted")
        dead = run.pipeline.dead_letters()
        mapping = run.pipeline.event_source_mapping
        assert mapping is not None and mapping.stats.returned > 0

    rows = endpoint.store.rows()
    assert len(rows) == len(uploads)
    assert {(parse_uri(r["row_data"]).bucket, parse_uri(r["row_data"]).key) for r in rows} == {
        (u.target.bucket, u.key) for u in uploads
    }
    assert dead == {"aws": [], "gcp": [], "azure": []}


def test_a_row_refused_for_good_ends_in_each_platforms_dead_letters(
    emulators: Emulators, tmp_path: Path, endpoint: LabelboxEndpoint
) -> None:
    attempts = 3
    with labelbox(
        emulators,
        tmp_path,
        endpoint,
        max_receive_count=attempts,
        eventarc_attempts=attempts,
        event_grid_attempts=attempts,
    ) as run:
        reject = {gkey(run.pipeline, t, POISON): "Invalid row_data: this URL may never be imported" for t in TARGETS}
        endpoint.set_faults(reject=reject)
        good = [run.pipeline.upload(t, "poison/fine.jpg", b"jpeg", "image/jpeg") for t in TARGETS]
        poison = [run.pipeline.upload(t, POISON, b"jpeg", "image/jpeg") for t in TARGETS]
        run.wait_for([u.location for u in good], lambda o: o.status == "upserted")
        run.wait_for([u.location for u in poison], lambda o: o.status == "failed", count=attempts)
        dead = wait_for_dead_letters(run, {"aws": 2, "gcp": 1, "azure": 1})
        seen = run.outcomes_by_location()

    for upload in poison:
        outcomes = seen[upload.location]
        assert all(o.status == "failed" and not o.retryable for o in outcomes), upload.location
        assert all("may never be imported" in o.detail for o in outcomes), upload.location
        assert len(outcomes) == attempts, f"{upload.location}: tried {len(outcomes)} times, not {attempts}"
    # both AWS targets feed the one queue: its DLQ holds the S3 notification and the EventBridge event
    bodies = sorted(letter["Body"] for letter in dead["aws"])
    assert len(bodies) == 2 and all("refused" in body for body in bodies)
    assert {b.startswith('{"Records"') for b in bodies} == {True, False}
    assert [e.key for e in dead["gcp"]] == [POISON]
    assert [e["subject"].rsplit("/blobs/", 1)[1] for e in dead["azure"]] == [POISON]
    rows = endpoint.store.rows()
    assert {parse_uri(r["row_data"]).key for r in rows} == {"poison/fine.jpg"}
    assert len(rows) == len(TARGETS)


def wait_for_dead_letters(run: Run, counts: dict[str, int], timeout: float = 60.0) -> dict[str, list[Any]]:
    end = time.monotonic() + timeout
    while True:
        dead = run.pipeline.dead_letters()
        if all(len(dead.get(name, [])) >= n for name, n in counts.items()):
            return dead
        if time.monotonic() > end:
            pytest.fail(f"dead letters after {timeout} s: { {k: len(v) for k, v in dead.items()} }, wanted {counts}")
        time.sleep(0.2)


def test_the_sample_set_registers_in_labelbox(emulators: Emulators, tmp_path: Path, endpoint: LabelboxEndpoint) -> None:
    """The same outcomes as with the embedded catalog: Labelbox's client takes every awkward key."""
    with labelbox(emulators, tmp_path, endpoint) as run:
        uploads = [run.pipeline.upload(t, s.key, s.data, s.content_type) for t in TARGETS for s in SAMPLES]
        seen = run.wait_for([u.location for u in uploads], lambda o: o.status != "failed")
    expected = {s.key: s.expect for s in SAMPLES}
    for upload in uploads:
        [outcome] = seen[upload.location]
        got = REGISTER if outcome.status == "upserted" else outcome.reason
        assert got == expected[upload.key], upload.location
    rows = endpoint.store.rows()
    registered = {(u.target.cloud, u.target.bucket, u.key) for u in uploads if expected[u.key] == REGISTER}
    locations = [parse_uri(r["row_data"]) for r in rows]
    assert len(rows) == len(registered)
    assert {(loc.cloud, loc.bucket, loc.key) for loc in locations} == registered
