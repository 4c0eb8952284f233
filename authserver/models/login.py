"""Failed sign-in counters that throttle password guessing."""

from __future__ import annotations

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from authserver.db import Base
from authserver.db import UnixTime


class LoginThrottle(Base):
    """Failed password grant attempts for one username.

    Rows exist for unknown usernames as well, so that a lock does
    not reveal whether an account exists. The key is a keyed digest of the
    normalised username rather than the username itself, which keeps
    attacker-chosen strings of any length out of the table.
    """

    __tablename__ = "login_throttles"

    username_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    lock_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[int] = mapped_column(UnixTime, default=0)
    last_failure_at: Mapped[int] = mapped_column(UnixTime)
