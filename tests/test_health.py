"""Health checks: /healthz for liveness, /readyz for readiness."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from authserver import create_app
from authserver.migrations import get_alembic_config
from authserver.migrations import get_head_revision
from tests.conftest import POSTGRES_SERVER_URL
from tests.conftest import base_config
from tests.conftest import migrate
from tests.live import free_port


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database that this test alone uses, so it may downgrade it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'health.db'}"
        migrate(url)
        yield url
        return

    name = f"authserver_health_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_SERVER_URL).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    migrate(database_url)
    yield database_url

    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_healthz_returns_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_readyz_ready_when_migrated(app, client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["revision"] == get_head_revision(app)


def test_readyz_unavailable_when_schema_behind(own_database_url):
    app = create_app(base_config(own_database_url))
    with app.app_context():
        command.downgrade(get_alembic_config(app), "-1")
    head = get_head_revision(app)

    response = app.test_client().get("/readyz")
    app.extensions["authserver.engine"].dispose()

    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert repr(head) in body["reason"]
    assert "authserver db upgrade" in body["reason"]


def test_readyz_ready_again_after_upgrade(own_database_url):
    app = create_app(base_config(own_database_url))
    with app.app_context():
        command.downgrade(get_alembic_config(app), "-1")
    client = app.test_client()
    behind = client.get("/readyz")

    with app.app_context():
        command.upgrade(get_alembic_config(app), "head")
    ready = client.get("/readyz")
    app.extensions["authserver.engine"].dispose()

    assert behind.status_code == 503
    assert ready.status_code == 200


def test_readyz_unavailable_when_database_unreachable():
    # Nothing listens on the port, so every connection is refused at once.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/authserver"
    config = base_config(url)
    config["AUTHSERVER_DATABASE_TIMEOUT_SECONDS"] = 2
    app = create_app(config)

    response = app.test_client().get("/readyz")
    app.extensions["authserver.engine"].dispose()

    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("The database is unavailable")


def test_healthz_ok_when_database_unreachable():
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/authserver"
    app = create_app(base_config(url))

    response = app.test_client().get("/healthz")
    app.extensions["authserver.engine"].dispose()

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
