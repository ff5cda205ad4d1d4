"""The Google Cloud function through functions-framework's own app (``create_app(...).test_client()``), as the
Cloud Functions runtime builds it from ``main.py``: CloudEvents in binary and structured mode, legacy events the
framework converts, and Pub/Sub push requests to the HTTP entry point.

(The same function in a real ``functions-framework`` server process is in test_handler_gcp_server.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bucket_ingest.commands.invoke import gcp_request
from handlers import gcp
from tests import fixtures
from tests.support.handlers import (
    EVERYTHING,
    Catalog,
    configured_function,
    expected_outcome,
    gcp_clients_fixture,  # noqa: F401 (fixture)
    gcs_object,
    json_lines,
    modules_loaded_at_import,
    outcome_lines,
    post_event,
    push_envelope,
    storage_cloud_event,
)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    with configured_function(gcp, monkeypatch, tmp_path, INGEST_TIMEOUT_SECONDS="1") as catalog:
        yield catalog


def push(clients: dict[str, Any], body: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return clients["on_pubsub_push"].post("/", data=data, headers={"Content-Type": "application/json"})


def outcomes(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return outcome_lines(json_lines(capsys.readouterr().out))


@pytest.mark.parametrize("name", fixtures.names("gcp"))
def test_every_vendor_fixture_comes_to_its_expected_rows(
    name: str, clients: dict[str, Any], catalog: Catalog, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    for variable, value in EVERYTHING.items():
        monkeypatch.setenv(variable, value)
    target, body, headers = gcp_request(fixtures.load(name))
    response = clients[target].post("/", data=body, headers=headers)
    rows, skipped = expected_outcome(name)
    assert set(catalog.external_ids()) == rows
    if fixtures.expected()[name]["envelope"].startswith("cloudevent-binary body only"):
        # an object resource without its ce-* headers is not a CloudEvent: the framework answers 400
        assert response.status_code == 400
        assert b"parsing CloudEvent failed" in response.data
        assert outcomes(capsys) == []
        return
    assert response.status_code == 200
    lines = outcomes(capsys)
    assert len(lines) == len(fixtures.expected()[name]["records"])
    assert sorted(o["reason"] for o in lines if o["outcome"] == "skipped") == skipped


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_cloud_event_in_either_mode_registers_the_object(
    mode: str, clients: dict[str, Any], catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    response = post_event(clients, storage_cloud_event(gcs_object("photos/my cat é.jpg"), event_id="evt-7"), mode)
    assert (response.status_code, response.data) == (200, b"OK")
    (row,) = catalog.rows()
    assert row["external_id"] == "gcp:ingest-bucket/photos/my cat é.jpg"
    assert row["row_data"] == "gs://ingest-bucket/photos/my cat é.jpg"
    (line,) = outcomes(capsys)
    assert line == {
        "severity": "INFO",
        "message": "object outcome",
        "outcome": "created",
        "object": "gcp://ingest-bucket/photos/my cat é.jpg",
        "delivery": "evt-7",
        "global_key": row["global_key"],
    }


def test_a_request_that_is_not_a_cloud_event_gets_the_frameworks_400(clients: dict[str, Any], catalog: Catalog) -> None:
    response = clients["on_storage_event"].post("/", json=gcs_object("a.jpg"))
    assert response.status_code == 400
    assert b"parsing CloudEvent failed" in response.data
    assert clients["on_storage_event"].get("/").status_code == 405
    assert catalog.rows() == []


def test_an_eventarc_pubsub_cloud_event_carrying_a_notification_registers_the_object(
    clients: dict[str, Any], catalog: Catalog
) -> None:
    envelope = push_envelope(gcs_object("via-eventarc.jpg"), message_id="42")
    event = {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/p/topics/gcs-events",
        "id": "42",
        "data": envelope,
    }
    assert post_event(clients, event).status_code == 200
    assert catalog.external_ids() == ["gcp:ingest-bucket/via-eventarc.jpg"]


BAD_EVENTS = [
    ("malformed JSON", {"data": "{not json"}, "CloudEvent data is not JSON"),
    ("missing name", {"data": {"bucket": "b", "size": "1"}}, "object.name should be a non-empty string"),
    ("wrong type", {"data": {**gcs_object("a.jpg"), "size": "big"}}, "'size' should be an integer"),
    ("other service", {"type": "google.cloud.firestore.document.v1.written"}, "is not a Cloud Storage object event"),
    ("2 MB body", {"data": "x" * 2_000_000}, "CloudEvent data is not JSON"),
    ("control character", {"data": gcs_object("bell\x07.jpg")}, "control characters"),
]


@pytest.mark.parametrize(("case", "change", "reason"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_a_cloud_event_that_can_never_succeed_is_logged_and_acknowledged(
    case: str,
    change: dict[str, Any],
    reason: str,
    clients: dict[str, Any],
    catalog: Catalog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = {**storage_cloud_event(gcs_object("a.jpg")), **change}
    assert post_event(clients, event, mode="binary").status_code == 200
    (line,) = outcomes(capsys)
    assert line["outcome"] == "skipped" and reason in line["detail"]
    assert len(json.dumps(line)) < 2_000
    assert catalog.rows() == []


def test_a_retryable_failure_makes_the_platform_retry_the_event(
    clients: dict[str, Any], catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    event = storage_cloud_event(gcs_object("a.jpg"), event_id="evt-retry")
    with catalog.locked():
        response = post_event(clients, event)
    assert response.status_code == 500  # the framework's answer to a raised exception; Eventarc retries
    (line,) = outcomes(capsys)
    assert (line["severity"], line["outcome"], line["retryable"]) == ("WARNING", "failed", True)
    assert catalog.rows() == []
    assert post_event(clients, event).status_code == 200
    assert catalog.external_ids() == ["gcp:ingest-bucket/a.jpg"]


def test_pubsub_push_registers_acknowledges_and_asks_for_redelivery(clients: dict[str, Any], catalog: Catalog) -> None:
    body = push_envelope(gcs_object("pushed/a b.png"), message_id="m-1")
    with catalog.locked():
        response = push(clients, body)
    assert response.status_code == 503  # not a 2xx: Pub/Sub redelivers
    assert response.json == {"deliveries": 1, "redeliver": ["m-1"], "outcomes": {"failed": 1}}
    response = push(clients, body)
    assert response.status_code == 200
    assert response.json == {"deliveries": 1, "redeliver": [], "outcomes": {"created": 1}}
    assert catalog.external_ids() == ["gcp:ingest-bucket/pushed/a b.png"]


BAD_PUSHES = [
    ("malformed JSON", b'{"message": {', "event is not JSON"),
    ("no message", {"subscription": "projects/p/subscriptions/s"}, "not a Cloud Storage event"),
    ("missing attributes", {"message": {"data": "e30="}}, "Pub/Sub message.attributes should be a JSON object"),
    ("data not base64", {"message": {"attributes": {"eventType": "OBJECT_FINALIZE"}, "data": "!!"}}, "not base64"),
    ("other service", {"message": {"attributes": {"eventType": "SOMETHING_ELSE"}}}, "'SOMETHING_ELSE' is not a"),
    ("2 MB body", b"x" * 2_000_000, "event is not JSON"),
    ("control character", push_envelope(gcs_object("tab\there.jpg")), "control characters"),
]


@pytest.mark.parametrize(("case", "body", "reason"), BAD_PUSHES, ids=[c[0] for c in BAD_PUSHES])
def test_a_push_that_can_never_succeed_is_acknowledged_with_its_reason_logged(
    case: str, body: Any, reason: str, clients: dict[str, Any], catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    response = push(clients, body)
    assert response.status_code == 200
    assert response.json["redeliver"] == []
    (line,) = outcomes(capsys)
    assert line["outcome"] == "skipped" and reason in line["detail"], line
    assert catalog.rows() == []


def test_the_push_entry_point_answers_only_posts(clients: dict[str, Any], catalog: Catalog, capsys: Any) -> None:
    response = clients["on_pubsub_push"].get("/")
    assert response.status_code == 405
    assert outcomes(capsys) == []


def test_a_delete_notification_for_an_overwritten_generation_keeps_the_row(
    clients: dict[str, Any], catalog: Catalog, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("INGEST_DELETE_POLICY", "delete")
    gcp.INSTANCE.reset()
    assert push(clients, push_envelope(gcs_object("a.jpg", generation=1))).status_code == 200
    overwritten = push_envelope(gcs_object("a.jpg", generation=1), event_type="OBJECT_DELETE")
    overwritten["message"]["attributes"]["overwrittenByGeneration"] = "2"
    assert push(clients, overwritten).status_code == 200
    assert catalog.external_ids() == ["gcp:ingest-bucket/a.jpg"]
    assert outcomes(capsys)[-1]["reason"] == "ignored_event"


@pytest.mark.parametrize("order", [["a", "b", "c"] * 3, ["c", "a", "a", "b", "c", "a", "b", "b", "c"]])
def test_the_same_events_delivered_three_times_in_any_order_leave_one_row_per_object(
    order: list[str], clients: dict[str, Any], catalog: Catalog
) -> None:
    events = {key: storage_cloud_event(gcs_object(f"{key}.jpg"), event_id=f"evt-{key}") for key in "abc"}
    for i, key in enumerate(order):
        assert post_event(clients, events[key], "binary" if i % 2 else "structured").status_code == 200
    rows = catalog.rows()
    assert sorted(r["external_id"] for r in rows) == [f"gcp:ingest-bucket/{k}.jpg" for k in "abc"]
    assert all(r["writes"] == 1 for r in rows)


def test_a_bad_setting_fails_the_invocation_naming_the_variable(
    clients: dict[str, Any], catalog: Catalog, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("INGEST_INCLUDE", "*.jpg")
    monkeypatch.setenv("INGEST_SKIP_ZERO_BYTE", "perhaps")
    assert post_event(clients, storage_cloud_event(gcs_object("a.jpg"))).status_code == 500
    assert push(clients, push_envelope(gcs_object("a.jpg"))).status_code == 500
    errors = [r for r in json_lines(capsys.readouterr().out) if r["message"] == "invalid configuration"]
    assert len(errors) == 2
    assert all("INGEST_SKIP_ZERO_BYTE: 'perhaps' is not a boolean" in e["error"] for e in errors)
    assert {e["severity"] for e in errors} == {"ERROR"}
    monkeypatch.setenv("INGEST_SKIP_ZERO_BYTE", "true")
    assert post_event(clients, storage_cloud_event(gcs_object("a.jpg"))).status_code == 200


def test_importing_the_handler_needs_no_configuration_and_no_network() -> None:
    assert modules_loaded_at_import("handlers.gcp") == []
