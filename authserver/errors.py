"""JSON error responses for HTTP errors and database failures."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

import psycopg
from flask import Response
from flask import abort
from flask import current_app
from flask import jsonify
from flask import request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

NO_STORE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}

#: Error codes for HTTP errors that have no OAuth error code of their own.
ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


def init_app(app: Flask) -> None:
    """Register the error handlers of ``app``."""
    app.before_request(reject_large_body)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(PoolTimeoutError, handle_database_error)
    # The hot paths of authserver.sql run on raw driver connections, whose
    # errors are the drivers' own classes.
    app.register_error_handler(sqlite3.Error, handle_database_error)
    app.register_error_handler(psycopg.Error, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected_error)


def reject_large_body() -> None:
    """Abort with 413 when the declared body is over ``MAX_CONTENT_LENGTH``.

    Werkzeug checks the limit only when a view reads the body, so views
    that read none, such as ``/healthz``, would accept any length. A body
    sent without a length (chunked) is cut off by Werkzeug as it is read.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        abort(413)


def handle_http_error(error: HTTPException) -> Response:
    """Return a JSON response for an HTTP error, such as 404 or 413."""
    # Errors raised by the resource protector already carry their body.
    if error.response is not None:
        return error.response  # type: ignore[return-value]
    code = error.code or 500
    error_code = ERROR_CODES.get(
        code, "invalid_request" if code < 500 else "server_error"
    )
    response = jsonify(error=error_code, error_description=error.description)
    response.status_code = code
    response.headers.update(NO_STORE_HEADERS)
    if code == 405 and error.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return response


def handle_database_error(error: Exception) -> Response:
    """Return 503 when the database is unreachable, slow or failing."""
    logger.error(
        "Database call failed: %s: %s",
        type(error).__name__,
        getattr(error, "orig", error),
    )
    response = jsonify(
        error="temporarily_unavailable",
        error_description="The database is unavailable; retry later.",
    )
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    response.headers.update(NO_STORE_HEADERS)
    return response


def handle_unexpected_error(error: Exception) -> Response:
    """Log an unexpected failure and return 500 without details."""
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    if type(error).__module__.startswith("gunicorn.http"):
        # gunicorn raises its parse errors, such as a malformed chunk size,
        # only when the view reads the body.
        logger.warning("Malformed request body: %s", type(error).__name__)
        return handle_http_error(BadRequest("The request body is malformed."))
    logger.exception("Unexpected error while handling the request")
    response = jsonify(
        error="server_error",
        error_description="The server failed to handle the request.",
    )
    response.status_code = 500
    response.headers.update(NO_STORE_HEADERS)
    return response
