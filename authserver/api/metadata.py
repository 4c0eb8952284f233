"""Authorization server metadata, RFC 8414."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify

from authserver.endpoints.introspection import INTROSPECTION_AUTH_METHODS
from authserver.grants.common import TOKEN_ENDPOINT_AUTH_METHODS

bp = Blueprint("metadata", __name__)

GRANT_TYPES_SUPPORTED = ["password", "refresh_token", "client_credentials"]


@bp.get("/.well-known/oauth-authorization-server")
def metadata() -> Response:
    """Describe the endpoints and what each of them accepts."""
    response = jsonify(get_metadata())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def get_metadata() -> dict[str, Any]:
    """Return the metadata document of RFC 8414 section 2."""
    config = current_app.config
    issuer: str = config["AUTHSERVER_ISSUER"]
    document: dict[str, Any] = {
        "issuer": issuer,
        "token_endpoint": issuer + "/oauth/token",
        "token_endpoint_auth_methods_supported": TOKEN_ENDPOINT_AUTH_METHODS,
        "grant_types_supported": GRANT_TYPES_SUPPORTED,
        # No grant here uses the authorization endpoint, so the server has
        # none and supports no response type; RFC 8414 still requires the
        # member.
        "response_types_supported": [],
        "scopes_supported": list(config["AUTHSERVER_SCOPES"]),
        "revocation_endpoint": issuer + "/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": TOKEN_ENDPOINT_AUTH_METHODS,
        "introspection_endpoint": issuer + "/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": INTROSPECTION_AUTH_METHODS,
    }
    if config["AUTHSERVER_ACCESS_TOKEN_FORMAT"] == "jwt":
        document["jwks_uri"] = issuer + "/oauth/jwks"
    return document
