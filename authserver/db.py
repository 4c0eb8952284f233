"""Database engine, sessions and the declarative base."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

import psycopg
from flask import current_app
from flask import g
from sqlalchemy import BigInteger
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from authserver.config import ConfigError

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

#: How often the watchdog looks for connections held past their deadline.
WATCHDOG_INTERVAL_SECONDS = 0.25

# A fixed naming convention gives every constraint a stable name, so that
# Alembic can drop and alter constraints on every database the same way.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Unix times in seconds, 64-bit so that they outlast January 2038.
#: SQLite's INTEGER is 64-bit already and must stay INTEGER for row ids.
UnixTime = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: A pooled PostgreSQL connection idle for longer is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0


def create_db_engine(url: str, timeout_seconds: int) -> Engine:
    """Create an engine for ``url`` with timeouts on every database call.

    SQLite gets write-ahead logging and a busy timeout so that several
    worker processes can share one file. PostgreSQL gets a connect timeout
    and a statement timeout so that a slow server cannot hang a request,
    and a watchdog for a server that stops responding altogether.
    """
    if url.startswith("sqlite"):
        return _create_sqlite_engine(url, timeout_seconds)

    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args = {
            "connect_timeout": timeout_seconds,
            "options": f"-c statement_timeout={timeout_seconds * 1000}"
            f" -c lock_timeout={timeout_seconds * 1000}",
        }
    engine = create_engine(
        url,
        connect_args=connect_args,
        pool_timeout=timeout_seconds,
    )
    if url.startswith("postgresql"):
        _watch_connections(engine, 2 * timeout_seconds + 1)
    return engine


def _watch_connections(engine: Engine, limit_seconds: float) -> None:
    # statement_timeout runs on the server, so it cannot end a wait for a
    # server that stopped responding, and the driver would wait forever.
    # The watchdog shuts down the socket of a connection checked out for
    # longer than ``limit_seconds``, so the waiting call fails at once.
    watchdog = ConnectionWatchdog(limit_seconds)

    @event.listens_for(engine, "checkout")
    def _check_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        watchdog.arm(dbapi_connection)
        # A connection returned to the pool a moment ago is alive, and a
        # ping per request would cost as much as the request's own query.
        idle = time.monotonic() - record.info.get("checked_in_at", 0.0)
        if idle < PING_AFTER_IDLE_SECONDS:
            return
        # This replaces pool_pre_ping, whose ping runs before this event
        # and so outside the watchdog.
        try:
            dbapi_connection.execute("SELECT 1")
            # End the transaction the ping opened, so that the connection
            # is handed out idle and its autocommit mode can change.
            dbapi_connection.rollback()
        except psycopg.Error as e:
            watchdog.disarm(dbapi_connection)
            raise InvalidatePoolError("The pooled connection is broken.") from e

    @event.listens_for(engine, "checkin")
    def _check_in(dbapi_connection: Any, record: Any) -> None:
        watchdog.disarm(dbapi_connection)
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "invalidate")
    def _invalidate(dbapi_connection: Any, _record: Any, _error: Any) -> None:
        watchdog.disarm(dbapi_connection)


class ConnectionWatchdog:
    """Shut down the sockets of PostgreSQL connections held too long.

    One thread per process checks the deadlines. It starts on first use,
    so each worker of a server that forks after loading the application
    gets its own.
    """

    def __init__(self, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        self._deadlines: dict[int, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def arm(self, dbapi_connection: Any) -> None:
        """Start the clock of a connection that was just checked out."""
        deadline = time.monotonic() + self.limit_seconds
        with self._lock:
            self._deadlines[id(dbapi_connection)] = (deadline, dbapi_connection)
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="authserver-db-watchdog", daemon=True
                )
                self._thread.start()

    def disarm(self, dbapi_connection: Any) -> None:
        """Stop the clock of a connection returned to the pool."""
        with self._lock:
            self._deadlines.pop(id(dbapi_connection), None)

    def _run(self) -> None:
        while True:
            time.sleep(WATCHDOG_INTERVAL_SECONDS)
            now = time.monotonic()
            with self._lock:
                expired = [
                    (key, connection)
                    for key, (deadline, connection) in self._deadlines.items()
                    if deadline <= now
                ]
                for key, _ in expired:
                    del self._deadlines[key]
            for _, connection in expired:
                _shut_down_socket(connection, self.limit_seconds)


def _shut_down_socket(dbapi_connection: Any, limit_seconds: float) -> None:
    try:
        descriptor = dbapi_connection.pgconn.socket
        # A duplicate descriptor shares the socket, so shutting it down
        # wakes the thread that waits on the original.
        with socket.socket(fileno=os.dup(descriptor)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, psycopg.Error):
        # The connection closed on its own in the meantime.
        return
    logger.error(
        "Shut down a database connection checked out for over %s seconds."
        " The database is stalled or unreachable.",
        limit_seconds,
    )


def _create_sqlite_engine(url: str, timeout_seconds: int) -> Engine:
    engine = create_engine(url, connect_args={"timeout": timeout_seconds})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={timeout_seconds * 1000}")
        cursor.close()

    return engine


def init_app(app: Flask) -> None:
    """Create the engine for ``app`` and close each request's session."""
    url = app.config["AUTHSERVER_DATABASE_URL"]
    try:
        engine = create_db_engine(
            url, app.config["AUTHSERVER_DATABASE_TIMEOUT_SECONDS"]
        )
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        # The message names the setting but not the URL, which may hold a
        # password.
        raise ConfigError(
            "AUTHSERVER_DATABASE_URL is not a valid SQLAlchemy URL:"
            f" {type(e).__name__}."
        ) from None
    app.extensions["authserver.engine"] = engine
    app.extensions["authserver.sessionmaker"] = sessionmaker(
        engine, expire_on_commit=False
    )
    app.teardown_appcontext(_close_session)


def get_engine() -> Engine:
    """Return the current application's engine."""
    engine: Engine = current_app.extensions["authserver.engine"]
    return engine


def get_session() -> Session:
    """Return the session of the current application context."""
    if "db_session" not in g:
        factory = current_app.extensions["authserver.sessionmaker"]
        g.db_session = factory()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
