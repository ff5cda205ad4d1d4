"""Structured log lines for the Google Cloud and Azure functions: one JSON object per line.

Cloud Logging reads a JSON line on stdout as a structured entry and takes its level from ``severity`` and its
text from ``message``: https://cloud.google.com/functions/docs/monitoring/logging#writing_structured_logs .
Azure Functions forwards ``logging`` records to Application Insights with the record's level; the message is
the same JSON text, so the fields stay queryable. (The AWS function uses Powertools' Logger instead.)
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

# logging level → Cloud Logging severity (https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry#LogSeverity)
SEVERITIES: Mapping[int, str] = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def line(level: int, message: str, fields: Mapping[str, Any]) -> str:
    """The JSON text of one entry; values that are not JSON types are written as their text."""
    entry = {"severity": SEVERITIES.get(level, "DEFAULT"), "message": message, **fields}
    return json.dumps(entry, ensure_ascii=False, default=str)


class StdoutHandler(logging.Handler):
    """Writes each message as is to whatever ``sys.stdout`` is at the time (runtimes and tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def stdout_logger(name: str) -> logging.Logger:
    """A logger whose lines go to stdout only (Cloud Functions / Cloud Run collect stdout)."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        logger.addHandler(StdoutHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def log(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, line(level, message, fields))
