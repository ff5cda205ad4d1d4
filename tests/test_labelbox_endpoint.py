"""The local endpoint is faithful to Labelbox as the official SDK sees it, and our client speaks the SDK's wire format.

The SDK (labelbox 7.17.0, a test-only dependency) runs its own operations against the endpoint unchanged; then the
SDK's upsert and ours go to the same endpoint and their requests are compared field by field.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import labelbox as lb
import pytest
from labelbox.schema.data_row_metadata import DataRowMetadata, DataRowMetadataField
from labelbox.schema.identifiable import GlobalKey
from lbox.exceptions import AuthenticationError, InvalidQueryError, ResourceNotFoundError

from bucket_ingest.labelbox_endpoint import LabelboxEndpoint
from shared.deadline import Deadline
from shared.registries.base import RowStatus
from shared.registries.labelbox import TAG_SCHEMA_ID
from tests.support.labelbox import (  # noqa: F401 (fixtures)
    API_KEY,
    dataset_id_fixture,
    labelbox_endpoint_fixture,
    payload,
    registry,
    rows_by_key,
    running_endpoint,
)

URL = "https://bucket.s3.us-east-1.amazonaws.com/sdk/{}.jpg"


@pytest.fixture
def client(labelbox_endpoint: LabelboxEndpoint) -> lb.Client:
    return lb.Client(api_key=API_KEY, endpoint=labelbox_endpoint.url)


@pytest.mark.slow  # the SDK sleeps 2 s before each task poll
def test_the_sdk_runs_its_data_row_operations_unchanged(labelbox_endpoint: LabelboxEndpoint, client: lb.Client) -> None:
    dataset = client.create_dataset(name="sdk dataset")  # attaches the default IAM integration and validates it
    assert client.get_dataset(dataset.uid).name == "sdk dataset"
    assert labelbox_endpoint.store.validate_dataset(dataset.uid)["valid"] is True

    task = dataset.create_data_rows(
        [
            {"row_data": URL.format(1), "global_key": "sdk/1", "external_id": "one", "media_type": "IMAGE"},
            {"row_data": URL.format(2), "global_key": "sdk/2"},
        ]
    )
    task.wait_till_done()
    assert (task.status, task.errors) == ("COMPLETE", None)
    assert sorted(r["global_key"] for r in task.result) == ["sdk/1", "sdk/2"]

    # Create semantics: a key that exists (compared case-insensitively) fails that row only.
    task = dataset.create_data_rows([{"row_data": URL.format(9), "global_key": "SDK/1"}, {"row_data": URL.format(3)}])
    task.wait_till_done()
    assert task.status == "COMPLETE"
    assert [e["message"] for e in task.failed_data_rows] == ["Duplicate global key: 'SDK/1'"]

    # Upsert by global key: an update, a creation, and a refused row.
    task = dataset.upsert_data_rows(
        [
            {"key": GlobalKey("sdk/1"), "row_data": URL.format("1-v2")},
            {"key": GlobalKey("sdk/4"), "row_data": URL.format(4), "global_key": "sdk/4"},
            {"key": GlobalKey("bad key "), "row_data": URL.format(5), "global_key": "bad key "},
        ]
    )
    task.wait_till_done()
    failed = task.failed_data_rows
    assert task.status == "COMPLETE" and len(failed) == 1
    assert failed[0]["failedDataRows"][0]["globalKey"] == "bad key "
    assert failed[0]["message"].startswith("Invalid global key")

    found = client.get_data_row_ids_for_global_keys(["sdk/1", "sdk/4", "missing"])
    assert found["status"] == "PARTIAL SUCCESS"
    assert found["errors"] == [{"global_key": "missing", "error": "Data Row not found"}]
    ids = found["results"]
    assert ids[2] == "" and all(ids[:2])
    rows = [client.get_data_row(row_id) for row_id in ids[:2]]
    assert (rows[0].global_key, rows[0].row_data, rows[0].external_id) == ("sdk/1", URL.format("1-v2"), "one")

    lb.DataRow.bulk_delete(rows)
    assert set(rows_by_key(labelbox_endpoint)) == {"sdk/2", None}
    task = dataset.create_data_rows([{"row_data": URL.format(1), "global_key": "sdk/1"}])  # the key is free again
    task.wait_till_done()
    assert task.errors is None
    assert client.get_dataset(dataset.uid).row_count == 3


def test_the_sdk_sees_labelbox_errors(labelbox_endpoint: LabelboxEndpoint, client: lb.Client) -> None:
    with pytest.raises(ResourceNotFoundError):
        client.get_dataset("cnosuchdataset000000000000")
    with pytest.raises(InvalidQueryError, match='Cannot query field "nosuch" on type "Query"'):
        client.execute("query Q { nosuch { id } }")
    with pytest.raises(AuthenticationError):
        lb.Client(api_key="wrong", endpoint=labelbox_endpoint.url).get_dataset("x")


def test_the_sdk_metadata_ontology_and_tags(labelbox_endpoint: LabelboxEndpoint, client: lb.Client) -> None:
    dataset = client.create_dataset(name="metadata", iam_integration=None)
    task = dataset.create_data_rows(
        [{"row_data": URL.format(1), "global_key": "m/1", "metadata_fields": [{"name": "tag", "value": "first"}]}]
    )
    task.wait_till_done()
    assert task.errors is None
    [row] = labelbox_endpoint.store.rows()
    assert row["metadata"] == [{"schemaId": TAG_SCHEMA_ID, "value": "first"}]
    assert client.get_data_row(row["id"]).metadata_fields[0]["name"] == "tag"

    # The SDK's metadata upsert and our "tag" delete policy send the same mutation, shaped alike.
    labelbox_endpoint.clear_requests()
    ontology = client.get_data_row_metadata_ontology()
    field = DataRowMetadataField(schema_id=TAG_SCHEMA_ID, value="by the sdk")
    assert ontology.bulk_upsert([DataRowMetadata(data_row_id=row["id"], fields=[field])]) == []
    assert labelbox_endpoint.store.rows()[0]["metadata"] == [{"schemaId": TAG_SCHEMA_ID, "value": "by the sdk"}]
    [sdk_call] = [
        f for e in labelbox_endpoint.requests() for f in e["fields"] if f["name"] == "upsertDataRowCustomMetadata"
    ]
    labelbox_endpoint.clear_requests()
    assert registry(labelbox_endpoint).mark_deleted(["m/1"], Deadline(10))[0].status is RowStatus.TAGGED
    [our_call] = [
        f for e in labelbox_endpoint.requests() for f in e["fields"] if f["name"] == "upsertDataRowCustomMetadata"
    ]
    assert _shape(_without_nones(our_call["arguments"])) == _shape(_without_nones(sdk_call["arguments"]))
    assert set(our_call["selection"]) <= set(sdk_call["selection"])
    assert labelbox_endpoint.store.rows()[0]["metadata"] == [{"schemaId": TAG_SCHEMA_ID, "value": "deleted"}]


def _shape(value: Any) -> Any:
    """A value's structure: keys kept, leaves replaced by their type."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def _uploads(endpoint: LabelboxEndpoint, log: list[dict[str, Any]]) -> list[Any]:
    return [endpoint.upload_json(e["upload"]["file_id"]) for e in log if e.get("upload")]


def _without_nones(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: _without_nones(v) for k, v in item.items() if v is not None}
    if isinstance(item, list):
        return [_without_nones(v) for v in item]
    return item


def test_our_upsert_sends_what_the_sdk_sends(
    labelbox_endpoint: LabelboxEndpoint, client: lb.Client, dataset_id: str
) -> None:
    schema_id = labelbox_endpoint.store.upsert_schema("content type", "CustomMetadataString")["id"]
    item = payload(1, dataset_id, metadata={"content_type": "image/jpeg", "size": 5})
    ours = registry(labelbox_endpoint, metadata_schemas={"content_type": schema_id})
    ours.register([payload(0, dataset_id)], Deadline(10))  # warm: user id, dataset and ontology known

    labelbox_endpoint.clear_requests()
    task = client.get_dataset(dataset_id).upsert_data_rows(
        [
            {
                "key": GlobalKey(item.global_key),
                "row_data": item.row_data,
                "global_key": item.global_key,
                "external_id": item.external_id,
                "media_type": "IMAGE",
                "metadata_fields": [{"schema_id": schema_id, "value": "image/jpeg"}],
            }
        ]
    )
    task.wait_till_done()
    assert task.failed_data_rows is None
    sdk_log = labelbox_endpoint.requests()

    labelbox_endpoint.clear_requests()
    assert ours.register([item], Deadline(10))[0].status is RowStatus.UPSERTED
    our_log = labelbox_endpoint.requests()

    # Same operations, in the same order, each with arguments of the same shape; we ask for a subset of the
    # fields the SDK asks for. The SDK's extra requests (dataset, ontology, user, a second failed-imports page)
    # are what we cache per warm instance or skip.
    sdk_by_name: dict[str, list[dict[str, Any]]] = {}
    for entry in sdk_log:
        for field in entry["fields"]:
            sdk_by_name.setdefault(field["name"], []).append(field)
    names = [f["name"] for e in our_log for f in e["fields"]]
    assert names == ["uploadFile", "uploadFile", "upsertDataRows", "user", "failedDataRowImports"]
    sdk_names = [f["name"] for e in sdk_log for f in e["fields"]]
    positions = [sdk_names.index(n, sdk_names.index(names[i - 1]) + 1 if i else 0) for i, n in enumerate(names[:3])]
    assert positions == sorted(positions)
    for entry in our_log:
        [field] = entry["fields"]
        twins = [t for t in sdk_by_name[field["name"]] if _shape(t["arguments"]) == _shape(field["arguments"])]
        assert twins, f"no SDK request like our {field['name']}{field['arguments']}"
        assert any(set(field["selection"]) <= set(t["selection"]) for t in twins), field

    # The same upload files: identical items, manifests with the same fields.
    sdk_chunk, sdk_manifest = _uploads(labelbox_endpoint, sdk_log)
    our_chunk, our_manifest = _uploads(labelbox_endpoint, our_log)
    assert _without_nones(our_chunk) == _without_nones(sdk_chunk)
    assert our_chunk[0]["id"] == {"type": "GKEY", "value": item.global_key}
    assert set(our_manifest) == set(sdk_manifest) == {"source", "item_count", "chunk_uris"}
    assert (our_manifest["source"], our_manifest["item_count"]) == (sdk_manifest["source"], sdk_manifest["item_count"])
    assert len(our_log) < len(sdk_log)


def test_faults_change_at_run_time_through_the_admin_route(labelbox_endpoint: LabelboxEndpoint) -> None:
    def admin(method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(labelbox_endpoint.base_url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    assert admin("POST", "/_admin/faults", {"error_rate": 1.0, "error_status": 502})["error_rate"] == 1.0
    assert admin("GET", "/_admin/faults")["error_status"] == 502
    graphql = urllib.request.Request(
        labelbox_endpoint.url, data=b'{"query": "{user {id}}"}', headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(graphql, timeout=5)
    assert failure.value.code == 502
    admin("POST", "/_admin/faults", {"error_rate": 0.0})
    with urllib.request.urlopen(graphql, timeout=5) as answer:
        assert json.loads(answer.read())["data"]["user"]["id"] == labelbox_endpoint.store.user_id
    assert [e["fault"] for e in admin("GET", "/_admin/requests")] == ["error", None]
    assert admin("POST", "/_admin/datasets", {"name": "n", "id": "cdataset"})["id"] == "cdataset"
    with pytest.raises(urllib.error.HTTPError):
        admin("POST", "/_admin/faults", {"no_such_fault": 1})


def test_held_tasks_complete_once_released(labelbox_endpoint: LabelboxEndpoint, dataset_id: str) -> None:
    labelbox_endpoint.set_faults(hold_tasks=True)
    task = labelbox_endpoint.start_task("http://nowhere/files/none/manifest.json")
    time.sleep(0.1)
    assert labelbox_endpoint.store.task(task["id"])["status"] == "IN_PROGRESS"
    labelbox_endpoint.set_faults(hold_tasks=False)
    deadline = time.monotonic() + 5
    while labelbox_endpoint.store.task(task["id"])["status"] == "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert labelbox_endpoint.store.task(task["id"])["status"] == "FAILED"  # its manifest does not exist


def test_rows_survive_a_restart_on_the_same_database(tmp_path: Path) -> None:
    db = tmp_path / "endpoint.sqlite"
    with running_endpoint(db=db) as first:
        dataset = first.create_dataset("kept")
        registry(first).register([payload(1, dataset)], Deadline(10))
    with running_endpoint(db=db) as second:
        assert [r["global_key"] for r in second.store.rows()] == [payload(1, dataset).global_key]
        assert second.store.dataset(dataset) is not None


@pytest.fixture
def two_endpoints() -> Iterator[tuple[LabelboxEndpoint, LabelboxEndpoint]]:
    with running_endpoint() as a, running_endpoint() as b:
        yield a, b


def test_endpoints_are_independent_and_bind_loopback(two_endpoints: tuple[LabelboxEndpoint, LabelboxEndpoint]) -> None:
    a, b = two_endpoints
    assert a.url != b.url and a.url.startswith("http://127.0.0.1:")
    a.create_dataset("only in a", "cdataseta")
    assert b.store.dataset("cdataseta") is None
