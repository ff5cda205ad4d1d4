"""`bucket-ingest invoke --cloud aws|gcp|azure EVENT.json [--registry URL]`: run one cloud's function on an event
file the way its platform would (like `sam local invoke -e`, without Docker), and print the function's response.

- aws: ``handlers.aws.lambda_handler`` with the Lambda runtime's own context class (``awslambdaric``); prints the
  JSON it returns, or Lambda's ``errorMessage`` / ``errorType`` when it raises.
- gcp: functions-framework's app on the Cloud Functions source file: a structured CloudEvent is posted to
  ``on_storage_event`` as ``application/cloudevents+json``; a Pub/Sub push envelope (or a bare Pub/Sub message,
  wrapped in one) goes to ``on_pubsub_push``; anything else is posted as JSON to ``on_storage_event``, which
  converts legacy background events or answers 400 as the platform would. Prints the HTTP status and body.
- azure: ``function_app.py``'s indexed ``on_blob_event``, once per event of the file (as the Functions host
  invokes it), each event bound by azure.functions' own Event Grid converter. Prints each invocation's result.

Settings come from the environment, as in the functions; ``--registry`` sets ``INGEST_REGISTRY``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import json
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bucket_ingest.eventfile import EventFileError, load_event_file
from shared.events import Cloud

LAMBDA_TIMEOUT_S = 60  # the deadline the Lambda context reports, as a function configured with Timeout: 60
LAMBDA_DEFAULTS: Mapping[str, str] = {
    "AWS_LAMBDA_FUNCTION_NAME": "bucket-ingest",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_REGION": "us-east-1",
}
GCP_SOURCE = "from handlers.gcp import on_pubsub_push, on_storage_event\n"  # Cloud Functions' main.py
GCP_SIGNATURE_TYPES: Mapping[str, str] = {"on_storage_event": "cloudevent", "on_pubsub_push": "http"}  # by target
PUSH_SUBSCRIPTION = "projects/local/subscriptions/bucket-ingest-invoke"


@dataclass(frozen=True, slots=True)
class Invocation:
    response: Any  # what the function (or its platform) answered, as JSON
    ok: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cloud", required=True, choices=[c.value for c in Cloud], help="the function's cloud")
    parser.add_argument("event", help="event file (JSON) as the cloud's function receives it; '-' for stdin")
    parser.add_argument("--registry", help="where rows go (sets INGEST_REGISTRY): labelbox://ID or sqlite:///PATH")


def run(args: argparse.Namespace) -> int:
    try:
        document = load_event_file(args.event)
    except EventFileError as exc:
        print(f"bucket-ingest invoke: {exc}", file=sys.stderr)
        return 2
    if args.registry:
        os.environ["INGEST_REGISTRY"] = args.registry
    with contextlib.redirect_stdout(sys.stderr):  # the function's log lines go to stderr, its response to stdout
        invocation = INVOKERS[Cloud(args.cloud)](document)
    print(json.dumps(invocation.response, indent=2, ensure_ascii=False))
    return 0 if invocation.ok else 1


# --------------------------------------------------------------------------------------------------------- AWS


def lambda_context(timeout_s: float = LAMBDA_TIMEOUT_S) -> Any:
    """The context object the Lambda runtime passes (awslambdaric's own class), for a fresh request id."""
    from awslambdaric.lambda_context import LambdaContext

    for name, value in LAMBDA_DEFAULTS.items():
        os.environ.setdefault(name, value)
    region, name = os.environ["AWS_REGION"], os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    return LambdaContext(
        invoke_id=str(uuid.uuid4()),
        client_context=None,
        cognito_identity=None,
        epoch_deadline_time_in_ms=int((time.time() + timeout_s) * 1000),
        invoked_function_arn=f"arn:aws:lambda:{region}:123456789012:function:{name}",
    )


def invoke_aws(document: Any) -> Invocation:
    context = lambda_context()  # first: it sets the Lambda variables the handler's logger reads
    from handlers.aws import lambda_handler

    try:
        return Invocation(lambda_handler(document, context), ok=True)
    except Exception as exc:  # Lambda reports a raised exception this way
        return Invocation({"errorMessage": str(exc), "errorType": type(exc).__name__}, ok=False)


# --------------------------------------------------------------------------------------------------------- GCP


def write_gcp_source(directory: Path) -> Path:
    """The ``main.py`` Cloud Functions loads (both entry points), in ``directory``; functions-framework puts the
    source's folder on sys.path, so it gets a folder of its own."""
    source = directory / "main.py"
    source.write_text(GCP_SOURCE, encoding="utf-8")
    return source


def gcp_app(source: Path, target: str) -> Any:
    """functions-framework's WSGI app for one entry point, as the Cloud Functions runtime builds it."""
    import functions_framework

    return functions_framework.create_app(  # type: ignore[no-untyped-call]
        target=target, source=str(source), signature_type=GCP_SIGNATURE_TYPES[target]
    )


def gcp_request(document: Any) -> tuple[str, bytes, dict[str, str]]:
    """(entry point, body, headers) of the request the platform would send for this event document."""
    if isinstance(document, Mapping) and "specversion" in document:
        return "on_storage_event", _json(document), {"Content-Type": "application/cloudevents+json"}
    if isinstance(document, Mapping) and isinstance(document.get("message"), Mapping):
        return "on_pubsub_push", _json(document), {"Content-Type": "application/json"}
    if isinstance(document, Mapping) and isinstance(document.get("attributes"), Mapping):
        envelope = {"message": document, "subscription": PUSH_SUBSCRIPTION}
        return "on_pubsub_push", _json(envelope), {"Content-Type": "application/json"}
    return "on_storage_event", _json(document), {"Content-Type": "application/json"}


def invoke_gcp(document: Any) -> Invocation:
    target, body, headers = gcp_request(document)
    with tempfile.TemporaryDirectory(prefix="bucket-ingest-gcp-") as folder:
        app = gcp_app(write_gcp_source(Path(folder)), target)
        response = app.test_client().post("/", data=body, headers=headers)
    text = response.get_data(as_text=True)
    try:
        shown: Any = json.loads(text)
    except ValueError:  # the framework's own pages (400, 500) are HTML: keep their text
        shown = html.unescape(re.sub(r"<[^>]+>", " ", text.replace("<br>", "\n"))).strip()
    return Invocation({"entry": target, "status": response.status_code, "body": shown}, ok=response.status_code < 300)


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


# ------------------------------------------------------------------------------------------------------- Azure


@functools.cache
def indexed_functions() -> dict[str, Any]:
    """``function_app.py``'s functions by name, indexed once as the Functions host does at start-up
    (azure.functions refuses to index an app twice)."""
    import function_app

    return {str(function.get_function_name()): function for function in function_app.app.get_functions()}


def indexed_function(name: str = "on_blob_event") -> Callable[..., Any]:
    """The user function the host calls for the function named ``name``."""
    try:
        user_function: Callable[..., Any] = indexed_functions()[name].get_user_function()
    except KeyError:
        raise LookupError(f"function_app.py declares no function named {name!r}") from None
    return user_function


def event_grid_binding(event: Any) -> Any:
    """The object the host's Event Grid trigger binding hands the function for one event (a func.EventGridEvent,
    or a func.CloudEvent for the CloudEvents schema), made by azure.functions' own converter."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})


def invoke_azure(document: Any) -> Invocation:
    # the host shows what the function logs; here, the log lines of INFO and up go to stderr
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    function = indexed_function()
    results = []
    for event in document if isinstance(document, list) else [document]:
        event_id = event.get("id") if isinstance(event, Mapping) else None
        try:
            binding = event_grid_binding(event)
        except Exception as exc:  # the host fails such an event before the function runs
            results.append({"id": event_id, "error": f"the trigger binding refused the event: {exc}"})
            continue
        try:
            function(binding)
        except Exception as exc:
            results.append({"id": event_id, "error": f"{type(exc).__name__}: {exc}"})
        else:
            results.append({"id": event_id, "result": "ok"})
    return Invocation({"invocations": results}, ok=all("error" not in r for r in results))


INVOKERS: Mapping[Cloud, Callable[[Any], Invocation]] = {
    Cloud.AWS: invoke_aws,
    Cloud.GCP: invoke_gcp,
    Cloud.AZURE: invoke_azure,
}
