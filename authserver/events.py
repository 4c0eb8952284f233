"""Security events, logged as structured records.

Each event is one log record on the ``authserver.security`` logger with
the event name as its message and the details in ``record.event``. The
JSON log format prints the details as fields; the text format appends
them as ``key=value`` pairs. Callers pass identifiers only, never a
secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import has_request_context
from flask import request

from authserver.requestlog import get_request_id

logger = logging.getLogger("authserver.security")

#: Functions called with each event's name and details after it is logged,
#: such as the counters of :mod:`authserver.metrics`.
listeners: list[Callable[[str, dict[str, Any]], None]] = []


def log_event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log the security event ``name`` with ``fields`` and the remote address.

    :param name: a short snake_case event name such as ``password_grant_failed``.
    :param fields: identifiers such as ``client_id`` and ``user_id``.
    """
    details: dict[str, Any] = {"event": name}
    details.update(fields)
    if has_request_context():
        details.setdefault("remote_addr", request.remote_addr)
        details.setdefault("request_id", get_request_id())
    logger.log(level, name, extra={"event": details})
    for listener in listeners:
        listener(name, details)
