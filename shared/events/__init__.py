"""Storage events from the three clouds, reduced to ``ObjectEvent``s (one parser module per cloud)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.events import aws, azure, gcp
from shared.events.model import Cloud, Delivery, EventKind, ObjectEvent, ParsedEvent, UnsupportedEvent

__all__ = [
    "Cloud",
    "Delivery",
    "EventKind",
    "ObjectEvent",
    "ParsedEvent",
    "UnsupportedEvent",
    "parse_document",
]


def _aws(document: Any) -> list[Delivery]:
    return list(aws.split_lambda_event(document).deliveries)


def _single(parse: Callable[[Any], list[ParsedEvent]]) -> Callable[[Any], list[Delivery]]:
    return lambda document: [Delivery("event", tuple(parse(document)))]


DOCUMENT_PARSERS: Mapping[Cloud, Callable[[Any], list[Delivery]]] = {
    Cloud.AWS: _aws,
    Cloud.GCP: _single(gcp.parse),
    Cloud.AZURE: _single(azure.parse),
}


def parse_document(cloud: Cloud, document: Any) -> list[Delivery]:
    """An event document as its cloud's function receives it (a Lambda event, a CloudEvent or Pub/Sub message,
    an Event Grid delivery), cut into the units the platform retries."""
    return DOCUMENT_PARSERS[cloud](document)
