"""Precompiled statements run on raw driver connections, for hot paths.

A Session, and even a Core execution, spends more time building and
caching a statement than SQLite or PostgreSQL spends running it. The few
statements on the paths of every API call and refresh are compiled once
per application, and run with the driver's own cursor on a pooled
connection. Everything else uses the ORM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from flask import current_app
from flask import g

from authserver.db import get_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql import Executable


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


def get_connection() -> Any:
    """Return the raw driver connection of the current request.

    The connection comes from the engine's pool and goes back to it, with
    any open transaction rolled back, when the request ends.
    """
    connection = g.get("raw_connection")
    if connection is None:
        connection = get_engine().raw_connection()
        g.raw_connection = connection
    return connection


def close_connection(_exc: BaseException | None = None) -> None:
    """Give the request's raw connection back to the pool."""
    connection = g.pop("raw_connection", None)
    if connection is not None:
        connection.close()


def execute(query: Query, parameters: Mapping[str, Any]) -> Any:
    """Run ``query`` on the request's connection; return the cursor."""
    compiled = query.compile(get_engine())
    values: Any = parameters
    if compiled.names is not None:
        values = tuple(parameters[name] for name in compiled.names)
    cursor = get_connection().cursor()
    cursor.execute(compiled.sql, values)
    return cursor


def fetch_one(query: Query, parameters: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Run ``query`` and return its first row, or None."""
    cursor = execute(query, parameters)
    try:
        row = cursor.fetchone()
    finally:
        cursor.close()
    return tuple(row) if row is not None else None


def execute_count(query: Query, parameters: Mapping[str, Any]) -> int:
    """Run a data-changing ``query`` and return the number of rows changed."""
    cursor = execute(query, parameters)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def commit() -> None:
    """Commit the transaction of the request's connection."""
    get_connection().commit()


def rollback() -> None:
    """Roll back the transaction of the request's connection."""
    get_connection().rollback()
