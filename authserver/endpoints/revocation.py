"""Token revocation, RFC 7009."""

from __future__ import annotations

from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from authserver import events
from authserver import tokens
from authserver.db import get_session
from authserver.endpoints.lookup import ACCESS_TOKEN
from authserver.endpoints.lookup import TokenMatch
from authserver.endpoints.lookup import find_token
from authserver.grants.common import TOKEN_ENDPOINT_AUTH_METHODS
from authserver.security import now


class RevocationEndpoint(_RevocationEndpoint):
    """Revoke an access token, or a refresh token with its whole family.

    Revoking a refresh token revokes every token descended from the same
    grant, as RFC 7009 section 2.1 allows. Revoking an access token
    revokes that access token only.
    """

    CLIENT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS

    def check_params(self, request: Any, client: Any) -> None:
        """Require ``token``; any ``token_type_hint`` is accepted.

        Authlib rejects an unknown hint with ``unsupported_token_type``;
        RFC 7009 section 2.1 requires the server to search every type instead.
        """
        if not request.form.get("token"):
            raise InvalidRequestError("The request has no 'token' parameter.")

    def authenticate_token(self, request: Any, client: Any) -> TokenMatch | None:
        """Return the presented token, if it exists and belongs to ``client``.

        :raises InvalidGrantError: the token was issued to another client;
            RFC 7009 section 2.1 refuses the request and keeps the token.
        """
        self.check_params(request, client)
        match = self.query_token(
            request.form["token"], request.form.get("token_type_hint")
        )
        if match is not None and not match.check_client(client):
            raise InvalidGrantError("The token was issued to another client.")
        return match

    def query_token(
        self, token_string: str, token_type_hint: str | None
    ) -> TokenMatch | None:
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: TokenMatch, request: Any) -> None:
        session = get_session()
        at = now()
        if token.kind == ACCESS_TOKEN:
            tokens.revoke_access_token(session, token.token_id, at)
        else:
            tokens.revoke_family(session, token.family_id, at)
        session.commit()
        events.log_event(
            "token_revoked",
            client_id=token.client_id,
            user_id=token.user_id,
            family_id=token.family_id,
            token_type=token.kind,
        )

    def create_endpoint_response(self, request: Any) -> tuple[int, Any, Any]:
        """Return 200 with an empty JSON object, known token or not."""
        client = self.authenticate_endpoint_client(request)
        match = self.authenticate_token(request, client)
        if match is not None:
            self.revoke_token(match, request)
        return 200, {}, default_json_headers
