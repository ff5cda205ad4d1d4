"""Every vendor sample parses to the values in expected.json."""

from __future__ import annotations

import pytest

from shared.events import Cloud, EventKind, ObjectEvent, parse_document
from tests import fixtures

# expected.json's kinds → ours: "other" (neither created nor deleted) and "unknown" (the payload does not say)
# are ignored with a reason; Data Lake Gen2 CreateFile is a created event we ignore until FlushWithClose.
KINDS = {
    "created": EventKind.CREATED,
    "deleted": EventKind.DELETED,
    "test": EventKind.TEST,
    "other": EventKind.IGNORED,
    "unknown": EventKind.IGNORED,
}
UNCOMMITTED = {"CreateFile"}


def parsed(name: str) -> list[ObjectEvent]:
    cloud = Cloud(fixtures.expected()[name]["cloud"])
    events = [e for d in parse_document(cloud, fixtures.load(name)) for e in d.events]
    assert all(isinstance(e, ObjectEvent) for e in events), events
    return events  # type: ignore[return-value]


def test_every_fixture_file_has_an_expectation() -> None:
    on_disk = {p.name for p in fixtures.EVENTS.glob("*.json")} - {"expected.json"}
    assert on_disk == set(fixtures.expected())
    assert len(on_disk) == 35


@pytest.mark.parametrize("name", fixtures.names())
def test_fixture_parses_to_expected(name: str) -> None:
    want = fixtures.expected()[name]
    got = parsed(name)
    assert len(got) == len(want["records"])
    for event, record in zip(got, want["records"], strict=True):
        assert event.cloud == want["cloud"]
        assert event.bucket == record["bucket"]
        assert event.key == record["key"]
        assert event.size == record["size"]
        kind = KINDS[record["kind"]]
        if record.get("api") in UNCOMMITTED:
            kind = EventKind.IGNORED
        assert event.kind is kind, event.reason
        if kind in (EventKind.IGNORED, EventKind.TEST):
            assert event.reason, "an ignored event must say why"
        if "version_id" in record:
            assert event.version == record["version_id"]
        if "generation" in record:
            assert event.version == str(record["generation"])
        if "account" in record:
            assert event.account == record["account"]
        if "api" in record:
            assert event.api == record["api"]
        if "event_name" in record and kind is not EventKind.TEST:
            assert event.name == record["event_name"]
