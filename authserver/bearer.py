"""Bearer token validation for authserver's own API, RFC 6750."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlalchemy import select

from authserver import sql
from authserver.models import Client
from authserver.models import Token
from authserver.models import User
from authserver.resource import ResourceProtector
from authserver.resource import ScopedBearerTokenValidator
from authserver.security import digest_secret
from authserver.security import now

# Every API call looks its token up, so the query is precompiled.
ACCESS_TOKEN_QUERY = sql.Query(
    select(
        Token.id,
        Client.client_id,
        Token.user_id,
        User.username,
        Token.scope,
        Token.access_token_expires_at,
        Token.revoked_at,
        Token.access_token_revoked_at,
        Client.is_active,
        User.is_active,
    )
    .join(Client, Client.id == Token.client_id)
    .outerjoin(User, User.id == Token.user_id)
    .where(Token.access_token_digest == bindparam("digest"))
)


@dataclass(frozen=True)
class AccessToken:
    """The stored facts about a presented access token."""

    token_id: int
    client_id: str
    user_id: int | None
    username: str | None
    scope: str
    expires_at: int
    revoked_at: int | None

    def is_expired(self) -> bool:
        return self.expires_at <= now()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def get_scope(self) -> str:
        return self.scope


class BearerTokenValidator(ScopedBearerTokenValidator):
    """Find access tokens by their digest in the token table.

    JWT access tokens are found the same way, by the digest of the whole
    JWT, so the API refuses a revoked JWT at once.
    """

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        """Return the stored token for ``token_string``, or None."""
        row = sql.fetch_one(ACCESS_TOKEN_QUERY, {"digest": digest_secret(token_string)})
        if row is None:
            return None
        token_id, client_id, user_id, username, scope, expires_at = row[:6]
        revoked_at, access_revoked_at, client_active, user_active = row[6:]
        # Disabling revokes tokens as well; checking here also covers a
        # token issued while the account was being disabled.
        if not client_active or (user_id is not None and not user_active):
            return None
        return AccessToken(
            token_id=token_id,
            client_id=client_id,
            user_id=user_id,
            username=username,
            scope=scope,
            expires_at=expires_at,
            revoked_at=revoked_at or access_revoked_at,
        )


require_oauth = ResourceProtector(BearerTokenValidator())
