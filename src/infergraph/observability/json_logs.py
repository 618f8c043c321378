"""Log lines as JSON objects (``--log-format json``), for log pipelines that parse lines.

Each record becomes one line: ``time`` (ISO 8601, UTC, milliseconds), ``level``,
``logger``, ``message``; ``puid``, ``trace_id`` and ``span_id`` when it was written while
a request was answered (:mod:`infergraph.observability.log_context`); ``exc_info`` (the
traceback as text) when it carries an exception; and the fields a record was given as
``extra={"fields": {...}}`` (the access log's method, path, status...). The CLI sets this
formatter on the one handler it installs; nothing here touches a logger.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from infergraph.observability import log_context

__all__ = ["FIELDS", "JsonFormatter", "json_line", "utc_time"]

FIELDS = "fields"
"""The record attribute (``extra={"fields": {...}}``) whose items become fields of the line."""


def utc_time(seconds: float) -> str:
    """``2026-12-03T07:40:13.239Z``: a timestamp as ISO 8601 in UTC, to the millisecond."""
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def json_line(fields: dict[str, Any]) -> str:
    """One JSON object on one line (values JSON cannot hold are written as text)."""
    return orjson.dumps(fields, default=str).decode()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: see the module's docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = log_context.current()
        if request is not None:
            out.update(request.ids())
        extra = getattr(record, FIELDS, None)
        if isinstance(extra, dict):
            out.update(extra)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json_line(out)
