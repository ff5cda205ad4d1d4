"""The Azure function registering in Labelbox (the local Labelbox-compatible endpoint): any failed row raises,
so Event Grid retries the event and finally dead-letters it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bucket_ingest.commands.invoke import event_grid_binding, indexed_function
from bucket_ingest.labelbox_endpoint import LabelboxEndpoint
from handlers import RedeliveryRequested
from handlers import azure as handler
from tests.support.handlers import blob_event, configured_function
from tests.support.labelbox import (
    dataset_id_fixture,  # noqa: F401 (fixture)
    labelbox_endpoint_fixture,  # noqa: F401 (fixture)
    labelbox_settings,
)


@pytest.fixture
def endpoint(
    labelbox_endpoint: LabelboxEndpoint, dataset_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LabelboxEndpoint]:
    """The local Labelbox endpoint, and the function registering in a dataset of it."""
    settings = labelbox_settings(labelbox_endpoint, dataset_id)
    with configured_function(handler, monkeypatch, tmp_path, **settings, INGEST_TIMEOUT_SECONDS="2"):
        yield labelbox_endpoint


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
