"""Storage of issued tokens: issue, rotate, revoke and look up.

Functions that take a session leave committing to the caller, so that a
grant can make all of its changes in one transaction. The refresh grant,
which is on a hot path, uses the precompiled statements at the end of
this module on the request's raw connection instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from flask import current_app
from sqlalchemy import Update
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from authserver import jwt_tokens
from authserver import sql
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
    values: dict[str, Any]

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


@dataclass(frozen=True)
class FamilyRef:
    """The family fields that a new token row needs."""

    id: int
    client_pk: int
    client_id: str
    user_id: int | None
    expires_at: int


def prepare_token(
    family: FamilyRef,
    scope: str,
    lifetimes: Lifetimes,
    issued_at: int,
    *,
    include_refresh_token: bool,
    parent_id: int | None = None,
) -> IssuedToken:
    """Generate a token pair in ``family`` and the row that stores it.

    The row holds only digests. With ``AUTHSERVER_ACCESS_TOKEN_FORMAT=jwt``
    the access token is a signed JWT (RFC 9068); it is stored by digest
    and by ``jti`` all the same, so that revocation and introspection work
    for it.
    """
    jti = None
    if current_app.config["AUTHSERVER_ACCESS_TOKEN_FORMAT"] == "jwt":
        jti = generate_secret()
        access_token = jwt_tokens.create_access_token(
            family.client_id,
            family.user_id,
            scope,
            jti,
            issued_at,
            lifetimes.access_token,
        )
    else:
        access_token = generate_secret()

    refresh_token = generate_secret() if include_refresh_token else None
    refresh_expires_at = None
    if refresh_token is not None:
        refresh_expires_at = min(family.expires_at, issued_at + lifetimes.refresh_token)

    values: dict[str, Any] = {
        "family_id": family.id,
        "parent_id": parent_id,
        "client_id": family.client_pk,
        "user_id": family.user_id,
        "scope": scope,
        "access_token_digest": digest_secret(access_token),
        "refresh_token_digest": (
            digest_secret(refresh_token) if refresh_token is not None else None
        ),
        "jti": jti,
        "issued_at": issued_at,
        "access_token_expires_at": issued_at + lifetimes.access_token,
        "refresh_token_expires_at": refresh_expires_at,
    }
    return IssuedToken(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=lifetimes.access_token,
        scope=scope,
        values=values,
    )


def issue_first_token(
    session: Session,
    client: Client,
    user: User | None,
    scope: str,
    lifetimes: Lifetimes,
    issued_at: int,
    *,
    include_refresh_token: bool,
    guards: Sequence[Update] = (),
) -> IssuedToken | None:
    """Start a token family for a grant that is not a refresh.

    The pair is prepared, and a JWT signed, before anything is written,
    because signing may need to store the first signing key in a
    transaction of its own. Then each of ``guards`` runs and must change
    exactly one row; if one does not, nothing is issued and None is
    returned.
    """
    family = FamilyRef(
        id=0,
        client_pk=client.id,
        client_id=client.client_id,
        user_id=user.id if user else None,
        expires_at=issued_at + lifetimes.refresh_token,
    )
    issued = prepare_token(
        family,
        scope,
        lifetimes,
        issued_at,
        include_refresh_token=include_refresh_token,
    )

    for guard in guards:
        result = session.execute(guard.execution_options(synchronize_session=False))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None

    row = TokenFamily(
        client_id=client.id,
        user_id=family.user_id,
        scope=scope,
        created_at=issued_at,
        last_used_at=issued_at,
        expires_at=family.expires_at,
    )
    session.add(row)
    session.flush()
    issued.values["family_id"] = row.id
    session.execute(insert(Token).values(**issued.values))
    return issued


def find_by_access_token(session: Session, access_token: str) -> Token | None:
    """Return the token whose access token is ``access_token``."""
    return session.scalar(
        select(Token).where(Token.access_token_digest == digest_secret(access_token))
    )


def revoke_access_token(session: Session, token_id: int, at: int) -> None:
    """Revoke the access token of a pair, leaving its refresh token valid."""
    session.execute(
        update(Token)
        .where(Token.id == token_id, Token.access_token_revoked_at.is_(None))
        .values(access_token_revoked_at=at)
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


# Statements of the refresh grant, run with :mod:`authserver.sql`.

FIND_REFRESH_TOKEN = sql.Query(
    select(
        Token.id,
        Token.client_id,
        Token.family_id,
        Token.issued_at,
        Token.refresh_token_expires_at,
        Token.rotated_at,
        Token.revoked_at,
        TokenFamily.scope,
        TokenFamily.created_at,
        TokenFamily.last_used_at,
        TokenFamily.expires_at,
        TokenFamily.revoked_at,
        TokenFamily.user_id,
        User.is_active,
    )
    .join(TokenFamily, TokenFamily.id == Token.family_id)
    .outerjoin(User, User.id == TokenFamily.user_id)
    .where(Token.refresh_token_digest == bindparam("digest"))
)

# The conditional UPDATE is the lock of the rotation: of any number of
# concurrent requests presenting the same refresh token, exactly one gets
# a changed row count of 1, so exactly one may issue the next pair.
CLAIM_FOR_ROTATION = sql.Query(
    update(Token)
    .where(
        Token.id == bindparam("token_id"),
        Token.rotated_at.is_(None),
        Token.revoked_at.is_(None),
    )
    .values(rotated_at=bindparam("at"))
)

# Used in the grace period after a rotation: the live pair that replaced
# the presented token is revoked, and again only one request can do so.
REVOKE_SUCCESSOR = sql.Query(
    update(Token)
    .where(
        Token.parent_id == bindparam("token_id"),
        Token.rotated_at.is_(None),
        Token.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("at"))
)

TOUCH_FAMILY = sql.Query(
    update(TokenFamily)
    .where(TokenFamily.id == bindparam("family_id"))
    .values(last_used_at=bindparam("at"))
)

REVOKE_FAMILY = sql.Query(
    update(TokenFamily)
    .where(TokenFamily.id == bindparam("family_id"), TokenFamily.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"))
)

REVOKE_FAMILY_TOKENS = sql.Query(
    update(Token)
    .where(Token.family_id == bindparam("family_id"), Token.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"))
)

INSERT_TOKEN = sql.Query(
    insert(Token).values(
        {
            column: bindparam(column)
            for column in (
                "family_id",
                "parent_id",
                "client_id",
                "user_id",
                "scope",
                "access_token_digest",
                "refresh_token_digest",
                "jti",
                "issued_at",
                "access_token_expires_at",
                "refresh_token_expires_at",
            )
        }
    )
)


def revoke_family_now(family_id: int, at: int) -> int:
    """Revoke a family in a transaction of its own."""
    parameters = {"family_id": family_id, "at": at}
    with sql.transaction() as transaction:
        transaction.execute_count(REVOKE_FAMILY, parameters)
        count = transaction.execute_count(REVOKE_FAMILY_TOKENS, parameters)
    return count
