"""OAuth endpoints: token, revocation, introspection and the signing keys."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import jsonify

from authserver.db import get_session
from authserver.jwt_tokens import get_jwks
from authserver.server import get_authorization_server

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


@bp.post("/token")
def token() -> Response:
    """Issue tokens (RFC 6749 section 3.2)."""
    return get_authorization_server().create_token_response()


@bp.post("/revoke")
def revoke() -> Response:
    """Revoke a token (RFC 7009)."""
    return get_authorization_server().create_endpoint_response("revocation")


@bp.post("/introspect")
def introspect() -> Response:
    """Describe a token to an authenticated client (RFC 7662)."""
    return get_authorization_server().create_endpoint_response("introspection")


@bp.get("/jwks")
def jwks() -> Response:
    """Publish the public keys that sign JWT access tokens (RFC 7517)."""
    response = jsonify(get_jwks(get_session()))
    # Resource servers may cache the keys for a short while; a new kid
    # makes them fetch the document again.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
