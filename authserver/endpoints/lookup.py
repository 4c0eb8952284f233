"""Finding a presented token of either type, and whether it is active."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from authserver.grants.common import get_lifetimes
from authserver.models import Client
from authserver.models import Token
from authserver.models import TokenFamily
from authserver.models import User
from authserver.security import digest_secret
from authserver.security import now

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ACCESS_TOKEN = "access_token"
REFRESH_TOKEN = "refresh_token"
TOKEN_TYPES = (ACCESS_TOKEN, REFRESH_TOKEN)


@dataclass
class TokenMatch:
    """A stored token found by a presented string, and which half it was."""

    token: Token
    family: TokenFamily
    client: Client
    user: User | None
    kind: str

    def check_client(self, client: Client) -> bool:
        """Whether ``client`` is the client the token was issued to."""
        return self.token.client_id == client.id

    def is_active(self) -> bool:
        """Whether the presented token would be accepted right now."""
        at = now()
        if self.token.revoked_at is not None or self.family.revoked_at is not None:
            return False
        if self.user is not None and not self.user.is_active:
            return False
        if not self.client.is_active:
            return False
        if self.kind == ACCESS_TOKEN:
            return (
                self.token.access_token_revoked_at is None
                and at < self.token.access_token_expires_at
            )
        return self._is_refresh_token_active(at)

    def get_expires_at(self) -> int:
        """Return the Unix time at which the presented token expires."""
        if self.kind == ACCESS_TOKEN:
            return self.token.access_token_expires_at
        return self.token.refresh_token_expires_at or self.token.issued_at

    def _is_refresh_token_active(self, at: int) -> bool:
        if self.token.rotated_at is not None:
            return False
        expires_at = self.token.refresh_token_expires_at
        if expires_at is None or at >= expires_at:
            return False
        lifetimes = get_lifetimes(self.client)
        if at >= self.family.created_at + lifetimes.refresh_token:
            return False
        return at < self.family.last_used_at + lifetimes.refresh_idle


def find_token(session: Session, value: str, hint: str | None) -> TokenMatch | None:
    """Find the token ``value`` of any type, trying ``hint``'s type first.

    RFC 7009 section 2.1 and RFC 7662 section 2.1: a hint is only an
    optimisation, so a missing, wrong or unknown hint never stops the
    search.
    """
    digest = digest_secret(value)
    kinds = sorted(TOKEN_TYPES, key=lambda kind: kind != hint)
    for kind in kinds:
        column = (
            Token.access_token_digest
            if kind == ACCESS_TOKEN
            else Token.refresh_token_digest
        )
        row = session.execute(
            select(Token, TokenFamily, Client, User)
            .join(TokenFamily, TokenFamily.id == Token.family_id)
            .join(Client, Client.id == Token.client_id)
            .outerjoin(User, User.id == Token.user_id)
            .where(column == digest)
        ).first()
        if row is not None:
            return TokenMatch(row[0], row[1], row[2], row[3], kind)
    return None
