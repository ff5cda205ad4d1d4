"""`bucket-ingest map --cloud aws|gcp|azure EVENT.json`: the payloads an event maps to, as JSON lines.

Nothing is registered. Settings come from the same environment variables as the functions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from bucket_ingest.eventfile import EventFileError, load_event_file
from shared.decision import Delete, Register, decide
from shared.events import Cloud, UnsupportedEvent, parse_document
from shared.settings import Settings, SettingsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cloud", required=True, choices=[c.value for c in Cloud], help="the function's cloud")
    parser.add_argument("event", help="event file (JSON) as the cloud's function receives it; '-' for stdin")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(os.environ)
        document = load_event_file(args.event)
    except (SettingsError, EventFileError) as exc:
        print(f"bucket-ingest map: {exc}", file=sys.stderr)
        return 2
    for delivery in parse_document(Cloud(args.cloud), document):
        for event in delivery.events:
            decision = decide(event, settings)
            if isinstance(decision, Register):
                line = {"action": "register", **decision.payload.as_dict()}
            elif isinstance(decision, Delete):
                line = {
                    "action": "tag" if decision.tag_only else "delete",
                    "global_key": decision.global_key,
                    "object": decision.event.location,
                }
            else:
                where = "" if isinstance(event, UnsupportedEvent) else event.location
                line = {
                    "action": "skip",
                    "reason": decision.reason.value,
                    "detail": decision.detail,
                    "object": where,
                }
            print(json.dumps(line, ensure_ascii=False))
    return 0
