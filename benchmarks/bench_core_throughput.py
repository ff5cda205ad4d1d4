"""Records/s for raw SQS-wrapped S3 events → payloads on one core, beside a bare standard-library baseline.

The baseline does the minimum any correct mapper must: json.loads of each SQS body, unquote_plus of the key,
quote of the key, and an f-string URI. The core does everything a deployed function does before the registry
call: splits the Lambda event, parses each envelope into ObjectEvents, applies the filters, media types and
routing, and builds the payload (URI, global key, external id, metadata). Goal: at least half the baseline.

Both run in interleaved rounds on one pinned core; the ratio uses each side's best round (as timeit does: the
least disturbed run is the truest), and the medians are printed beside it for transparency.

Run: .venv/bin/python benchmarks/bench_core_throughput.py
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from shared.decision import Register, decide
from shared.events.aws import split_lambda_event
from shared.settings import Settings

MESSAGES_PER_EVENT = 10  # SQS batch size of the template's default
EVENTS = 2_000
ROUNDS = 15

NAMES = [
    "IMG_{:04d}.JPG",
    "clips/2024/take {:d}.mp4",
    "docs/report+final ({:d}).pdf",
    "audio/é-{:d}.wav",
    "deep/a/b/c/d/e/f/g/frame_{:06d}.png",
    "notes/日本-{:d}.txt",
]


def record(i: int) -> dict[str, Any]:
    key = random.choice(NAMES).format(i)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-05-01T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ingest",
            "bucket": {
                "name": "media-bucket",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::media-bucket",
            },
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": 1024 + i,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": f"{i:016X}",
            },
        },
    }


def sqs_event(first: int) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{first + n}",
                "receiptHandle": "AQEB",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
                "awsRegion": "us-east-1",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "body": json.dumps({"Records": [record(first + n)]}),
            }
            for n in range(MESSAGES_PER_EVENT)
        ]
    }


def baseline(events: list[dict[str, Any]]) -> int:
    count = 0
    for event in events:
        for message in event["Records"]:
            for r in json.loads(message["body"])["Records"]:
                key = unquote_plus(r["s3"]["object"]["key"])
                _ = f"https://{r['s3']['bucket']['name']}.s3.{r['awsRegion']}.amazonaws.com/{quote(key)}"
                count += 1
    return count


def core(events: list[dict[str, Any]], settings: Settings) -> int:
    count = 0
    for event in events:
        for delivery in split_lambda_event(event).deliveries:
            for parsed in delivery.events:
                count += isinstance(decide(parsed, settings), Register)
    return count


def rate(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    n = fn(*args)
    return float(n / (time.perf_counter() - start))


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    random.seed(7)
    events = [sqs_event(i * MESSAGES_PER_EVENT) for i in range(EVENTS)]
    settings = Settings.from_env({"INGEST_REGISTRY": "sqlite:///unused.sqlite"})
    total = EVENTS * MESSAGES_PER_EVENT
    assert core(events, settings) == total == baseline(events), "every record must map to a payload"
    base_rates, core_rates = [], []
    for _ in range(ROUNDS):  # interleaved, so both see the same machine noise
        base_rates.append(rate(baseline, events))
        core_rates.append(rate(core, events, settings))
    base, ours = max(base_rates), max(core_rates)
    print(
        f"records per round: {total:,} ({EVENTS:,} SQS events x {MESSAGES_PER_EVENT} messages), {ROUNDS} rounds, "
        "one core"
    )
    print(
        f"baseline (json.loads, unquote_plus, quote, f-string): {base:>10,.0f} records/s best, "
        f"{statistics.median(base_rates):>10,.0f} median"
    )
    print(
        f"bucket-ingest core (event -> decision -> payload):    {ours:>10,.0f} records/s best, "
        f"{statistics.median(core_rates):>10,.0f} median"
    )
    print(
        f"ratio (best rounds): {ours / base:.2f} of the baseline (medians: "
        f"{statistics.median(core_rates) / statistics.median(base_rates):.2f}); goal >= 0.50: "
        f"{'met' if ours >= base / 2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
