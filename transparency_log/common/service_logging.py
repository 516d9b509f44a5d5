"""Log lines of the long-running services (`tlog serve`, `tlog witness serve`, `attest agent`):
each with a UTC timestamp, a level and the logger's name; optionally one JSON object per line.

``--log-format text`` (default)::

    2026-12-03T09:35:11.123Z WARNING transparency_log.serve.service: witness w0: ...

``--log-format json`` (or ``ATTESTLOG_LOG_FORMAT=json``), one object per line with the keys
``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger`` and ``message``::

    {"time": "2026-12-03T09:35:11.123Z", "level": "WARNING", "logger": "...", "message": "..."}

uvicorn's own loggers go through the same handler (asgi_serving passes ``log_config=None``).
A warning that would repeat at the publisher's rate goes through the service's throttled log
(``transparency_log/common/throttled_log.py``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import click

LOG_FORMAT_ENV = "ATTESTLOG_LOG_FORMAT"
LOG_FORMATS = ("text", "json")


def _utc(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE`` on one line (a traceback, if any, on the lines after)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"time": _utc(record), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Send every log record at ``level`` or above to stderr in ``fmt`` (replaces the root
    logger's handlers: a service configures logging once, at start)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def log_format_option(fn: Any) -> Any:
    """The ``--log-format text|json`` option (environment: ``ATTESTLOG_LOG_FORMAT``)."""
    return click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text",
                        envvar=LOG_FORMAT_ENV, show_default=True, show_envvar=True,
                        help="Log lines as text (time, level, logger, message) or one JSON "
                        "object per line.")(fn)
