"""`bucket-ingest labelbox-endpoint [--port PORT] [--db PATH]`: serve a local Labelbox-compatible GraphQL endpoint.

It prints its URL and the settings that point the functions (and the official SDK) at it, then serves until
Ctrl-C. Rows, datasets and tasks live in the SQLite file ``--db``, so they survive a restart. Faults can be changed
while it runs: ``curl -X POST URL/_admin/faults -d '{"error_rate": 0.3, "throttle_rate": 0.1}'``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
from pathlib import Path

from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, Faults, LabelboxEndpoint

DEFAULT_DB = Path(tempfile.gettempdir()) / "bucket-ingest-labelbox.sqlite"
DEFAULT_DATASET = "local-dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"SQLite file (default {DEFAULT_DB})")
    parser.add_argument(
        "--dataset",
        action="append",
        help=f"a dataset id to have ready, with the default IAM integration (repeatable; default {DEFAULT_DATASET})",
    )
    parser.add_argument(
        "--faults", type=json.loads, default={}, help="fault settings as JSON, e.g. '{\"error_rate\": 0.3}'"
    )
    parser.add_argument("--task-seconds", type=float, default=0.0, help="how long upsert tasks stay IN_PROGRESS")


def run(args: argparse.Namespace) -> int:
    # The key it accepts: the one the functions will send when LABELBOX_API_KEY is set, else a fixed local key.
    from_env = os.environ.get("LABELBOX_API_KEY")
    try:
        faults = Faults.from_json(args.faults)
    except (TypeError, ValueError) as exc:
        print(f"bucket-ingest labelbox-endpoint: --faults: {exc}")
        return 2
    try:
        endpoint = LabelboxEndpoint(
            args.db,
            port=args.port,
            api_keys=(from_env or DEFAULT_API_KEY,),
            faults=faults,
            task_seconds=args.task_seconds,
        )
    except OSError as exc:
        print(f"bucket-ingest labelbox-endpoint: cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}")
        return 1
    datasets = args.dataset or [DEFAULT_DATASET]
    for dataset in datasets:
        if endpoint.store.dataset(dataset) is None:
            endpoint.create_dataset(dataset, dataset)
    endpoint.start()
    key_note = "the key in LABELBOX_API_KEY" if from_env else f"API key {DEFAULT_API_KEY!r}"
    print(f"Labelbox-compatible endpoint at {endpoint.url} (data in {args.db}; accepts {key_note})")
    print(f"  export LABELBOX_ENDPOINT={endpoint.url}")
    if not from_env:
        print(f"  export LABELBOX_API_KEY={DEFAULT_API_KEY}")
    print(f"  export INGEST_REGISTRY=labelbox://{datasets[0]}")
    print(f"  faults: {endpoint.base_url}/_admin/faults   requests: {endpoint.base_url}/_admin/requests")
    print("Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.stop()
    return 0
