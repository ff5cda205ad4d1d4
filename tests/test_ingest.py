"""ingest(): one registry call per batch, latest event per object wins, per-delivery status, failures kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from shared.deadline import Deadline
from shared.events.model import Cloud, Delivery, EventKind, ObjectEvent, UnsupportedEvent
from shared.ingest import DeliveryStatus, ingest
from shared.payloads import Payload
from shared.registries.base import RowResult, RowStatus
from shared.registries.sqlite import SqliteCatalog
from shared.settings import Settings


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"INGEST_REGISTRY": f"sqlite:///{tmp_path / 'c.sqlite'}", "AWS_REGION": "us-east-1", **env}
    )


def ev(key: str, kind: EventKind = EventKind.CREATED, **changes: object) -> ObjectEvent:
    base = ObjectEvent(cloud=Cloud.AWS, kind=kind, bucket="bkt", key=key, size=5)
    return base._replace(**changes)  # type: ignore[arg-type]


class CountingCatalog(SqliteCatalog):
    """The real catalog, counting calls: one registry call per batch is part of the contract."""

    calls: list[str]

    def register(self, payloads: Sequence[Payload], deadline: Deadline) -> list[RowResult]:
        self.calls.append(f"register:{len(payloads)}")
        return super().register(payloads, deadline)

    def delete(self, global_keys: Sequence[str], deadline: Deadline) -> list[RowResult]:
        self.calls.append(f"delete:{len(global_keys)}")
        return super().delete(global_keys, deadline)


@pytest.fixture
def catalog(tmp_path: Path) -> CountingCatalog:
    c = CountingCatalog(tmp_path / "c.sqlite")
    c.calls = []
    return c


def test_one_registry_call_for_a_batch_and_outcomes_per_object(tmp_path: Path, catalog: CountingCatalog) -> None:
    deliveries = [
        Delivery("m1", (ev("a.jpg"), ev("b.png"))),
        Delivery("m2", (UnsupportedEvent("garbage"),)),
        Delivery("m3", (ev("c.xyz"), ev("d.pdf"))),
    ]
    report = ingest(deliveries, settings(tmp_path), catalog, Deadline(10))
    assert catalog.calls == ["register:3"]
    assert [d.status for d in report.deliveries] == [DeliveryStatus.DONE] * 3
    assert report.counts() == {"created": 3, "skipped:unsupported_event": 1, "skipped:unknown_media_type": 1}
    assert len(catalog.rows()) == 3
    again = ingest(deliveries, settings(tmp_path), catalog, Deadline(10))
    assert again.counts()["present"] == 3 and len(catalog.rows()) == 3


def test_latest_event_per_object_wins(tmp_path: Path, catalog: CountingCatalog) -> None:
    s = settings(tmp_path, INGEST_DELETE_POLICY="delete")
    # delivered out of order: the delete (sequencer 0B) happened after the create (sequencer 0A)
    deliveries = [
        Delivery("late", (ev("x.jpg", EventKind.DELETED, sequencer="0000000000000000B", size=None),)),
        Delivery("early", (ev("x.jpg", sequencer="00000000000000000A"),)),
    ]
    report = ingest(deliveries, s, catalog, Deadline(10))
    assert catalog.calls == ["delete:1"]
    assert report.deliveries[0].outcomes[0].status == RowStatus.ABSENT
    assert report.deliveries[1].outcomes[0].reason == "superseded"
    # and the other way round: create after delete registers
    deliveries = [
        Delivery("create", (ev("x.jpg", sequencer="0C"),)),
        Delivery("delete", (ev("x.jpg", EventKind.DELETED, sequencer="0B", size=None),)),
    ]
    report = ingest(deliveries, s, catalog, Deadline(10))
    assert report.deliveries[0].outcomes[0].status == RowStatus.CREATED
    assert [r["global_key"] for r in catalog.rows()] == ["aws:bkt/x.jpg"]


def test_gcs_orders_by_generation(tmp_path: Path, catalog: CountingCatalog) -> None:
    old = ev("g.jpg", sequencer="9", version="9", cloud=Cloud.GCP)
    new = ev("g.jpg", sequencer="10", version="10", cloud=Cloud.GCP)
    report = ingest([Delivery("new", (new,)), Delivery("old", (old,))], settings(tmp_path), catalog, Deadline(10))
    assert report.deliveries[0].outcomes[0].status == RowStatus.CREATED
    assert catalog.rows()[0]["metadata"]["version"] == "10"


def test_a_busy_registry_sends_the_deliveries_back(tmp_path: Path, catalog: CountingCatalog) -> None:
    blocker = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        report = ingest(
            [Delivery("m1", (ev("a.jpg"),)), Delivery("m2", (ev("b.txt"), ev("c.xyz")))],
            settings(tmp_path),
            catalog,
            Deadline(0.3),
        )
    finally:
        blocker.execute("ROLLBACK")
    assert [d.status for d in report.deliveries] == [DeliveryStatus.RETRY, DeliveryStatus.RETRY]
    failed = [o for o in report.outcomes if o.status == RowStatus.FAILED]
    assert len(failed) == 2 and all(o.retryable and "busy" in o.detail for o in failed)
    skipped = [o for o in report.outcomes if o.status == "skipped"]
    assert [o.reason for o in skipped] == ["unknown_media_type"]


def test_a_registry_that_raises_loses_nothing(tmp_path: Path) -> None:
    class Broken(SqliteCatalog):
        def register(self, payloads: Sequence[Payload], deadline: Deadline) -> list[RowResult]:
            raise ConnectionResetError("peer went away")

    report = ingest([Delivery("m1", (ev("a.jpg"),))], settings(tmp_path), Broken(tmp_path / "b.sqlite"), Deadline(5))
    assert report.deliveries[0].status is DeliveryStatus.RETRY
    assert "ConnectionResetError: peer went away" in report.outcomes[0].detail


def test_a_refused_row_fails_its_delivery_only(tmp_path: Path, catalog: CountingCatalog) -> None:
    class Refusing(CountingCatalog):
        def register(self, payloads: Sequence[Payload], deadline: Deadline) -> list[RowResult]:
            good = [p for p in payloads if "bad" not in p.global_key]
            refused = [
                RowResult.failed(p.global_key, "invalid row", retryable=False)
                for p in payloads
                if "bad" in p.global_key
            ]
            return super().register(good, deadline) + refused

    refusing = Refusing(tmp_path / "r.sqlite")
    refusing.calls = []
    report = ingest(
        [Delivery("ok", (ev("good.jpg"),)), Delivery("no", (ev("bad.jpg"),))], settings(tmp_path), refusing, Deadline(5)
    )
    assert [d.status for d in report.deliveries] == [DeliveryStatus.DONE, DeliveryStatus.FAILED]
    assert report.failed()[0].outcomes[0].detail == "invalid row"


def test_deletes_wait_for_confirmation(tmp_path: Path, catalog: CountingCatalog) -> None:
    s = settings(tmp_path, INGEST_DELETE_POLICY="delete")
    ingest([Delivery("c", (ev("a.jpg"), ev("b.jpg"), ev("c.jpg")))], s, catalog, Deadline(5))
    catalog.calls.clear()
    gone = [Delivery(k, (ev(k, EventKind.DELETED, size=None),)) for k in ("a.jpg", "b.jpg", "c.jpg")]

    def still_exists(event: ObjectEvent) -> bool:
        if event.key == "c.jpg":
            raise TimeoutError("list timed out")
        return event.key == "b.jpg"

    report = ingest(gone, s, catalog, Deadline(5), still_exists=still_exists)
    assert catalog.calls == ["delete:1"]
    assert [d.status for d in report.deliveries] == [DeliveryStatus.DONE, DeliveryStatus.DONE, DeliveryStatus.RETRY]
    assert report.deliveries[0].outcomes[0].status == RowStatus.DELETED
    assert report.deliveries[1].outcomes[0].reason == "still_exists"
    assert sorted(r["global_key"] for r in catalog.rows()) == ["aws:bkt/b.jpg", "aws:bkt/c.jpg"]


def test_tag_policy_keeps_the_row(tmp_path: Path, catalog: CountingCatalog) -> None:
    s = settings(tmp_path, INGEST_DELETE_POLICY="tag")
    ingest([Delivery("c", (ev("a.jpg"),))], s, catalog, Deadline(5))
    report = ingest([Delivery("d", (ev("a.jpg", EventKind.DELETED, size=None),))], s, catalog, Deadline(5))
    assert report.outcomes[0].status == RowStatus.TAGGED
    (row,) = catalog.rows()
    assert row["deleted_at"] is not None
    report = ingest([Delivery("c2", (ev("a.jpg"),))], s, catalog, Deadline(5))
    assert report.outcomes[0].status == RowStatus.UPDATED and catalog.rows()[0]["deleted_at"] is None


def test_log_fields_name_everything_needed(tmp_path: Path, catalog: CountingCatalog) -> None:
    report = ingest([Delivery("m1", (ev("a.jpg"), ev("z.xyz")))], settings(tmp_path), catalog, Deadline(5))
    created, skipped = (o.log_fields() for o in report.outcomes)
    assert created == {
        "outcome": "created",
        "object": "aws://bkt/a.jpg",
        "delivery": "m1",
        "global_key": "aws:bkt/a.jpg",
    }
    assert skipped["outcome"] == "skipped" and skipped["reason"] == "unknown_media_type" and skipped["detail"]
