"""Helpers for the pipeline and end-to-end tests: the emulators once per session, a pipeline per test.

Import the fixture into a test module (``from tests.support.pipeline import emulators_fixture  # noqa: F401``);
tests then take ``emulators``.
Every pipeline gets its own buckets, queues and container (a random prefix) and its own catalog, so the tests
share the emulators without resetting them.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.emulators import Azurite, FakeGcs, Moto, all_emulators
from bucket_ingest.pipeline import LocalPipeline, PipelineConfig, SeenOutcome, Upload
from shared.registries.sqlite import SqliteCatalog

Emulators = tuple[Moto, FakeGcs, Azurite]
WAIT_S = 60.0  # generous: the machine is shared; a healthy pipeline answers in well under a second

# Fast local platforms: a failed SQS message comes back after 1 s; push retries start at 0.1 s.
FAST: Mapping[str, Any] = {"visibility_timeout": 1, "time_scale": 1 / 100}


@pytest.fixture(scope="session", name="emulators")
def emulators_fixture() -> Iterator[Emulators]:
    """moto, fake-gcs-server (publishing to a local Pub/Sub publisher) and Azurite, for the whole session."""
    with all_emulators() as running:
        yield running


@dataclass
class Run:
    """A started pipeline, its catalog, and waits on what the functions log."""

    pipeline: LocalPipeline
    catalog: SqliteCatalog | None

    def upload_all(self, target: str, items: Iterable[tuple[str, bytes, str | None]]) -> list[Upload]:
        return [self.pipeline.upload(target, key, data, content_type) for key, data, content_type in items]

    def outcomes_by_location(self) -> dict[str, list[SeenOutcome]]:
        seen: dict[str, list[SeenOutcome]] = defaultdict(list)
        for outcome in self.pipeline.outcomes.snapshot():
            seen[outcome.location].append(outcome)
        return seen

    def wait_for(
        self,
        locations: Iterable[str],
        accept: Callable[[SeenOutcome], bool] = lambda o: True,
        *,
        count: int = 1,
        timeout: float = WAIT_S,
    ) -> dict[str, list[SeenOutcome]]:
        """Wait until every location has ``count`` accepted outcomes; fail the test naming what is missing."""
        wanted = set(locations)

        def done(seen: list[SeenOutcome]) -> bool:
            got: dict[str, int] = defaultdict(int)
            for outcome in seen:
                if outcome.location in wanted and accept(outcome):
                    got[outcome.location] += 1
            return all(got[loc] >= count for loc in wanted)

        if not self.pipeline.outcomes.wait_for(done, timeout):
            seen = self.outcomes_by_location()
            missing = {loc: [(o.status, o.reason, o.detail[:80]) for o in seen.get(loc, [])] for loc in wanted}
            problems = self.pipeline.outcomes.problems
            pytest.fail(f"not every object got {count} accepted outcome(s) in {timeout} s: {missing} {problems}")
        return {loc: self.outcomes_by_location()[loc] for loc in wanted}

    def rows(self, *, include_deleted: bool = True) -> list[dict[str, Any]]:
        assert self.catalog is not None, "this run does not use the embedded catalog"
        return self.catalog.rows(include_deleted=include_deleted)


@contextlib.contextmanager
def running(emulators: Emulators, tmp_path: Path, registry: str | None = None, **config: Any) -> Iterator[Run]:
    """A pipeline on the session's emulators with a fresh catalog (or ``registry``) and ``config`` overrides."""
    url = registry or f"sqlite:///{tmp_path / 'catalog.sqlite'}?dataset=e2e"
    settings = PipelineConfig(url, log_file=tmp_path / "functions.log")
    settings = replace(settings, **{**FAST, **config})
    catalog = SqliteCatalog.from_url(url) if url.startswith("sqlite://") else None
    try:
        with LocalPipeline(settings, *emulators) as pipeline:
            yield Run(pipeline, catalog)
    finally:
        if catalog is not None:
            catalog.close()
