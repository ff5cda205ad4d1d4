"""The Azure function as the Functions host sees it: ``function_app.py`` indexed with azure.functions (function
names, trigger bindings, the parameter types the binding accepts), then invoked with the objects the Event Grid
trigger binding makes (azure.functions' own converter) from vendor samples and built events.

No Azure Functions host can be installed here (core tools download from Microsoft's CDN; the Python worker
needs the .NET host), so the host's own indexing and invocation are not exercised.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.decorators.core import BindingDirection

from bucket_ingest.commands.invoke import event_grid_binding, indexed_function, indexed_functions
from handlers import RedeliveryRequested
from handlers import azure as handler
from shared.registries.sqlite import SqliteCatalog
from shared.settings import SettingsError
from tests import fixtures
from tests.support.handlers import (
    EVERYTHING,
    Catalog,
    blob_event,
    configured_function,
    expected_outcome,
    modules_loaded_at_import,
)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    with configured_function(handler, monkeypatch, tmp_path, INGEST_TIMEOUT_SECONDS="1") as catalog:
        yield catalog


@pytest.fixture
def outcomes(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The function's outcome lines so far (JSON messages on its logger, as the host receives them)."""

    def read() -> list[dict[str, Any]]:
        entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "bucket_ingest.azure"]
        return [entry for entry in entries if entry["message"] == "object outcome"]

    with caplog.at_level(logging.INFO, logger="bucket_ingest.azure"):
        yield read


def run(document: Any) -> list[Exception | None]:
    """Invoke the indexed function once per event, as the host does; what each invocation raised."""
    function = indexed_function("on_blob_event")
    raised: list[Exception | None] = []
    for event in document if isinstance(document, list) else [document]:
        try:
            function(event_grid_binding(event))
        except Exception as exc:
            raised.append(exc)
        else:
            raised.append(None)
    return raised


def test_function_app_declares_one_event_grid_function_the_binding_can_call() -> None:
    assert list(indexed_functions()) == ["on_blob_event"]
    function = indexed_functions()["on_blob_event"]
    trigger = function.get_trigger()
    assert trigger is not None
    assert trigger.get_dict_repr() == {"direction": BindingDirection.IN, "type": "eventGridTrigger", "name": "event"}
    assert function.get_bindings() == [trigger]
    # the parameter the binding fills has a type the binding's converter accepts (the worker checks this)
    parameter = inspect.signature(function.get_user_function()).parameters["event"]
    assert parameter.annotation is func.EventGridEvent
    assert meta.get_binding_registry().get("eventGridTrigger").check_input_type_annotation(parameter.annotation)
    assert json.loads(function.get_function_json())["bindings"][0]["type"] == "eventGridTrigger"


@pytest.mark.parametrize("name", fixtures.names("azure"))
def test_every_vendor_fixture_comes_to_its_expected_rows(
    name: str, catalog: Catalog, outcomes: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in EVERYTHING.items():
        monkeypatch.setenv(variable, value)
    assert all(raised is None for raised in run(fixtures.load(name)))
    rows, skipped = expected_outcome(name)
    assert set(catalog.external_ids()) == rows
    lines = outcomes()
    assert len(lines) == len(fixtures.expected()[name]["records"])
    assert sorted(o["reason"] for o in lines if o["outcome"] == "skipped") == skipped


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_both_schemas_are_bound_and_registered(schema: str, catalog: Catalog) -> None:
    event = blob_event("dir/my file+plus é.jpg", schema=schema)
    binding = event_grid_binding(event)
    assert isinstance(binding, func.CloudEvent if schema == "cloudevents" else func.EventGridEvent)
    assert run(event) == [None]
    (row,) = catalog.rows()
    assert row["external_id"] == "azure:acct/ingest/dir/my file+plus é.jpg"
    assert row["row_data"] == "https://acct.blob.core.windows.net/ingest/dir/my%20file%2Bplus%20%C3%A9.jpg"


def test_a_batch_of_events_is_registered_with_one_registry_call(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    register = SqliteCatalog.register

    def counted(self: SqliteCatalog, payloads: Any, deadline: Any) -> Any:
        calls.append(len(payloads))
        return register(self, payloads, deadline)

    monkeypatch.setattr(SqliteCatalog, "register", counted)
    events = [event_grid_binding(blob_event(f"batch/{i}.jpg", event_id=f"b{i}")) for i in range(5)]
    handler.handle(events)
    assert calls == [5]
    assert len(catalog.rows()) == 5


def test_bad_events_are_logged_and_the_good_ones_beside_them_still_register(
    catalog: Catalog, outcomes: Callable[[], list[dict[str, Any]]]
) -> None:
    good = blob_event("good/one.jpg", event_id="good-1")
    malformed = {**blob_event("x.jpg", event_id="bad-json"), "data": "{not json"}
    missing = {**blob_event("x.jpg", event_id="bad-missing"), "subject": None}
    missing["data"] = {k: v for k, v in missing["data"].items() if k != "url"}
    wrong_type = blob_event("x.jpg", event_id="bad-type")
    wrong_type["data"]["contentLength"] = "lots"
    other_service = {
        **blob_event("x.jpg", event_id="bad-service"),
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
    }
    big = {**blob_event("x.jpg", event_id="bad-big"), "data": "x" * 2_000_000}
    control = blob_event("bell\x07.jpg", event_id="bad-control")
    last = blob_event("good/two.jpg", event_id="good-2")
    bindings = [
        event_grid_binding(e) for e in (good, malformed, missing, wrong_type, other_service, big, control, last)
    ]
    handler.handle(bindings)  # nothing raised: none of these can succeed by retrying
    assert catalog.external_ids() == ["azure:acct/ingest/good/one.jpg", "azure:acct/ingest/good/two.jpg"]
    reasons = {o["delivery"]: o.get("detail", "") for o in outcomes()}
    assert "event data is not JSON" in reasons["bad-json"]
    assert "names no container and blob" in reasons["bad-missing"]
    assert "'contentLength' should be an integer" in reasons["bad-type"]
    assert "'Microsoft.Resources.ResourceWriteSuccess' is not a Blob Storage event" in reasons["bad-service"]
    assert "event data is not JSON" in reasons["bad-big"]
    assert "control characters" in reasons["bad-control"]
    assert all(len(json.dumps(o)) < 2_000 for o in outcomes())


def test_an_event_the_binding_cannot_even_read_fails_in_the_host_not_in_the_function() -> None:
    with pytest.raises(AttributeError):  # azure.functions' converter: a JSON string is not an event object
        event_grid_binding("just a string")


def test_a_retryable_failure_raises_so_that_event_grid_retries(catalog: Catalog) -> None:
    with catalog.locked():
        (raised,) = run(blob_event("later.jpg", event_id="evt-later"))
    assert isinstance(raised, RedeliveryRequested)
    assert "(evt-later): azure://acct/ingest/later.jpg: catalog busy" in str(raised)
    assert run(blob_event("later.jpg", event_id="evt-later")) == [None]
    assert catalog.external_ids() == ["azure:acct/ingest/later.jpg"]


@pytest.mark.parametrize("order", [["a", "b", "c"] * 3, ["b", "b", "a", "c", "a", "c", "c", "b", "a"]])
def test_the_same_events_delivered_three_times_in_any_order_leave_one_row_per_object(
    order: list[str], catalog: Catalog
) -> None:
    events = {key: blob_event(f"{key}.jpg", event_id=f"evt-{key}", schema="cloudevents") for key in "abc"}
    assert run([events[key] for key in order]) == [None] * len(order)
    rows = catalog.rows()
    assert sorted(r["external_id"] for r in rows) == [f"azure:acct/ingest/{k}.jpg" for k in "abc"]
    assert all(r["writes"] == 1 for r in rows)


def test_a_bad_setting_fails_the_invocation_naming_the_variable(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("INGEST_TIMEOUT_SECONDS", "forever")
    with caplog.at_level(logging.ERROR, logger="bucket_ingest.azure"):
        (raised,) = run(blob_event("a.jpg"))
    assert isinstance(raised, SettingsError)
    assert "INGEST_TIMEOUT_SECONDS: 'forever' is not a number of seconds" in str(raised)
    assert any("INGEST_TIMEOUT_SECONDS" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_importing_function_app_needs_no_configuration_and_no_network() -> None:
    assert modules_loaded_at_import("function_app") == []
