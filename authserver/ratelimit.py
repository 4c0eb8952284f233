"""Rate limits on the token endpoint, per client and per remote address.

Each application gets its own :class:`flask_limiter.Limiter`, stored in
``app.extensions``, so that applications created in one process never
share counters, storage connections or settings.

Counts live in the storage named by ``AUTHSERVER_RATELIMIT_STORAGE_URL``.
With ``memory://`` every process counts on its own; with a Redis URL all
processes and servers that use the same ``AUTHSERVER_RATELIMIT_KEY_PREFIX``
share their counts.

A request over a limit gets 429 with ``Retry-After`` and the error code
``rate_limited``. RFC 6749 registers no error code for rate limiting, so
this one is our own, in the RFC 6749 section 5.2 error format.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask import jsonify
from flask import request
from flask_limiter import Limit
from flask_limiter import Limiter
from flask_limiter import RateLimitExceeded
from limits.errors import ConfigurationError
from limits.errors import StorageError
from werkzeug.exceptions import RequestEntityTooLarge

from authserver.config import ConfigError
from authserver.errors import NO_STORE_HEADERS
from authserver.server import FORM_CONTENT_TYPE
from authserver.server import parse_basic_authorization

if TYPE_CHECKING:
    from flask import Flask
    from flask import Response
    from flask_limiter import RequestLimit

logger = logging.getLogger(__name__)

EXTENSION_KEY = "authserver.limiter"
TOKEN_ENDPOINT = "oauth.token"
ERROR_CODE = "rate_limited"

#: The length of the ``clients.client_id`` column; a longer id names no
#: client, and capping it keeps storage keys short.
MAX_CLIENT_KEY_LENGTH = 64

#: Socket timeouts for a Redis storage. They bound the delay that an
#: unresponsive Redis adds to each token request before it passes unlimited.
REDIS_TIMEOUT_SECONDS = 1

#: Storage failures are logged at most once in this many seconds.
FAILURE_LOG_INTERVAL_SECONDS = 60


def init_app(app: Flask) -> None:
    """Apply the token endpoint limits of ``app`` if rate limiting is enabled.

    :raises ConfigError: ``AUTHSERVER_RATELIMIT_STORAGE_URL`` is not a
        storage that Flask-Limiter supports.
    """
    if not app.config["AUTHSERVER_RATELIMIT_ENABLED"]:
        return

    limiter = _create_limiter(app)
    try:
        limiter.init_app(app)
    except (ConfigurationError, ValueError):
        scheme = urlsplit(app.config["AUTHSERVER_RATELIMIT_STORAGE_URL"]).scheme
        # The URL may contain a Redis password, so only its scheme is shown.
        raise ConfigError(
            "AUTHSERVER_RATELIMIT_STORAGE_URL is not a valid storage URL"
            f" (scheme {scheme!r}). Use 'memory://' or 'redis://HOST:PORT/DB'."
        ) from None

    app.register_error_handler(RateLimitExceeded, handle_rate_limit_exceeded)
    app.extensions[EXTENSION_KEY] = limiter


def _create_limiter(app: Flask) -> Limiter:
    storage_url = app.config["AUTHSERVER_RATELIMIT_STORAGE_URL"]
    limiter = Limiter(
        get_address_key,
        default_limits=[
            Limit(
                app.config["AUTHSERVER_RATELIMIT_PER_CLIENT"],
                key_function=get_client_key,
                scope="client",
                exempt_when=_is_exempt_from_client_limit,
                # Only requests whose client authenticated count, so that
                # anyone who has a client id cannot use up its limit.
                deduct_when=_is_authenticated_response,
            ),
            Limit(
                app.config["AUTHSERVER_RATELIMIT_PER_ADDRESS"],
                key_function=get_address_key,
                scope="address",
                exempt_when=_is_exempt_from_address_limit,
            ),
        ],
        storage_uri=storage_url,
        storage_options=_get_storage_options(storage_url),
        strategy="fixed-window",
        key_prefix=app.config["AUTHSERVER_RATELIMIT_KEY_PREFIX"],
        # A request counts against both limits even when one of them is
        # already exceeded, so each limit counts every request.
        fail_on_first_breach=False,
        # Fail open: when the storage cannot be reached, token requests pass
        # without a limit instead of failing with 5xx, because an outage of
        # Redis must not stop every login. The failure is logged as a warning.
        swallow_errors=True,
    )
    limiter.logger = _FailureLogger(logger)  # type: ignore[assignment]
    return limiter


def _get_storage_options(storage_url: str) -> dict[str, str | int]:
    # Wrapped errors are limits.errors.StorageError whatever the backend.
    options: dict[str, str | int] = {"wrap_exceptions": True}
    if urlsplit(storage_url).scheme in ("redis", "rediss"):
        options["socket_connect_timeout"] = REDIS_TIMEOUT_SECONDS
        options["socket_timeout"] = REDIS_TIMEOUT_SECONDS
    return options


def get_client_key() -> str:
    """Return the client id that the request claims, or "" if none.

    The id comes from the HTTP Basic username or the form's ``client_id``.
    It is not authenticated here, so a client can exhaust only the limit of
    the id it sends.
    """
    credentials = parse_basic_authorization(request.headers.get("Authorization"))
    if credentials is not None:
        return credentials[0][:MAX_CLIENT_KEY_LENGTH]

    if request.mimetype != FORM_CONTENT_TYPE:
        return ""
    try:
        client_id = request.form.get("client_id", "")
    except RequestEntityTooLarge:
        # The view returns 413, and this request is counted per address only.
        return ""
    return client_id[:MAX_CLIENT_KEY_LENGTH]


def get_address_key() -> str:
    """Return the remote address, after ProxyFix when it is enabled."""
    # Requests without an address share one count instead of passing
    # unlimited.
    return request.remote_addr or "unknown"


def _is_token_request() -> bool:
    return request.endpoint == TOKEN_ENDPOINT and request.method == "POST"


def _is_authenticated_response(response: Response) -> bool:
    # The token endpoint returns 401 invalid_client for every failed
    # client authentication.
    return response.status_code != 401


def _is_exempt_from_client_limit() -> bool:
    # Flask-Limiter logs an error for an empty key, so a request that names
    # no client is exempted here and counted per address only.
    return not _is_token_request() or not get_client_key()


def _is_exempt_from_address_limit() -> bool:
    return not _is_token_request()


def handle_rate_limit_exceeded(error: RateLimitExceeded) -> Response:
    """Build the 429 response, with ``Retry-After`` and an RFC 6749 error body."""
    response = jsonify(
        error=ERROR_CODE,
        error_description=(
            "Too many token requests. Retry after the number of seconds"
            " in the Retry-After header."
        ),
    )
    response.status_code = 429
    response.headers["Retry-After"] = str(_get_retry_after_seconds(error))
    response.headers.update(NO_STORE_HEADERS)
    return response


def _get_retry_after_seconds(error: RateLimitExceeded) -> int:
    limiter: Limiter = current_app.extensions[EXTENSION_KEY]
    breached = [limit for limit in limiter.current_limits if limit.breached]
    if not breached:
        return int(error.limit.limit.get_expiry())
    return max(_get_seconds_until_reset(limit) for limit in breached)


def _get_seconds_until_reset(limit: RequestLimit) -> int:
    try:
        reset_time = limit.window.reset_time
    except StorageError:
        # The storage failed after counting the request; the full window
        # length is the longest wait that can be needed.
        return int(limit.limit.get_expiry())
    return max(1, math.ceil(reset_time - time.time()))


class _FailureLogger(logging.LoggerAdapter[logging.Logger]):
    """Flask-Limiter's logger, with repeated messages kept out of the log.

    With ``swallow_errors`` Flask-Limiter logs a traceback for every request
    whose limits it could not check, so a storage outage would log one per
    token request. This logs such a failure as a warning with its traceback
    at most once per ``FAILURE_LOG_INTERVAL_SECONDS`` for each application,
    with the number of failures not logged since the previous warning. Its
    INFO line for each rejected request is logged at DEBUG, because an
    attack would otherwise fill the log.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self._lock = threading.Lock()
        self._next_report = 0.0
        self._suppressed = 0

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level < logging.ERROR:
            super().log(min(level, logging.DEBUG), msg, *args, **kwargs)
            return

        with self._lock:
            now = time.monotonic()
            if now < self._next_report:
                self._suppressed += 1
                return
            self._next_report = now + FAILURE_LOG_INTERVAL_SECONDS
            suppressed, self._suppressed = self._suppressed, 0

        error = sys.exc_info()[1]
        self.logger.warning(
            "Rate limits were not applied, so requests pass unlimited: %s (%s)."
            " %d more failures since the previous warning.",
            str(msg) % args if args else msg,
            f"{type(error).__name__}: {error}" if error else "no exception",
            suppressed,
            exc_info=kwargs.get("exc_info", False),
        )
