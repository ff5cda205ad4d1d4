"""The Azure function registering in Labelbox (the local Labelbox-compatible endpoint): any failed row raises,
so Event Grid retries the event and finally dead-letters it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bucket_ingest.commands.invoke import event_grid_binding, indexed_function
from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, LabelboxEndpoint
from handlers import RedeliveryRequested
from handlers import azure as handler
from tests.support.handlers import Catalog, blob_event, function_env


@pytest.fixture
def endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabelboxEndpoint]:
    endpoint = LabelboxEndpoint().start()
    dataset = endpoint.create_dataset("ingest")
    function_env(monkeypatch, Catalog(tmp_path), INGEST_REGISTRY=f"labelbox://{dataset}", INGEST_TIMEOUT_SECONDS="2")
    monkeypatch.setenv("LABELBOX_ENDPOINT", endpoint.url)
    monkeypatch.setenv("LABELBOX_API_KEY", DEFAULT_API_KEY)
    handler.INSTANCE.reset()
    yield endpoint
    handler.INSTANCE.reset()
    endpoint.stop()


def test_an_outage_or_a_refused_row_raises_and_a_retry_registers(endpoint: LabelboxEndpoint) -> None:
    function = indexed_function("on_blob_event")
    event = event_grid_binding(blob_event("a.jpg", event_id="e-a"))
    endpoint.set_faults(error_rate=1.0, error_status=500)
    with pytest.raises(RedeliveryRequested, match=r"\(e-a\): azure://acct/ingest/a\.jpg"):
        function(event)
    endpoint.set_faults(error_rate=0.0, reject={"azure:acct/ingest/refused.jpg": "Invalid row data"})
    with pytest.raises(RedeliveryRequested, match="Invalid row data"):
        function(event_grid_binding(blob_event("refused.jpg", event_id="e-r")))
    function(event)
    assert [row["global_key"] for row in endpoint.store.rows()] == ["azure:acct/ingest/a.jpg"]
