"""Keys that sign JWT access tokens."""

from __future__ import annotations

from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from authserver.db import Base
from authserver.db import UnixTime


class SigningKey(Base):
    """A signing key pair; the private key is stored encrypted.

    The newest key without ``retired_at`` signs new tokens. A retired key
    stays published in the JWKS document until ``expires_at``, when the
    last token it signed has expired. Times are Unix seconds.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    encrypted_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(UnixTime)
    retired_at: Mapped[int | None] = mapped_column(UnixTime)
    expires_at: Mapped[int | None] = mapped_column(UnixTime)
