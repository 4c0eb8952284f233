"""Issued tokens and the families that link each refresh chain."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from authserver.db import Base
from authserver.db import UnixTime

# SQLite gives automatic row ids only to INTEGER primary keys.
TokenId = BigInteger().with_variant(Integer(), "sqlite")


class TokenFamily(Base):
    """Every token descended from one password or client credentials grant.

    A refresh keeps the family, so the family's ``created_at`` is the time
    of the original grant and bounds the absolute lifetime of the chain,
    and its ``scope`` is the scope that the resource owner granted, which
    every refresh may narrow but never widen. Times are Unix seconds.
    """

    __tablename__ = "token_families"

    id: Mapped[int] = mapped_column(TokenId, primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[int] = mapped_column(UnixTime)
    last_used_at: Mapped[int] = mapped_column(UnixTime)
    expires_at: Mapped[int] = mapped_column(UnixTime, index=True)
    revoked_at: Mapped[int | None] = mapped_column(UnixTime)


class Token(Base):
    """One access token with its optional refresh token.

    Tokens are stored only as keyed digests. ``rotated_at`` marks a refresh
    token that was exchanged for a new pair; presenting it again is reuse.
    ``revoked_at`` marks a pair that must no longer be accepted, and
    ``access_token_revoked_at`` an access token revoked on its own (RFC
    7009), whose refresh token stays valid.
    """

    __tablename__ = "tokens"
    __table_args__ = (
        Index("ix_tokens_family_id_revoked_at", "family_id", "revoked_at"),
    )

    id: Mapped[int] = mapped_column(TokenId, primary_key=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("token_families.id", ondelete="CASCADE")
    )
    parent_id: Mapped[int | None] = mapped_column(TokenId, index=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(1000))
    access_token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    jti: Mapped[str | None] = mapped_column(String(64), unique=True)
    issued_at: Mapped[int] = mapped_column(UnixTime)
    access_token_expires_at: Mapped[int] = mapped_column(UnixTime)
    refresh_token_expires_at: Mapped[int | None] = mapped_column(UnixTime)
    rotated_at: Mapped[int | None] = mapped_column(UnixTime)
    revoked_at: Mapped[int | None] = mapped_column(UnixTime)
    access_token_revoked_at: Mapped[int | None] = mapped_column(UnixTime)
