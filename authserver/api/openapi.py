"""The OpenAPI 3.1 description of every endpoint, served at /openapi.json."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint
from flask import Response

bp = Blueprint("openapi", __name__)

DESCRIPTION_FILE = "openapi.json"


@bp.get("/openapi.json")
def openapi() -> Response:
    """Return the OpenAPI description stored in the package."""
    response = Response(get_description_text(), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@cache
def get_description_text() -> str:
    """Return the text of ``authserver/openapi.json``, read once per process."""
    return resources.files("authserver").joinpath(DESCRIPTION_FILE).read_text("utf-8")


def get_description() -> dict[str, Any]:
    """Return the OpenAPI description as a dictionary."""
    description: dict[str, Any] = json.loads(get_description_text())
    return description
