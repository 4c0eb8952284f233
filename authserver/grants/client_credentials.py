"""Client credentials grant, RFC 6749 section 4.4, for service clients."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import grants

from authserver import events
from authserver.db import get_session
from authserver.grants.common import check_client_grant
from authserver.grants.common import get_lifetimes
from authserver.grants.common import guard_client
from authserver.grants.common import resolve_scope
from authserver.security import now
from authserver.tokens import issue_first_token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Tokens for a confidential client acting on its own behalf.

    The client must have registered the grant. No refresh token is issued
    (RFC 6749 section 4.4.3), since the client can always ask again.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        """Authenticate the client and resolve the requested scope."""
        client = self.authenticate_token_endpoint_client()
        check_client_grant(client, self.GRANT_TYPE)
        self.request.client = client
        self.request.scope = resolve_scope(client, self.request.payload.scope)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[Any]]:
        """Issue an access token in a family of its own."""
        session = get_session()
        client = self.request.client
        lifetimes = get_lifetimes(client)
        at = now()

        issued = issue_first_token(
            session,
            client,
            None,
            self.request.scope,
            lifetimes,
            at,
            include_refresh_token=False,
            guards=[guard_client(client)],
        )
        if issued is None:
            session.rollback()
            raise InvalidClientError("Client authentication failed.", status_code=401)
        session.commit()
        events.log_event(
            "token_issued",
            client_id=client.client_id,
            user_id=None,
            grant_type=self.GRANT_TYPE,
            family_id=issued.values["family_id"],
        )
        return 200, issued.to_response(), self.TOKEN_RESPONSE_HEADER
