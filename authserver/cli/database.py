"""``authserver db``: schema migrations with Alembic."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from flask import current_app
from flask.cli import with_appcontext

from authserver.migrations import MigrationsNotFoundError
from authserver.migrations import get_alembic_config as _get_alembic_config


@click.group("db")
def db_group() -> None:
    """Upgrade, downgrade and inspect the database schema."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def upgrade_command(revision: str) -> None:
    """Upgrade the schema to REVISION (the latest by default)."""
    _run(command.upgrade, get_alembic_config(), revision)
    click.echo(f"Database upgraded to {revision}.")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def downgrade_command(revision: str) -> None:
    """Downgrade the schema to REVISION, such as "base" or "-1"."""
    _run(command.downgrade, get_alembic_config(), revision)
    click.echo(f"Database downgraded to {revision}.")


@db_group.command("current")
@with_appcontext
def current_command() -> None:
    """Show the schema revision of the database."""
    config = get_alembic_config()
    # Alembic binds its output stream when it is imported; use the stream
    # that is standard output now, which a test runner may have replaced.
    config.stdout = sys.stdout
    _run(command.current, config)


def get_alembic_config() -> Config:
    """Return the Alembic configuration, or fail with one clear line."""
    try:
        return _get_alembic_config(current_app)
    except MigrationsNotFoundError as e:
        raise click.ClickException(str(e)) from None


def _run(function: Callable[..., object], *args: object) -> None:
    # A bad revision name is a usage error, not a crash.
    try:
        function(*args)
    except CommandError as e:
        raise click.ClickException(str(e)) from None
