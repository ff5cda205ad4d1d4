"""Careful reading of vendor JSON: every failure names the field and what was there instead."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from shared.events.model import ObjectEvent, ParsedEvent, UnsupportedEvent

MAX_SHOWN = 60  # characters of an unexpected value quoted back in a message


class EventShapeError(ValueError):
    """The input is not shaped like the event it claims to be; the message says where and how."""


def shown(value: Any) -> str:
    """A short, safe rendering of an unexpected value for a message."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def load_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventShapeError(f"{what} is not JSON ({exc.__class__.__name__}: {exc})") from None


def as_object(value: Any, what: str) -> Mapping[str, Any]:
    """A JSON object, given as one or as its text."""
    if isinstance(value, str | bytes):
        value = load_json(value, what)
    if type(value) is dict or isinstance(value, Mapping):  # dict first: the Mapping ABC check is slower
        return value
    raise EventShapeError(f"{what} should be a JSON object, got {type(value).__name__} {shown(value)}")


def child(parent: Mapping[str, Any], name: str, what: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if type(value) is dict:  # the common case; the message below is only built when needed
        return value
    if name not in parent:
        raise EventShapeError(f"{what} has no '{name}'")
    return as_object(value, f"{what}.{name}")


def text(parent: Mapping[str, Any], name: str, what: str) -> str:
    """A required, non-empty string field."""
    value = parent.get(name)
    if not isinstance(value, str) or not value:
        found = "nothing" if value is None else shown(value)
        raise EventShapeError(f"{what}.{name} should be a non-empty string, got {found}")
    return value


def optional_text(parent: Mapping[str, Any], name: str) -> str | None:
    """A string field that may be absent; numbers are accepted as their decimal text (generations)."""
    value = parent.get(name)
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    raise EventShapeError(f"'{name}' should be a string, got {shown(value)}")


def optional_int(parent: Mapping[str, Any], name: str) -> int | None:
    """A non-negative integer that vendors send as a JSON number or as a decimal string (int64 in JSON)."""
    value = parent.get(name)
    if type(value) is int and value >= 0:
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise EventShapeError(f"'{name}' should be an integer, got {shown(value)}")
    if isinstance(value, int):
        number = value
    elif (isinstance(value, str) and value.isascii() and value.isdigit()) or (
        isinstance(value, float) and value.is_integer()
    ):
        number = int(value)
    else:
        raise EventShapeError(f"'{name}' should be an integer, got {shown(value)}")
    if number < 0:
        raise EventShapeError(f"'{name}' should not be negative, got {number}")
    return number


def string_map(value: Any, what: str) -> Mapping[str, str]:
    """User metadata: a flat object of strings; anything else is rendered as text, never dropped silently."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EventShapeError(f"{what} should be an object of strings, got {shown(value)}")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def keys_of(obj: Mapping[str, Any]) -> str:
    """The first few keys of an unrecognised object, to name what was seen."""
    names = sorted(str(k) for k in obj)
    return shown(names[:8]) if names else "(none)"


def guarded(parse: Callable[[Any], ObjectEvent], value: Any) -> ParsedEvent:
    """Run one record's parser; a shape error becomes an UnsupportedEvent naming what was wrong."""
    try:
        return parse(value)
    except EventShapeError as exc:
        return UnsupportedEvent(str(exc))
