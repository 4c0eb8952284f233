"""Log formatting: plain text by default, JSON lines on request."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from flask import Flask

HANDLER_NAME = "authserver"


class TextFormatter(logging.Formatter):
    """One line per record, with the fields of a security event appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        details = getattr(record, "event", None)
        if not details:
            return line
        pairs = " ".join(
            f"{key}={_quote(value)}" for key, value in details.items() if key != "event"
        )
        return f"{line} {pairs}" if pairs else line


def _quote(value: Any) -> str:
    # A value with spaces, quotes, "=" or control characters is written as
    # a JSON string, so that no value can end the line or forge a field.
    text = str(value)
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    return json.dumps(text)


class JSONFormatter(logging.Formatter):
    """One JSON object per record, with the fields of a security event."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        details = getattr(record, "event", None)
        if details:
            entry.update(details)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def init_app(app: Flask) -> None:
    """Send the ``authserver`` loggers to standard error in the chosen format."""
    logger = logging.getLogger("authserver")
    logger.setLevel(app.config["AUTHSERVER_LOG_LEVEL"])

    handler = next((h for h in logger.handlers if h.name == HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.name = HANDLER_NAME
        logger.addHandler(handler)

    if app.config["AUTHSERVER_LOG_FORMAT"] == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter())
