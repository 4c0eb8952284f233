"""Per-username throttling of failed password grants.

After ``AUTHSERVER_LOCKOUT_THRESHOLD`` failures in a row, the username is
locked for ``AUTHSERVER_LOCKOUT_BASE_SECONDS``; every further lock doubles
that time, up to ``AUTHSERVER_LOCKOUT_MAX_SECONDS``. Locks always expire,
so an attacker can delay a user but never lock them out for good. Counters
live in the database, so every server process sharing it reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from authserver.models import LoginThrottle
from authserver.security import digest_secret

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def get_username_digest(username: str) -> str:
    """Return the key of ``username``'s counter.

    The digest is keyed, so the table lists no usernames, and it has a
    fixed length whatever the attacker sends.
    """
    return digest_secret("login:" + username)


def is_locked(session: Session, digest: str, at: int) -> bool:
    """Return whether a lock on ``digest`` is in force at ``at``."""
    locked_until = session.scalar(
        select(LoginThrottle.locked_until).where(
            LoginThrottle.username_digest == digest
        )
    )
    return locked_until is not None and locked_until > at


def record_failure(session: Session, digest: str, at: int) -> int | None:
    """Count a failed attempt; return the end of a lock it starts, if any.

    Attempts that run at the same moment are all checked before any of
    them is counted, so a burst of concurrent guesses can exceed the
    threshold by up to the number of requests the servers handle at once.
    Counting before the check would close that gap, but would also reject
    correct passwords sent concurrently.
    """
    config = current_app.config
    # One statement increments the counter, so concurrent failures on
    # several workers are all counted.
    insert = _insert_for(session)
    statement = (
        insert(LoginThrottle)
        .values(
            username_digest=digest,
            failure_count=1,
            lock_count=0,
            locked_until=0,
            last_failure_at=at,
        )
        .on_conflict_do_update(
            index_elements=[LoginThrottle.username_digest],
            set_={
                "failure_count": LoginThrottle.failure_count + 1,
                "last_failure_at": at,
            },
        )
        .returning(LoginThrottle.failure_count, LoginThrottle.lock_count)
    )
    failure_count, lock_count = session.execute(statement).one()
    if failure_count < config["AUTHSERVER_LOCKOUT_THRESHOLD"]:
        return None

    locked_until: int = at + min(
        config["AUTHSERVER_LOCKOUT_BASE_SECONDS"] * 2**lock_count,
        config["AUTHSERVER_LOCKOUT_MAX_SECONDS"],
    )
    # The condition on lock_count lets only one of several concurrent
    # failures start the lock.
    result = session.execute(
        update(LoginThrottle)
        .where(
            LoginThrottle.username_digest == digest,
            LoginThrottle.lock_count == lock_count,
        )
        .values(failure_count=0, lock_count=lock_count + 1, locked_until=locked_until)
        .execution_options(synchronize_session=False)
    )
    return locked_until if result.rowcount == 1 else None  # type: ignore[attr-defined]


def clear(session: Session, digest: str) -> bool:
    """Forget the failures and lock of ``digest``; return whether any existed."""
    result = session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.username_digest == digest)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _insert_for(session: Session):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(
        f"Login throttling supports PostgreSQL and SQLite, not {dialect!r}."
    )
