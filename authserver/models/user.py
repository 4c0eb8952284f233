"""Resource owners: the users who sign in with the password grant."""

from __future__ import annotations

from sqlalchemy import Boolean
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from authserver.db import Base
from authserver.db import UnixTime


class User(Base):
    """A resource owner.

    ``username`` is stored in its normalised form (see
    :func:`authserver.passwords.normalize_username`), so two spellings that
    normalise alike are one user. Times are Unix seconds.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(60))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(UnixTime)
    updated_at: Mapped[int] = mapped_column(UnixTime)

    def get_user_id(self) -> int:
        """Return the id that Authlib stores with issued tokens."""
        return self.id
