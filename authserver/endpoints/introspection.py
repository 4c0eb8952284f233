"""Token introspection, RFC 7662."""

from __future__ import annotations

from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from flask import current_app

from authserver.endpoints.lookup import ACCESS_TOKEN
from authserver.endpoints.lookup import TokenMatch
from authserver.endpoints.lookup import find_token
from authserver.jwt_tokens import get_audience

#: Introspection needs an authenticated caller (RFC 7662 section 2.1), so
#: public clients, which have no secret, cannot use it.
INTROSPECTION_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class IntrospectionEndpoint(_IntrospectionEndpoint):
    """Describe a token to its own client or to a resource server.

    A client may introspect the tokens issued to it; a client registered
    with ``--introspect`` may introspect any access token. Every other
    request, and every unknown, expired or revoked token, gets
    ``{"active": false}`` and nothing more.
    """

    CLIENT_AUTH_METHODS = INTROSPECTION_AUTH_METHODS

    def check_params(self, request: Any, client: Any) -> None:
        """Require ``token``; any ``token_type_hint`` is accepted."""
        if not request.form.get("token"):
            raise InvalidRequestError("The request has no 'token' parameter.")

    def query_token(
        self, token_string: str, token_type_hint: str | None
    ) -> TokenMatch | None:
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: TokenMatch, client: Any, request: Any) -> bool:
        if token.check_client(client):
            return True
        return bool(client.can_introspect) and token.kind == ACCESS_TOKEN

    def create_endpoint_response(self, request: Any) -> tuple[int, Any, Any]:
        client = self.authenticate_endpoint_client(request)
        match = self.authenticate_token(request, client)
        if match is None or not match.is_active():
            return 200, {"active": False}, default_json_headers
        return 200, self.introspect_token(match), default_json_headers

    def introspect_token(self, token: TokenMatch) -> dict[str, Any]:
        """Return the RFC 7662 section 2.2 members for an active token."""
        payload: dict[str, Any] = {
            "active": True,
            "scope": token.scope,
            "client_id": token.client_id,
            "token_type": "Bearer" if token.kind == ACCESS_TOKEN else "refresh_token",
            "exp": token.get_expires_at(),
            "iat": token.issued_at,
            "iss": current_app.config["AUTHSERVER_ISSUER"],
        }
        if token.user_id is not None:
            payload["username"] = token.username
            payload["sub"] = str(token.user_id)
        else:
            payload["sub"] = token.client_id
        if token.jti is not None and token.kind == ACCESS_TOKEN:
            payload["jti"] = token.jti
            payload["aud"] = get_audience()
        return payload
