"""OAuth endpoints: the token endpoint, RFC 6749 section 3.2."""

from __future__ import annotations

from flask import Blueprint
from flask import Response

from authserver.server import get_authorization_server

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


@bp.post("/token")
def token() -> Response:
    """Issue tokens for the password and refresh token grants."""
    return get_authorization_server().create_token_response()
