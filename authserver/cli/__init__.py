"""Admin commands on Flask's CLI, and the ``authserver`` console script."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import SQLAlchemyError

from authserver.config import ConfigError

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """Add the admin command groups to ``app.cli``."""
    from authserver.cli.clients import clients_group
    from authserver.cli.database import db_group
    from authserver.cli.keys import keys_group
    from authserver.cli.tokens import tokens_group
    from authserver.cli.users import users_group

    app.cli.add_command(db_group)
    app.cli.add_command(clients_group)
    app.cli.add_command(users_group)
    app.cli.add_command(tokens_group)
    app.cli.add_command(keys_group)


def main() -> None:
    """Run the ``authserver`` console script.

    Unlike ``flask --app authserver``, the script reads or generates a
    development secret key in the instance folder when
    ``AUTHSERVER_SECRET_KEY`` is not set.
    """
    from authserver import create_app

    try:
        app = create_app(development=True)
    except ConfigError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(2)

    generated = app.extensions.get("authserver.generated_key_path")
    key_path = app.extensions.get("authserver.development_key_path")
    if generated:
        click.echo(
            f"Generated a development secret key in {generated}. Set"
            " AUTHSERVER_SECRET_KEY instead in production.",
            err=True,
        )
    elif key_path and sys.argv[1:2] == ["run"]:
        click.echo(
            f"Using the development secret key in {key_path}. Set"
            " AUTHSERVER_SECRET_KEY instead in production.",
            err=True,
        )

    group = FlaskGroup(create_app=lambda: app, add_version_option=False)
    try:
        group.main(prog_name="authserver", standalone_mode=False)
    except click.UsageError as e:
        # One line is easier to read in scripts than click's usage block.
        click.echo(f"Error: {_join_lines(e.format_message())}", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"Error: {_join_lines(e.format_message())}", err=True)
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except SQLAlchemyError as e:
        # A command failed to reach or use the database. The driver's
        # message, joined into one line, gives the reason.
        reason = _join_lines(str(getattr(e, "orig", None) or e))
        click.echo(f"Error: the database call failed: {reason}", err=True)
        sys.exit(1)


def _join_lines(message: str) -> str:
    # Click lists the choices of a missing option on separate lines.
    return " ".join(line.strip() for line in message.splitlines() if line.strip())
