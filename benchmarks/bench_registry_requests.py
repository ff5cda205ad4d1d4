"""HTTP requests and wall time to register rows: our Labelbox client beside the official SDK, same local endpoint.

Ours registers batches of 1, 10, 1,000 and 10,000 rows (one bulk upsert each, after a first batch that also
fetches the user id and dataset once per warm instance). The baseline is the SDK's ``Dataset.create_data_row``,
one row per call as per-event code would use it, measured on fewer rows (each call sleeps ≥ 2 s in
``wait_till_done``) and reported per row; the SDK's own bulk ``upsert_data_rows`` is shown too. Requests are
counted by the endpoint (every HTTP request it received); the endpoint runs in this process, with no faults.

Run: ``.venv/bin/python benchmarks/bench_registry_requests.py [--sdk-rows 10]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bucket_ingest.labelbox_endpoint import DEFAULT_API_KEY, LabelboxEndpoint
from shared.deadline import Deadline
from shared.media_types import MediaType
from shared.payloads import Payload
from shared.registries.base import RowStatus
from shared.registries.labelbox import LabelboxRegistry
from shared.secrets import Secret

SIZES = (1, 10, 1_000, 10_000)


def payloads(prefix: str, count: int, dataset: str) -> list[Payload]:
    return [
        Payload(
            global_key=f"aws:bench/{prefix}/{n}.jpg",
            row_data=f"https://bench.s3.us-east-1.amazonaws.com/{prefix}/{n}.jpg",
            external_id=f"aws:bench/{prefix}/{n}.jpg",
            dataset_id=dataset,
            media_type=MediaType.IMAGE,
        )
        for n in range(count)
    ]


def line(label: str, rows: int, requests: int, seconds: float) -> str:
    return (
        f"{label:<34} {rows:>7} {requests:>9} {seconds:>9.2f} {requests / rows:>13.3f} {1000 * seconds / rows:>10.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sdk-rows", type=int, default=10, help="rows the SDK creates one call each (default 10)")
    parser.add_argument("--sdk-bulk-rows", type=int, default=1_000, help="rows in the SDK's bulk upsert (0: skip)")
    args = parser.parse_args()

    with LabelboxEndpoint() as endpoint:
        dataset = endpoint.create_dataset("bench")
        print(f"endpoint {endpoint.url} (in process, SQLite in memory, no faults)")
        print(f"{'client':<34} {'rows':>7} {'requests':>9} {'wall s':>9} {'requests/row':>13} {'ms/row':>10}")

        ours = LabelboxRegistry(endpoint.url, key=Secret(DEFAULT_API_KEY))
        for label, size, prefix in [("ours: register, cold instance", 1, "cold")] + [
            (f"ours: register batch of {n:,}", n, f"warm{n}") for n in SIZES
        ]:
            batch = payloads(prefix, size, dataset)
            endpoint.clear_requests()
            started = time.perf_counter()
            results = ours.register(batch, Deadline(120))
            elapsed = time.perf_counter() - started
            if {r.status for r in results} != {RowStatus.UPSERTED}:
                print(f"unexpected results for {label}: {results[:3]}")
                return 1
            print(line(label, size, len(endpoint.requests()), elapsed))

        import labelbox as lb  # the baseline; imported here so its cost stays out of the figures above
        from labelbox.schema.identifiable import GlobalKey

        client = lb.Client(api_key=DEFAULT_API_KEY, endpoint=endpoint.url)
        sdk_dataset = client.get_dataset(dataset)
        endpoint.clear_requests()
        started = time.perf_counter()
        for item in payloads("sdk-single", args.sdk_rows, dataset):
            sdk_dataset.create_data_row(
                row_data=item.row_data, global_key=item.global_key, external_id=item.external_id, media_type="IMAGE"
            )
        elapsed = time.perf_counter() - started
        print(line(f"SDK: create_data_row x {args.sdk_rows}", args.sdk_rows, len(endpoint.requests()), elapsed))

        if args.sdk_bulk_rows:
            items = [
                {
                    "key": GlobalKey(p.global_key),
                    "row_data": p.row_data,
                    "global_key": p.global_key,
                    "external_id": p.external_id,
                    "media_type": "IMAGE",
                }
                for p in payloads("sdk-bulk", args.sdk_bulk_rows, dataset)
            ]
            endpoint.clear_requests()
            started = time.perf_counter()
            task = sdk_dataset.upsert_data_rows(items)
            task.wait_till_done()
            assert task.failed_data_rows is None
            elapsed = time.perf_counter() - started
            print(
                line(
                    f"SDK: upsert_data_rows of {args.sdk_bulk_rows:,}",
                    args.sdk_bulk_rows,
                    len(endpoint.requests()),
                    elapsed,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
