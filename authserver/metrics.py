"""Prometheus metrics, served at ``/metrics``.

The metric objects are created once, at import, because prometheus_client
keeps them in one registry per process; :func:`init_app` only adds the
request hooks, the event listener and the view. Token, lockout and reuse
counters are fed by the security events of :mod:`authserver.events`, and
token endpoint errors are counted from the error responses.

Several gunicorn workers: each worker is a process with its own counters.
Set ``PROMETHEUS_MULTIPROC_DIR`` to a directory writable by every worker
before gunicorn starts. Each worker then writes its values to files in
it, and a scrape of any worker returns the sum over all of them. The
directory must be emptied at every start, or the counts of an earlier run
are added in; the ``on_starting`` hook of ``config/gunicorn.conf.py``
does that.

``/metrics`` shows client ids, so keep it away from the public. Either
block it at the proxy, or set ``AUTHSERVER_METRICS_ADDRESS`` to a private
address: the application then stops serving ``/metrics``, and the
``when_ready`` hook of ``config/gunicorn.conf.py`` serves the summed
metrics there from the gunicorn master. That address is served only under
gunicorn with that configuration file; ``authserver run`` ignores it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING
from typing import Any

from flask import Response
from flask import g
from flask import request
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from authserver import events

if TYPE_CHECKING:
    from flask import Flask

MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
TOKEN_ENDPOINT = "oauth.token"

#: The label of requests that matched no route, such as a 404.
UNMATCHED_ENDPOINT = "none"

#: The label of a token endpoint error response without an error code.
UNKNOWN_ERROR = "unknown"

# Error codes come from this server, not from the caller, but a cap on
# their length keeps an unexpected body from creating long label values.
_MAX_ERROR_CODE_LENGTH = 64

TOKENS_ISSUED = Counter(
    "authserver_tokens_issued",
    "Token responses issued, by grant type and client id. A refresh counts"
    " under grant_type refresh_token.",
    ["grant_type", "client_id"],
)
TOKEN_ERRORS = Counter(
    "authserver_token_errors",
    "Error responses of the token endpoint, by OAuth error code.",
    ["error"],
)
LOCKOUTS = Counter(
    "authserver_lockouts",
    "Usernames locked after repeated failed password grants.",
)
REFRESH_TOKEN_REUSE = Counter(
    "authserver_refresh_token_reuse",
    "Rotated refresh tokens presented again; each revokes its token family.",
)
SECURITY_EVENTS = Counter(
    "authserver_security_events",
    "Security events logged, by event name.",
    ["event"],
)
REQUESTS = Counter(
    "authserver_requests",
    "Requests handled, by Flask endpoint and HTTP status code.",
    ["endpoint", "status"],
)
REQUEST_DURATION = Histogram(
    "authserver_request_duration_seconds",
    "Time spent handling a request in the application, by Flask endpoint.",
    ["endpoint"],
)


def init_app(app: Flask) -> None:
    """Count the requests and events of ``app`` and serve ``/metrics``.

    With ``AUTHSERVER_METRICS_ENABLED`` false nothing is counted or served.
    With ``AUTHSERVER_METRICS_ADDRESS`` set, everything is counted but
    ``/metrics`` is left to the server on that address.
    """
    if not app.config["AUTHSERVER_METRICS_ENABLED"]:
        return

    app.before_request(_start_timer)
    app.after_request(_observe_request)
    if count_event not in events.listeners:
        events.listeners.append(count_event)
    if not app.config["AUTHSERVER_METRICS_ADDRESS"]:
        app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])


def get_registry() -> CollectorRegistry:
    """Return the registry to expose: the sum over every process, if shared.

    :data:`MULTIPROCESS_DIRECTORY_VARIABLE` selects multiprocess mode when
    prometheus_client is first imported, so it must be set before the
    server starts.
    """
    if not os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics_view() -> Response:
    """Return every metric in the format that the scraper accepts."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encode(get_registry()), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def count_event(name: str, details: dict[str, Any]) -> None:
    """Update the counters for the security event ``name``.

    Registered as an :data:`authserver.events.listeners` entry.
    """
    SECURITY_EVENTS.labels(event=name).inc()
    if name == "token_issued":
        grant_type = str(details.get("grant_type"))
        TOKENS_ISSUED.labels(grant_type, str(details.get("client_id"))).inc()
    elif name == "token_refreshed":
        TOKENS_ISSUED.labels("refresh_token", str(details.get("client_id"))).inc()
    elif name == "username_locked":
        LOCKOUTS.inc()
    elif name == "refresh_token_reused":
        REFRESH_TOKEN_REUSE.inc()


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe_request(response: Response) -> Response:
    endpoint = request.endpoint or UNMATCHED_ENDPOINT
    started = g.get("metrics_started")
    if started is not None:
        duration = time.perf_counter() - started
        REQUEST_DURATION.labels(endpoint).observe(duration)
    REQUESTS.labels(endpoint, str(response.status_code)).inc()

    if endpoint == TOKEN_ENDPOINT and response.status_code >= 400:
        TOKEN_ERRORS.labels(_get_error_code(response)).inc()
    return response


def _get_error_code(response: Response) -> str:
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, str) or len(error) > _MAX_ERROR_CODE_LENGTH:
        return UNKNOWN_ERROR
    return error
