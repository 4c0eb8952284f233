"""Alembic environment: runs migrations on authserver's engine."""

from __future__ import annotations

from alembic import context

from authserver import models  # noqa: F401  (registers every table)
from authserver.db import Base

config = context.config
engine = config.attributes.get("engine")

if engine is None:
    # Run through the plain ``alembic`` command: build the application
    # to find the database from authserver's own settings.
    from authserver import create_app

    engine = create_app(development=True).extensions["authserver.engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
