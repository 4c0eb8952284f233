"""``authserver tokens``: maintenance of the token tables."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext
from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import aliased

from authserver.db import get_session
from authserver.models import Token
from authserver.models import TokenFamily
from authserver.security import now

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session

SECONDS_PER_DAY = 24 * 3600

#: The largest --batch-size. Each batch lists its family ids as bound
#: parameters, and SQLite 3.32 and later accept at most 32766 of them in
#: one statement by default.
MAX_BATCH_SIZE = 10000


@dataclass
class PurgeResult:
    """Counts of one purge run."""

    families: int = 0
    tokens: int = 0
    batches: int = 0


@click.group("tokens")
def tokens_group() -> None:
    """Maintain issued tokens."""


@tokens_group.command("purge-expired")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=MAX_BATCH_SIZE),
    default=1000,
    show_default=True,
    help="Token families deleted per transaction.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(min=1, max=36500),
    default=7,
    show_default=True,
    help="Days to keep a family after it expired or was revoked.",
)
@with_appcontext
def purge_expired_command(batch_size: int, retention_days: int) -> None:
    """Delete token families that expired or were revoked long enough ago.

    Each batch is deleted in its own short transaction, so the command can
    run while the server serves. The retention period is at least a day,
    so a refresh that passed its checks just before its family expired
    cannot have the pair it is issuing deleted.
    """
    session = get_session()
    cutoff = now() - retention_days * SECONDS_PER_DAY

    if _is_terminal():
        total = count_purgeable(session, cutoff)
        with click.progressbar(
            length=total, label="Purging token families"
        ) as progress:
            result = purge_families(session, cutoff, batch_size, progress.update)
    else:
        result = purge_families(session, cutoff, batch_size)

    before = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(
        f"Deleted {result.families} token families and {result.tokens} tokens"
        f" in {result.batches} batches; kept everything that ended after"
        f" {before}."
    )


def get_purgeable_condition(cutoff: int) -> ColumnElement[bool]:
    """Return the condition on a family that :func:`purge_families` deletes.

    A family is purgeable when it expired or was revoked before ``cutoff``
    and none of its tokens is both unrevoked and has an access token that
    expires at or after ``cutoff``. A refresh token never outlives its
    family's ``expires_at``, so such a family contains no usable token.
    """
    # An alias keeps the subquery from correlating with the tokens table
    # of a DELETE that uses this condition.
    token = aliased(Token)
    unexpired_token = exists().where(
        token.family_id == TokenFamily.id,
        token.revoked_at.is_(None),
        token.access_token_expires_at >= cutoff,
    )
    ended = or_(TokenFamily.expires_at < cutoff, TokenFamily.revoked_at < cutoff)
    return and_(ended, ~unexpired_token)


def count_purgeable(session: Session, cutoff: int) -> int:
    """Return the number of families that a purge at ``cutoff`` deletes."""
    statement = select(func.count(TokenFamily.id)).where(
        get_purgeable_condition(cutoff)
    )
    count = session.scalar(statement)
    session.commit()
    return int(count or 0)


def purge_families(
    session: Session,
    cutoff: int,
    batch_size: int,
    on_batch: Callable[[int], object] | None = None,
) -> PurgeResult:
    """Delete purgeable families and their tokens, one batch per transaction.

    Batches walk the families in id order, so each one starts after the
    last id of the one before and the run ends even if rows are skipped.
    On PostgreSQL, families locked by another transaction are skipped, so a
    second purge running at the same time takes other families instead of
    waiting.

    :param on_batch: called with the number of families each batch deleted.
    """
    result = PurgeResult()
    last_id = 0
    while True:
        ids = _select_batch(session, cutoff, batch_size, last_id)
        if not ids:
            session.commit()
            return result

        # The foreign key cascades, but SQLite enforces it only when the
        # connection enables foreign keys, so the tokens go first. Both
        # statements check the condition again, because SQLite runs the
        # SELECT above outside the transaction and locks no row.
        purgeable = and_(TokenFamily.id.in_(ids), get_purgeable_condition(cutoff))
        family_ids = select(TokenFamily.id).where(purgeable)
        deleted_tokens = session.execute(
            delete(Token).where(Token.family_id.in_(family_ids))
        )
        deleted_families = session.execute(delete(TokenFamily).where(purgeable))
        session.commit()

        families = int(deleted_families.rowcount)  # type: ignore[attr-defined]
        result.families += families
        result.tokens += int(deleted_tokens.rowcount)  # type: ignore[attr-defined]
        result.batches += 1
        last_id = ids[-1]
        if on_batch is not None:
            on_batch(families)


def _select_batch(
    session: Session, cutoff: int, batch_size: int, last_id: int
) -> list[int]:
    statement = (
        select(TokenFamily.id)
        .where(TokenFamily.id > last_id, get_purgeable_condition(cutoff))
        .order_by(TokenFamily.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


def _is_terminal() -> bool:
    return sys.stdout.isatty()
