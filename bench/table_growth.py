"""Fill the token tables with many rows, written directly with SQL.

Rows look like the ones the server writes: each family contains a chain of
``TOKENS_PER_FAMILY`` tokens, the older ones rotated, and every token is
stored only as HMAC-SHA-256 digests under ``AUTHSERVER_SECRET_KEY``, as
:func:`authserver.security.digest_secret` computes them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

TOKENS_PER_FAMILY = 4
BATCH_TOKENS = 40_000
DAY_SECONDS = 24 * 3600

FAMILY_COLUMNS = (
    "id",
    "client_id",
    "user_id",
    "scope",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
)
TOKEN_COLUMNS = (
    "id",
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
    "rotated_at",
    "revoked_at",
    "access_token_revoked_at",
)


@dataclass(frozen=True)
class Owner:
    """The row ids of the client and user that the tokens belong to."""

    client_row_id: int
    user_row_id: int


def empty_token_tables(engine: sa.Engine) -> None:
    """Delete every token and token family."""
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM tokens"))
        connection.execute(sa.text("DELETE FROM token_families"))


def insert_tokens(
    engine: sa.Engine, secret_key: str, owner: Owner, count: int, keep: int
) -> list[str]:
    """Insert ``count`` tokens in families; return the first ``keep`` in clear.

    Every access token expires a day from now, so each returned one is
    valid for ``/api/me``.
    """
    key = secret_key.encode("utf-8")
    with engine.connect() as connection:
        first_family = _next_id(connection, "token_families")
        first_token = _next_id(connection, "tokens")

    clear_tokens: list[str] = []
    batches = _generate_batches(key, owner, count, first_family, first_token, keep)
    if engine.dialect.name == "postgresql":
        _copy_postgres(engine, batches, clear_tokens)
    else:
        _insert_sqlite(engine, batches, clear_tokens)
    _analyze(engine)
    return clear_tokens


def _next_id(connection: sa.Connection, table: str) -> int:
    highest = connection.scalar(sa.text(f"SELECT MAX(id) FROM {table}"))
    return int(highest or 0) + 1


@dataclass
class _Batch:
    families: list[tuple[object, ...]]
    tokens: list[tuple[object, ...]]
    clear_tokens: list[str]


def _generate_batches(
    key: bytes,
    owner: Owner,
    count: int,
    first_family: int,
    first_token: int,
    keep: int,
) -> Iterator[_Batch]:
    at = int(time.time())
    family_id = first_family
    token_id = first_token
    generated = 0
    while generated < count:
        batch = _Batch([], [], [])
        while generated < count and len(batch.tokens) < BATCH_TOKENS:
            chain = min(TOKENS_PER_FAMILY, count - generated)
            _add_family(
                batch, key, owner, family_id, token_id, chain, at, generated < keep
            )
            family_id += 1
            token_id += chain
            generated += chain
        yield batch


def _add_family(
    batch: _Batch,
    key: bytes,
    owner: Owner,
    family_id: int,
    first_token: int,
    chain: int,
    at: int,
    keep: bool,
) -> None:
    batch.families.append(
        (
            family_id,
            owner.client_row_id,
            owner.user_row_id,
            "profile",
            at - DAY_SECONDS,
            at,
            at + 30 * DAY_SECONDS,
            None,
        )
    )
    for position in range(chain):
        access_token = secrets.token_urlsafe(32)
        refresh_token = secrets.token_urlsafe(32)
        if keep:
            batch.clear_tokens.append(access_token)
        is_latest = position == chain - 1
        batch.tokens.append(
            (
                first_token + position,
                family_id,
                first_token + position - 1 if position else None,
                owner.client_row_id,
                owner.user_row_id,
                "profile",
                _digest(key, access_token),
                _digest(key, refresh_token),
                None,
                at - (chain - position) * 60,
                at + DAY_SECONDS,
                at + 30 * DAY_SECONDS,
                None if is_latest else at - (chain - position - 1) * 60,
                None,
                None,
            )
        )


def _digest(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _copy_postgres(
    engine: sa.Engine, batches: Iterator[_Batch], clear_tokens: list[str]
) -> None:
    families = ", ".join(FAMILY_COLUMNS)
    tokens = ", ".join(TOKEN_COLUMNS)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        for batch in batches:
            # The families go first, because the tokens' foreign key needs them.
            with cursor.copy(f"COPY token_families ({families}) FROM STDIN") as copy:
                for row in batch.families:
                    copy.write_row(row)
            with cursor.copy(f"COPY tokens ({tokens}) FROM STDIN") as copy:
                for row in batch.tokens:
                    copy.write_row(row)
            clear_tokens.extend(batch.clear_tokens)
        # Explicit ids leave the sequences behind; the server's next insert
        # must not reuse an id.
        for table in ("token_families", "tokens"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT MAX(id) FROM {table}))"
            )
        connection.commit()
    finally:
        connection.close()


def _insert_sqlite(
    engine: sa.Engine, batches: Iterator[_Batch], clear_tokens: list[str]
) -> None:
    families = _insert_statement("token_families", FAMILY_COLUMNS)
    tokens = _insert_statement("tokens", TOKEN_COLUMNS)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        for batch in batches:
            cursor.executemany(families, batch.families)
            cursor.executemany(tokens, batch.tokens)
            connection.commit()
            clear_tokens.extend(batch.clear_tokens)
    finally:
        connection.close()


def _insert_statement(table: str, columns: tuple[str, ...]) -> str:
    placeholders = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


def _analyze(engine: sa.Engine) -> None:
    """Refresh planner statistics and, on SQLite, fold the WAL into the file.

    A large write-ahead log slows every reader on SQLite, and stale
    statistics can change the plan on PostgreSQL; both would measure the
    bulk load rather than the table size.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(sa.text("VACUUM ANALYZE token_families"))
            connection.execute(sa.text("VACUUM ANALYZE tokens"))
            # Writes the loaded pages now, not while the lookups are measured.
            connection.execute(sa.text("CHECKPOINT"))
        return

    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        connection.commit()
        connection.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))


def count_tokens(engine: sa.Engine) -> int:
    """Return the number of rows in the tokens table."""
    with engine.connect() as connection:
        return int(connection.scalar(sa.text("SELECT COUNT(*) FROM tokens")) or 0)
