"""Storage of issued tokens: issue, rotate, revoke and look up.

Every function takes the session to work in and leaves committing to the
caller, so that a grant can make all of its changes in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import select
from sqlalchemy import update

from authserver import jwt_tokens
from authserver.models import Token
from authserver.models import TokenFamily
from authserver.models import User
from authserver.security import digest_secret
from authserver.security import generate_secret

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from authserver.models import Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedToken:
    """Clear-text values of a newly issued pair, for the token response."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str
    row: Token

    def to_response(self) -> dict[str, str | int]:
        """Return the JSON body of RFC 6749 section 5.1."""
        body: dict[str, str | int] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


@dataclass(frozen=True)
class Lifetimes:
    """Token lifetimes in seconds for one client."""

    access_token: int
    refresh_token: int
    refresh_idle: int


def create_family(
    session: Session,
    client: Client,
    user: User | None,
    scope: str,
    lifetimes: Lifetimes,
    issued_at: int,
) -> TokenFamily:
    """Start a token family for a grant that is not a refresh."""
    family = TokenFamily(
        client_id=client.id,
        user_id=user.id if user else None,
        scope=scope,
        created_at=issued_at,
        last_used_at=issued_at,
        expires_at=issued_at + lifetimes.refresh_token,
    )
    session.add(family)
    session.flush()
    return family


def issue_token(
    session: Session,
    family: TokenFamily,
    scope: str,
    lifetimes: Lifetimes,
    issued_at: int,
    *,
    include_refresh_token: bool,
    parent_id: int | None = None,
) -> IssuedToken:
    """Create a token pair in ``family`` and store it as digests.

    With ``AUTHSERVER_ACCESS_TOKEN_FORMAT=jwt`` the access token is a
    signed JWT (RFC 9068); it is stored by digest and by ``jti`` all the
    same, so that revocation and introspection work for it.
    """
    jti = None
    if current_app.config["AUTHSERVER_ACCESS_TOKEN_FORMAT"] == "jwt":
        jti = generate_secret()
        access_token = jwt_tokens.create_access_token(
            session, family, scope, jti, issued_at, lifetimes.access_token
        )
    else:
        access_token = generate_secret()
    refresh_token = generate_secret() if include_refresh_token else None
    refresh_expires_at = None
    if refresh_token is not None:
        refresh_expires_at = min(family.expires_at, issued_at + lifetimes.refresh_token)

    row = Token(
        family_id=family.id,
        parent_id=parent_id,
        client_id=family.client_id,
        user_id=family.user_id,
        scope=scope,
        access_token_digest=digest_secret(access_token),
        jti=jti,
        refresh_token_digest=(
            digest_secret(refresh_token) if refresh_token is not None else None
        ),
        issued_at=issued_at,
        access_token_expires_at=issued_at + lifetimes.access_token,
        refresh_token_expires_at=refresh_expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedToken(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=lifetimes.access_token,
        scope=scope,
        row=row,
    )


def find_by_refresh_token(
    session: Session, refresh_token: str
) -> tuple[Token, TokenFamily] | None:
    """Return the token whose refresh token is ``refresh_token``, and its family."""
    statement = (
        select(Token, TokenFamily)
        .join(TokenFamily, Token.family_id == TokenFamily.id)
        .where(Token.refresh_token_digest == digest_secret(refresh_token))
    )
    row = session.execute(statement).first()
    if row is None:
        return None
    return row[0], row[1]


def find_by_access_token(session: Session, access_token: str) -> Token | None:
    """Return the token whose access token is ``access_token``."""
    return session.scalar(
        select(Token).where(Token.access_token_digest == digest_secret(access_token))
    )


def revoke_access_token(session: Session, token: Token, at: int) -> None:
    """Revoke the access token of ``token``, leaving its refresh token valid."""
    session.execute(
        update(Token)
        .where(Token.id == token.id, Token.access_token_revoked_at.is_(None))
        .values(access_token_revoked_at=at)
        .execution_options(synchronize_session=False)
    )


def claim_for_rotation(session: Session, token: Token, at: int) -> bool:
    """Mark ``token``'s refresh token as used, if no other request has.

    This single conditional UPDATE is the lock: of any number of concurrent
    requests presenting the same refresh token, exactly one sees a changed
    row, so exactly one may issue the next pair.
    """
    result = session.execute(
        update(Token)
        .where(
            Token.id == token.id,
            Token.rotated_at.is_(None),
            Token.revoked_at.is_(None),
        )
        .values(rotated_at=at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def revoke_successor(session: Session, token: Token, at: int) -> bool:
    """Revoke the live pair that replaced ``token``, if there is one.

    Used for the grace period after a rotation. Like
    :func:`claim_for_rotation`, the conditional UPDATE lets only one of
    several concurrent requests succeed.
    """
    result = session.execute(
        update(Token)
        .where(
            Token.parent_id == token.id,
            Token.rotated_at.is_(None),
            Token.revoked_at.is_(None),
        )
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def touch_family(session: Session, family_id: int, at: int) -> None:
    """Record ``at`` as the family's last use, for the idle timeout."""
    session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id)
        .values(last_used_at=at)
        .execution_options(synchronize_session=False)
    )


def revoke_family(session: Session, family_id: int, at: int) -> int:
    """Revoke a family and every token in it; return the tokens revoked."""
    session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Token)
        .where(Token.family_id == family_id, Token.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_families_where(session: Session, at: int, **criteria: int) -> int:
    """Revoke every live family of a user or client; return the count.

    :param criteria: ``user_id=...`` or ``client_id=...``.
    """
    conditions = [
        getattr(TokenFamily, name) == value for name, value in criteria.items()
    ]
    family_ids = session.scalars(
        select(TokenFamily.id).where(*conditions, TokenFamily.revoked_at.is_(None))
    ).all()
    for family_id in family_ids:
        revoke_family(session, family_id, at)
    return len(family_ids)
