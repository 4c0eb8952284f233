"""Locating and running the Alembic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.engine import Engine

#: The migrations live beside the package, at the top of the repository.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class MigrationsNotFoundError(RuntimeError):
    """The ``migrations`` folder is not beside the installed package."""


def get_alembic_config(app: Flask) -> Config:
    """Return an Alembic configuration for ``app``'s database."""
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise MigrationsNotFoundError(
            f"No migrations in {str(MIGRATIONS_DIR)!r}. Install authserver from"
            " its repository with 'pip install -e .' so that they are found."
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = app.extensions["authserver.engine"]
    return config


def get_head_revision(app: Flask) -> str | None:
    """Return the newest revision of the migration scripts."""
    script = ScriptDirectory.from_config(get_alembic_config(app))
    return script.get_current_head()


def get_database_revision(engine: Engine) -> str | None:
    """Return the revision the database's schema is at."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
