"""Database engine, sessions and the declarative base."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from flask import current_app
from flask import g
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

if TYPE_CHECKING:
    from flask import Flask

# A fixed naming convention gives every constraint a stable name, so that
# Alembic can drop and alter constraints on every database the same way.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_db_engine(url: str, timeout_seconds: int) -> Engine:
    """Create an engine for ``url`` with timeouts on every database call.

    SQLite gets write-ahead logging and a busy timeout so that several
    worker processes can share one file. PostgreSQL gets a connect timeout
    and a statement timeout so that a slow server cannot hang a request.
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
    return create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_timeout=timeout_seconds,
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
    engine = create_db_engine(
        app.config["AUTHSERVER_DATABASE_URL"],
        app.config["AUTHSERVER_DATABASE_TIMEOUT_SECONDS"],
    )
    app.extensions["authserver.engine"] = engine
    app.extensions["authserver.sessionmaker"] = sessionmaker(
        engine, expire_on_commit=False
    )
    app.teardown_appcontext(_close_session)

    from authserver.sql import close_connection

    app.teardown_appcontext(close_connection)


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
