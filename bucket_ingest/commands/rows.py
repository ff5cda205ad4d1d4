"""`bucket-ingest rows [--registry URL] [--json]`: the rows a registry holds, as a table or a JSON array.

- ``sqlite:///PATH``: every row of the embedded catalog (rows tagged deleted are marked in the table).
- ``labelbox://DATASET_ID``: the dataset's rows through Labelbox's API (``datasetDataRows``, as the SDK's
  ``Dataset.data_rows`` reads them), with the key and endpoint from LABELBOX_API_KEY[_SECRET] and
  LABELBOX_ENDPOINT; the same works against `bucket-ingest labelbox-endpoint`. Labelbox does not return the
  media type there, and metadata comes back by schema id (named through INGEST_METADATA_SCHEMAS when it maps it).

JSON objects carry the payload fields: global_key, row_data, media_type, external_id, dataset_id, metadata.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from shared.deadline import Deadline
from shared.settings import Settings, SettingsError

PAYLOAD_FIELDS = ("global_key", "row_data", "media_type", "external_id", "dataset_id", "metadata")
PAGE_SIZE = 500  # the SDK's page for datasetDataRows
LIST_SECONDS = 120.0
_DATASET_ROWS = (
    "query BucketIngestDatasetRows($id: ID!, $from: ID, $first: Int) {datasetDataRows(id: $id, from: $from, "
    "first: $first) {nodes {id globalKey externalId rowData customMetadata {schemaId value}} "
    "pageInfo {hasNextPage startCursor}}}"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", help="labelbox://DATASET_ID or sqlite:///PATH (default: INGEST_REGISTRY)")
    parser.add_argument("--json", action="store_true", help="print a JSON array of the payload fields")


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.registry:
        env["INGEST_REGISTRY"] = args.registry
    try:
        settings = Settings.from_env(env)
        rows = _rows(settings)
    except (SettingsError, RowsError) as exc:
        print(f"bucket-ingest rows: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{k: row.get(k) for k in PAYLOAD_FIELDS} for row in rows], indent=2, ensure_ascii=False))
    else:
        print(_table(rows))
    return 0


class RowsError(Exception):
    pass


def _rows(settings: Settings) -> list[dict[str, Any]]:
    if settings.registry_url.startswith("sqlite://"):
        from shared.registries.sqlite import SqliteCatalog, path_from_url

        if not path_from_url(settings.registry_url).exists():
            raise RowsError(f"no catalog at {path_from_url(settings.registry_url)}: nothing registered yet")
        return SqliteCatalog.from_url(settings.registry_url).rows()
    return _labelbox_rows(settings)


def _labelbox_rows(settings: Settings) -> list[dict[str, Any]]:
    from shared.registries.labelbox import LabelboxApi, LabelboxError
    from shared.secrets import SecretError
    from shared.transport import TransportError

    dataset = settings.default_dataset or ""
    api = LabelboxApi(settings.labelbox_endpoint, settings.api_key, settings.api_key_secret)
    names = {schema_id: name for name, schema_id in settings.metadata_schemas.items()}
    deadline = Deadline(LIST_SECONDS)
    rows, cursor = [], None
    try:
        while True:
            data = api.execute(_DATASET_ROWS, {"id": dataset, "from": cursor, "first": PAGE_SIZE}, deadline)
            page = data.get("datasetDataRows") or {}
            for node in page.get("nodes") or []:
                rows.append(
                    {
                        "global_key": node.get("globalKey"),
                        "row_data": node.get("rowData"),
                        "media_type": None,
                        "external_id": node.get("externalId"),
                        "dataset_id": dataset,
                        "metadata": {
                            names.get(m["schemaId"], m["schemaId"]): m.get("value")
                            for m in node.get("customMetadata") or []
                        },
                    }
                )
            cursor = (page.get("pageInfo") or {}).get("startCursor")
            if not cursor:
                return rows
    except (LabelboxError, TransportError, SecretError) as exc:
        raise RowsError(f"could not list labelbox://{dataset}: {exc}") from None


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no rows"
    header = ("GLOBAL KEY", "MEDIA", "DATASET", "ROW DATA")
    lines = [
        (
            str(row.get("global_key") or "-") + (" [tagged deleted]" if row.get("deleted_at") else ""),
            str(row.get("media_type") or "-"),
            str(row.get("dataset_id") or "-"),
            str(row.get("row_data") or "-"),
        )
        for row in rows
    ]
    widths = [min(max(len(line[i]) for line in [header, *lines]), cap) for i, cap in enumerate((70, 14, 28, 10_000))]

    def fit(cells: tuple[str, ...]) -> str:
        text = "  ".join(c[: w - 1] + "…" if len(c) > w else c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return text.rstrip()

    plural = "" if len(rows) == 1 else "s"
    return "\n".join([fit(header), *(fit(line) for line in lines), f"{len(rows)} row{plural}"])
