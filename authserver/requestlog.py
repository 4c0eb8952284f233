"""Request logs: one line per request on the ``authserver.request`` logger.

Each line carries the method, the path, the status, the duration in
milliseconds and a request id. The path is logged without its query
string, which could carry secrets. The request id comes from the
caller's ``X-Request-ID`` header when that is short and printable, and is
generated otherwise. It is sent back in the ``X-Request-ID`` response
header so that callers and proxies can quote it.

The fields go in ``record.event`` like those of :mod:`authserver.events`,
so the chosen log format prints them as ``key=value`` pairs or JSON.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from flask import g
from flask import request

if TYPE_CHECKING:
    from flask import Flask
    from flask import Response

logger = logging.getLogger("authserver.request")

REQUEST_ID_HEADER = "X-Request-ID"

#: A request id accepted from the caller: 1 to 128 visible ASCII
#: characters. Spaces and control characters are rejected, so that an id
#: cannot add fields or lines to a text log.
REQUEST_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,128}")

# Characters that a logged path keeps as they are. Flask decodes the
# path, so every other character, including spaces, newlines and "%", is
# percent-encoded again before it reaches a text log line.
_PATH_SAFE_CHARACTERS = "/!$&'()*+,;=:@"


def init_app(app: Flask) -> None:
    """Log every request of ``app`` and give each one a request id."""
    app.before_request(_start_request)
    app.after_request(_finish_request)


def get_request_id() -> str | None:
    """Return the id of the current request, or None outside a request."""
    request_id: str | None = g.get("request_id")
    return request_id


def _start_request() -> None:
    g.request_started = time.perf_counter()
    supplied = request.headers.get(REQUEST_ID_HEADER)
    if supplied is not None and REQUEST_ID_PATTERN.fullmatch(supplied):
        g.request_id = supplied
    else:
        g.request_id = secrets.token_hex(16)


def _finish_request(response: Response) -> Response:
    # create_app registers this hook before those of other modules, and
    # Flask runs after_request hooks in reverse order, so this one logs
    # the final status.
    request_id = g.get("request_id") or secrets.token_hex(16)
    response.headers[REQUEST_ID_HEADER] = request_id
    if not logger.isEnabledFor(logging.INFO):
        return response

    started = g.get("request_started")
    duration_ms = 0.0
    if started is not None:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
    details = {
        "event": "request",
        "method": request.method,
        "path": quote(request.path, safe=_PATH_SAFE_CHARACTERS),
        "status": response.status_code,
        "duration_ms": duration_ms,
        "request_id": request_id,
        "remote_addr": request.remote_addr,
    }
    logger.info("request", extra={"event": details})
    return response
