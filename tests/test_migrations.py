"""The Alembic migrations: they match the models and run both ways."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from authserver import create_app
from authserver import models  # noqa: F401  (registers every table)
from authserver.db import Base
from authserver.migrations import get_alembic_config
from authserver.migrations import get_database_revision
from tests.conftest import BACKENDS
from tests.conftest import POSTGRES_SERVER_URL
from tests.conftest import base_config


def find_differences(engine: sa.Engine) -> list:
    """Return what autogenerate would change to make the schema match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, Base.metadata)


def get_table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """The URL of a database with no tables, made for this test alone."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return

    name = f"authserver_migrations_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_SERVER_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )
        admin.dispose()


@pytest.fixture
def migration_app(empty_database_url):
    app = create_app(base_config(empty_database_url))
    yield app
    app.extensions["authserver.engine"].dispose()


@pytest.fixture
def alembic_config(migration_app):
    return get_alembic_config(migration_app)


@pytest.fixture
def engine(migration_app) -> sa.Engine:
    return migration_app.extensions["authserver.engine"]


def get_revisions(alembic_config) -> list[str]:
    """Return every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_migrations_have_one_head(app):
    script = ScriptDirectory.from_config(get_alembic_config(app))

    assert len(script.get_heads()) == 1


def test_migrations_match_models(app):
    engine = app.extensions["authserver.engine"]

    assert find_differences(engine) == []


def test_migrations_upgrade_creates_every_table(alembic_config, engine):
    command.upgrade(alembic_config, "head")

    expected = set(Base.metadata.tables) | {"alembic_version"}
    assert get_table_names(engine) == expected


def test_migrations_upgrade_reaches_head(alembic_config, engine):
    command.upgrade(alembic_config, "head")

    head = ScriptDirectory.from_config(alembic_config).get_current_head()
    assert get_database_revision(engine) == head


def test_migrations_downgrade_to_base_drops_every_table(alembic_config, engine):
    command.upgrade(alembic_config, "head")

    command.downgrade(alembic_config, "base")

    assert get_table_names(engine) <= {"alembic_version"}
    assert get_database_revision(engine) is None


def test_migrations_upgrade_after_downgrade_matches_models(alembic_config, engine):
    command.upgrade(alembic_config, "head")
    command.downgrade(alembic_config, "base")

    command.upgrade(alembic_config, "head")

    assert find_differences(engine) == []


def test_migrations_step_down_and_up_one_at_a_time(alembic_config, engine):
    revisions = get_revisions(alembic_config)
    command.upgrade(alembic_config, "head")

    for expected in reversed([None, *revisions[:-1]]):
        command.downgrade(alembic_config, "-1")
        assert get_database_revision(engine) == expected

    for expected in revisions:
        command.upgrade(alembic_config, "+1")
        assert get_database_revision(engine) == expected
