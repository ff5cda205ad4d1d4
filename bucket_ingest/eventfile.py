"""Reading an event file for `map` and `invoke`: clear messages for a missing or malformed file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


class EventFileError(Exception):
    pass


def load_event_file(path: str) -> Any:
    """The JSON document in ``path`` ('-' reads standard input)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EventFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EventFileError(f"{path}: cannot read it ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventFileError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
