"""Health checks for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from sqlalchemy.exc import SQLAlchemyError

from authserver.db import get_engine
from authserver.migrations import get_database_revision
from authserver.migrations import get_head_revision

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Return 200 while the process is up, checking nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response | tuple[Response, int]:
    """Return 200 when the database responds and its schema is current."""
    try:
        revision = get_database_revision(get_engine())
    except SQLAlchemyError as e:
        reason = f"The database is unavailable: {type(e).__name__}."
        return jsonify(status="unavailable", reason=reason), 503

    head = current_app.extensions.get("authserver.head_revision")
    if head is None:
        head = get_head_revision(current_app)
        current_app.extensions["authserver.head_revision"] = head
    if revision != head:
        reason = (
            f"The schema is at revision {revision!r}, not {head!r};"
            " run 'authserver db upgrade'."
        )
        return jsonify(status="unavailable", reason=reason), 503
    return jsonify(status="ready", revision=revision)
