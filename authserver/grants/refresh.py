"""Refresh token grant, RFC 6749 section 6, with rotation and reuse detection.

Every refresh rotates: the response carries a new refresh token and the one
presented stops working (RFC 9700 section 4.14.2). Presenting a rotated
refresh token again is treated as theft: the whole family is revoked.

Refreshes are frequent, so this grant reads and writes with precompiled
statements on the request's raw connection (:mod:`authserver.sql`): one
SELECT, a conditional UPDATE, an UPDATE of the family and one INSERT, in
one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from typing import NoReturn

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import grants
from flask import current_app

from authserver import events
from authserver import sql
from authserver import tokens
from authserver.grants.common import TOKEN_ENDPOINT_AUTH_METHODS
from authserver.grants.common import check_client_grant
from authserver.grants.common import get_lifetimes
from authserver.grants.common import narrow_scope
from authserver.models import Client
from authserver.security import digest_secret
from authserver.security import now
from authserver.tokens import FamilyRef
from authserver.tokens import Lifetimes

logger = logging.getLogger(__name__)

INVALID_REFRESH_TOKEN = "The refresh token is invalid, expired or revoked."


@dataclass(frozen=True)
class RefreshRecord:
    """The stored state of a presented refresh token and its family."""

    token_id: int
    client_pk: int
    family_id: int
    issued_at: int
    expires_at: int | None
    rotated_at: int | None
    revoked_at: int | None
    family_scope: str
    family_created_at: int
    family_last_used_at: int
    family_expires_at: int
    family_revoked_at: int | None
    user_id: int | None
    user_is_active: bool | None

    def is_expired(self, lifetimes: Lifetimes, at: int) -> bool:
        """Return whether the absolute lifetime or the idle timeout has passed.

        The absolute lifetime runs from the grant that started the family,
        the idle timeout from the family's last refresh.
        """
        if self.expires_at is None or at >= self.expires_at:
            return True
        if at >= self.family_created_at + lifetimes.refresh_token:
            return True
        return at >= self.family_last_used_at + lifetimes.refresh_idle


class RefreshGrant(grants.RefreshTokenGrant):
    """The refresh token grant, rotating atomically in one transaction."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self) -> None:
        """Authenticate the client and check the presented refresh token."""
        client: Client = self.authenticate_token_endpoint_client()
        check_client_grant(client, self.GRANT_TYPE)
        self.request.client = client

        refresh_token = self.request.form.get("refresh_token")
        if not refresh_token:
            raise InvalidRequestError("The request has no 'refresh_token' parameter.")

        row = sql.fetch_one(
            tokens.FIND_REFRESH_TOKEN, {"digest": digest_secret(refresh_token)}
        )
        if row is None:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        record = RefreshRecord(*row)
        if record.client_pk != client.id:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)

        self._check_record(client, record)
        self.request.refresh_token = record
        self.request.scope = narrow_scope(
            record.family_scope, self.request.payload.scope
        )

    def _check_record(self, client: Client, record: RefreshRecord) -> None:
        at = now()
        if record.revoked_at is not None or record.family_revoked_at is not None:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        if record.is_expired(get_lifetimes(client), at):
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        if record.rotated_at is not None and not _in_grace_period(record, at):
            self._revoke_for_reuse(client, record, at)
        if record.user_id is None or not record.user_is_active:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)

    def _revoke_for_reuse(
        self, client: Client, record: RefreshRecord, at: int
    ) -> NoReturn:
        count = tokens.revoke_family_now(record.family_id, at)
        fields = {
            "client_id": client.client_id,
            "user_id": record.user_id,
            "family_id": record.family_id,
        }
        events.log_event("refresh_token_reused", logging.WARNING, **fields)
        events.log_event(
            "token_family_revoked",
            logging.WARNING,
            reason="reuse",
            tokens_revoked=count,
            **fields,
        )
        raise InvalidGrantError(INVALID_REFRESH_TOKEN)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[Any]]:
        """Rotate the refresh token and issue a new pair, atomically."""
        client: Client = self.request.client
        record: RefreshRecord = self.request.refresh_token
        lifetimes = get_lifetimes(client)
        at = now()

        # The new pair is prepared, and a JWT signed, before the write
        # transaction starts, so that the transaction stays short.
        family = FamilyRef(
            record.family_id,
            client.id,
            client.client_id,
            record.user_id,
            record.family_expires_at,
        )
        issued = tokens.prepare_token(
            family,
            self.request.scope,
            lifetimes,
            at,
            include_refresh_token=True,
            parent_id=record.token_id,
        )

        try:
            with sql.transaction() as transaction:
                _rotate(transaction, record, issued.values, at)
        except _RotationLostError:
            self._revoke_for_reuse(client, record, at)

        events.log_event(
            "token_refreshed",
            client_id=client.client_id,
            user_id=record.user_id,
            family_id=record.family_id,
        )
        return 200, issued.to_response(), self.TOKEN_RESPONSE_HEADER


class _RotationLostError(Exception):
    """Another request rotated or revoked the refresh token first."""


def _rotate(
    transaction: sql.Transaction,
    record: RefreshRecord,
    values: dict[str, Any],
    at: int,
) -> None:
    # The family row is locked first, as revoking a family does, so a
    # replay racing this refresh waits for it instead of deadlocking, and
    # then revokes the new pair as well.
    transaction.execute_count(
        tokens.TOUCH_FAMILY, {"family_id": record.family_id, "at": at}
    )
    parameters = {"token_id": record.token_id, "at": at}
    if record.rotated_at is None:
        claimed = transaction.execute_count(tokens.CLAIM_FOR_ROTATION, parameters)
    else:
        # Within the grace period the pair that replaced this token is
        # revoked and replaced; the family stays valid.
        claimed = transaction.execute_count(tokens.REVOKE_SUCCESSOR, parameters)
    if claimed != 1:
        raise _RotationLostError()
    transaction.execute_count(tokens.INSERT_TOKEN, values)


def _in_grace_period(record: RefreshRecord, at: int) -> bool:
    grace = current_app.config["AUTHSERVER_REFRESH_GRACE_SECONDS"]
    return record.rotated_at is not None and at - record.rotated_at < grace
