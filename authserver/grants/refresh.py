"""Refresh token grant, RFC 6749 section 6, with rotation and reuse detection.

Every refresh rotates: the answer carries a new refresh token and the one
presented stops working (RFC 9700 section 4.14.2). Presenting a rotated
refresh token again is treated as theft: the whole family is revoked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import grants
from flask import current_app

from authserver import events
from authserver import tokens
from authserver.db import get_session
from authserver.grants.common import TOKEN_ENDPOINT_AUTH_METHODS
from authserver.grants.common import check_client_grant
from authserver.grants.common import get_lifetimes
from authserver.grants.common import narrow_scope
from authserver.models import User
from authserver.security import now

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from authserver.models import Client
    from authserver.models import Token
    from authserver.models import TokenFamily
    from authserver.tokens import Lifetimes

logger = logging.getLogger(__name__)

INVALID_REFRESH_TOKEN = "The refresh token is invalid, expired or revoked."


class RefreshGrant(grants.RefreshTokenGrant):
    """The refresh token grant, rotating atomically in one transaction."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self) -> None:
        """Authenticate the client and check the presented refresh token."""
        client = self.authenticate_token_endpoint_client()
        check_client_grant(client, self.GRANT_TYPE)
        self.request.client = client

        refresh_token = self.request.form.get("refresh_token")
        if not refresh_token:
            raise InvalidRequestError("The request has no 'refresh_token' parameter.")

        session = get_session()
        found = tokens.find_by_refresh_token(session, refresh_token)
        if found is None or found[0].client_id != client.id:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)

        token, family = found
        self._check_token(session, client, token, family)
        self.request.refresh_token = token
        self.request.credential = family
        self.request.scope = narrow_scope(family.scope, self.request.payload.scope)

    def _check_token(
        self, session: Session, client: Client, token: Token, family: TokenFamily
    ) -> None:
        at = now()
        if token.revoked_at is not None or family.revoked_at is not None:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)

        lifetimes = get_lifetimes(client)
        if _is_expired(token, family, lifetimes, at):
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)

        if token.rotated_at is not None and not self._in_grace_period(token, at):
            self._revoke_for_reuse(session, client, family, at)

        user = session.get(User, family.user_id) if family.user_id else None
        if user is None or not user.is_active:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        self.request.user = user

    def _in_grace_period(self, token: Token, at: int) -> bool:
        grace = current_app.config["AUTHSERVER_REFRESH_GRACE_SECONDS"]
        return token.rotated_at is not None and at - token.rotated_at < grace

    def _revoke_for_reuse(
        self, session: Session, client: Client, family: TokenFamily, at: int
    ) -> Any:
        count = tokens.revoke_family(session, family.id, at)
        session.commit()
        events.log_event(
            "refresh_token_reused",
            logging.WARNING,
            client_id=client.client_id,
            user_id=family.user_id,
            family_id=family.id,
        )
        events.log_event(
            "token_family_revoked",
            logging.WARNING,
            client_id=client.client_id,
            user_id=family.user_id,
            family_id=family.id,
            reason="reuse",
            tokens_revoked=count,
        )
        raise InvalidGrantError(INVALID_REFRESH_TOKEN)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[Any]]:
        """Rotate the refresh token and issue a new pair, atomically."""
        session = get_session()
        client = self.request.client
        token: Token = self.request.refresh_token
        family: TokenFamily = self.request.credential
        lifetimes = get_lifetimes(client)
        at = now()

        if token.rotated_at is None:
            claimed = tokens.claim_for_rotation(session, token, at)
        else:
            # Within the grace period: the pair that replaced this token is
            # revoked and replaced, the family stays valid.
            claimed = tokens.revoke_successor(session, token, at)
        if not claimed:
            session.rollback()
            self._revoke_for_reuse(session, client, family, at)

        tokens.touch_family(session, family.id, at)
        issued = tokens.issue_token(
            session,
            family,
            self.request.scope,
            lifetimes,
            at,
            include_refresh_token=True,
            parent_id=token.id,
        )
        session.commit()
        events.log_event(
            "token_refreshed",
            client_id=client.client_id,
            user_id=family.user_id,
            family_id=family.id,
            token_id=issued.row.id,
        )
        return 200, issued.to_response(), self.TOKEN_RESPONSE_HEADER


def _is_expired(
    token: Token, family: TokenFamily, lifetimes: Lifetimes, at: int
) -> bool:
    # The absolute lifetime runs from the grant that started the family;
    # the idle timeout from the family's last refresh.
    if token.refresh_token_expires_at is None:
        return True
    if at >= token.refresh_token_expires_at:
        return True
    if at >= family.created_at + lifetimes.refresh_token:
        return True
    return at >= family.last_used_at + lifetimes.refresh_idle
