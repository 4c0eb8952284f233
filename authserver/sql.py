"""Precompiled statements run on raw driver connections, for hot paths.

A Session, and even a Core execution, spends more time building and
caching a statement than SQLite or PostgreSQL spends running it. The few
statements on the paths of every API call and refresh are compiled once
per application and run with the driver's own cursor on a connection
from the engine's pool. Everything else uses the ORM.

Each read takes a connection from the pool and gives it back at once, so
no connection stays checked out while a request waits for something
else, such as a bcrypt check. On PostgreSQL reads run in autocommit mode,
which spares the BEGIN and ROLLBACK round trips. Writes run in
:func:`transaction`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import psycopg
from flask import current_app

from authserver.db import get_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import PoolProxiedConnection
    from sqlalchemy.sql import Executable

DRIVER_ERRORS = (sqlite3.Error, psycopg.Error)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None


class Query:
    """A statement with named bind parameters, compiled once per dialect."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement

    def compile(self, engine: Engine) -> _Compiled:
        """Return the SQL text and parameter order for ``engine``."""
        cache: dict[int, _Compiled] = current_app.extensions.setdefault(
            "authserver.compiled_queries", {}
        )
        compiled = cache.get(id(self))
        if compiled is None:
            result = self.statement.compile(dialect=engine.dialect)  # type: ignore[attr-defined]
            names = tuple(result.positiontup) if result.positional else None
            compiled = _Compiled(str(result), names)
            cache[id(self)] = compiled
        return compiled

    def bind(self, engine: Engine, parameters: Mapping[str, Any]) -> tuple[str, Any]:
        """Return the SQL text and the driver's parameters for ``engine``."""
        compiled = self.compile(engine)
        if compiled.names is None:
            return compiled.sql, parameters
        return compiled.sql, tuple(parameters[name] for name in compiled.names)


class Transaction:
    """Statements run in one transaction on one connection."""

    def __init__(self, engine: Engine, connection: PoolProxiedConnection) -> None:
        self._engine = engine
        self._connection = connection

    def execute_count(self, query: Query, parameters: Mapping[str, Any]) -> int:
        """Run a data-changing ``query``; return the number of rows changed."""
        sql, values = query.bind(self._engine, parameters)
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, values)
            return int(cursor.rowcount)
        finally:
            cursor.close()


def fetch_one(query: Query, parameters: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Run a read-only ``query`` and return its first row, or None."""
    engine = get_engine()
    sql, values = query.bind(engine, parameters)
    with _connect(engine, autocommit=True) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, values)
            row = cursor.fetchone()
        finally:
            cursor.close()
    return tuple(row) if row is not None else None


@contextmanager
def transaction() -> Iterator[Transaction]:
    """Run the block's statements in one transaction, committed at the end.

    The transaction is rolled back when the block raises.
    """
    engine = get_engine()
    with _connect(engine, autocommit=False) as connection:
        try:
            yield Transaction(engine, connection)
        except BaseException:
            # A broken connection cannot roll back; it is discarded anyway.
            with suppress(*DRIVER_ERRORS):
                connection.rollback()
            raise
        connection.commit()


@contextmanager
def _connect(engine: Engine, *, autocommit: bool) -> Iterator[PoolProxiedConnection]:
    connection = engine.raw_connection()
    driver = connection.dbapi_connection
    uses_autocommit = autocommit and isinstance(driver, psycopg.Connection)
    try:
        if uses_autocommit:
            driver.autocommit = True  # type: ignore[union-attr]
        yield connection
    except DRIVER_ERRORS as e:
        # A connection that failed may be broken, for example after the
        # database restarted; keep it out of the pool.
        if _is_disconnect(e):
            connection.invalidate(e)
        raise
    finally:
        if uses_autocommit and connection.dbapi_connection is not None:
            driver.autocommit = False  # type: ignore[union-attr]
        connection.close()


def _is_disconnect(error: BaseException) -> bool:
    if isinstance(error, psycopg.OperationalError):
        return True
    return isinstance(error, sqlite3.OperationalError) and "locked" not in str(error)
