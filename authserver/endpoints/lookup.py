"""Finding a presented token of either type, and whether it is active.

Resource servers introspect on every request they serve, so the lookup
runs as one precompiled statement per token type (:mod:`authserver.sql`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from flask import current_app
from sqlalchemy import bindparam
from sqlalchemy import select

from authserver import sql
from authserver.models import Client
from authserver.models import Token
from authserver.models import TokenFamily
from authserver.models import User
from authserver.security import digest_secret
from authserver.security import now

if TYPE_CHECKING:
    from sqlalchemy.sql import Executable

ACCESS_TOKEN = "access_token"
REFRESH_TOKEN = "refresh_token"
TOKEN_TYPES = (ACCESS_TOKEN, REFRESH_TOKEN)


@dataclass(frozen=True)
class TokenMatch:
    """A stored token found by a presented string, and which half it was."""

    token_id: int
    client_pk: int
    family_id: int
    user_id: int | None
    scope: str
    jti: str | None
    issued_at: int
    access_token_expires_at: int
    refresh_token_expires_at: int | None
    rotated_at: int | None
    revoked_at: int | None
    access_token_revoked_at: int | None
    family_created_at: int
    family_last_used_at: int
    family_revoked_at: int | None
    client_id: str
    client_is_active: bool
    client_refresh_lifetime: int | None
    client_refresh_idle: int | None
    username: str | None
    user_is_active: bool | None
    kind: str

    def check_client(self, client: Client) -> bool:
        """Return whether the token was issued to ``client``."""
        return self.client_pk == client.id

    def is_active(self) -> bool:
        """Return whether the presented token would be accepted now."""
        at = now()
        if self.revoked_at is not None or self.family_revoked_at is not None:
            return False
        if self.user_id is not None and not self.user_is_active:
            return False
        if not self.client_is_active:
            return False
        if self.kind == ACCESS_TOKEN:
            return (
                self.access_token_revoked_at is None
                and at < self.access_token_expires_at
            )
        return self._is_refresh_token_active(at)

    def get_expires_at(self) -> int:
        """Return the Unix time at which the presented token expires."""
        if self.kind == ACCESS_TOKEN:
            return self.access_token_expires_at
        return self.refresh_token_expires_at or self.issued_at

    def _is_refresh_token_active(self, at: int) -> bool:
        if self.rotated_at is not None:
            return False
        if self.refresh_token_expires_at is None or at >= self.refresh_token_expires_at:
            return False
        config = current_app.config
        lifetime = (
            self.client_refresh_lifetime
            or config["AUTHSERVER_REFRESH_TOKEN_LIFETIME_SECONDS"]
        )
        idle = (
            self.client_refresh_idle or config["AUTHSERVER_REFRESH_TOKEN_IDLE_SECONDS"]
        )
        if at >= self.family_created_at + lifetime:
            return False
        return at < self.family_last_used_at + idle


def _select_by(column: Any) -> Executable:
    return (
        select(
            Token.id,
            Token.client_id,
            Token.family_id,
            Token.user_id,
            Token.scope,
            Token.jti,
            Token.issued_at,
            Token.access_token_expires_at,
            Token.refresh_token_expires_at,
            Token.rotated_at,
            Token.revoked_at,
            Token.access_token_revoked_at,
            TokenFamily.created_at,
            TokenFamily.last_used_at,
            TokenFamily.revoked_at,
            Client.client_id,
            Client.is_active,
            Client.refresh_token_lifetime_seconds,
            Client.refresh_token_idle_seconds,
            User.username,
            User.is_active,
        )
        .join(TokenFamily, TokenFamily.id == Token.family_id)
        .join(Client, Client.id == Token.client_id)
        .outerjoin(User, User.id == Token.user_id)
        .where(column == bindparam("digest"))
    )


QUERIES = {
    ACCESS_TOKEN: sql.Query(_select_by(Token.access_token_digest)),
    REFRESH_TOKEN: sql.Query(_select_by(Token.refresh_token_digest)),
}


def find_token(value: str, hint: str | None) -> TokenMatch | None:
    """Find the token ``value`` of any type, trying ``hint``'s type first.

    RFC 7009 section 2.1 and RFC 7662 section 2.1: a hint is only an
    optimisation, so a missing, wrong or unknown hint never stops the
    search.
    """
    digest = digest_secret(value)
    kinds = sorted(TOKEN_TYPES, key=lambda kind: kind != hint)
    for kind in kinds:
        row = sql.fetch_one(QUERIES[kind], {"digest": digest})
        if row is not None:
            # The row has the fields of TokenMatch in order, all but kind.
            return TokenMatch(*row, kind=kind)  # type: ignore[misc]
    return None
