"""Fixtures: an application on SQLite or PostgreSQL, clients, users, tokens.

Every test that uses ``app`` runs twice, once on a fresh SQLite file and
once on a PostgreSQL database created for the test run. The PostgreSQL
server is found through ``TEST_POSTGRES_URL`` (default: the
local server as user postgres) and the database is dropped at the end.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from authserver import create_app
from authserver import security

POSTGRES_SERVER_URL = os.environ.get(
    "TEST_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
)
SECRET_KEY = "test-secret-key-" + "k" * 32
PASSWORD = "correct horse battery staple"
BACKENDS = ["sqlite", "postgresql"]


def base_config(database_url: str) -> dict[str, Any]:
    """Return the settings every test application starts from."""
    return {
        "AUTHSERVER_DATABASE_URL": database_url,
        "AUTHSERVER_SECRET_KEY": SECRET_KEY,
        "AUTHSERVER_BCRYPT_ROUNDS": 4,
        "AUTHSERVER_RATELIMIT_ENABLED": False,
        "AUTHSERVER_SCOPES": {
            "profile": "Read the user's id and username.",
            "email": "Read the user's email address.",
            "admin": "Administer the server.",
        },
    }


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings in the developer's shell must not leak into tests.
    for name in list(os.environ):
        if name.startswith("AUTHSERVER_"):
            monkeypatch.delenv(name)


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@contextmanager
def migrated_postgres(prefix: str) -> Iterator[str]:
    """Create and migrate a PostgreSQL database; yield its URL, then drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_SERVER_URL).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    try:
        migrate(database_url)
        yield database_url
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """Create a PostgreSQL database for this test process; drop it after."""
    with migrated_postgres(f"authserver_test_{_worker_suffix()}") as database_url:
        yield database_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


def migrate(database_url: str) -> None:
    """Upgrade the schema of ``database_url`` to the latest revision."""
    from alembic import command

    from authserver.migrations import get_alembic_config

    app = create_app(base_config(database_url))
    with app.app_context():
        command.upgrade(get_alembic_config(app), "head")
    app.extensions["authserver.engine"].dispose()


def empty_postgres(database_url: str) -> None:
    """Delete every row, keeping the schema."""
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "TRUNCATE tokens, token_families, login_throttles, users,"
                " clients, signing_keys RESTART IDENTITY CASCADE"
            )
        )
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "authserver.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"

    url: str = request.getfixturevalue("postgres_database")
    empty_postgres(url)
    return url


@pytest.fixture
def config(database_url: str) -> dict[str, Any]:
    """Settings for ``app``; a test may change them before using ``app``."""
    return base_config(database_url)


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    """An application on an empty database."""
    app = create_app(config)
    app.testing = True
    yield app
    app.extensions["authserver.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@dataclass
class RegisteredClient:
    """A client created through ``authserver clients create``."""

    client_id: str
    client_secret: str | None

    @property
    def basic(self) -> dict[str, str]:
        """Return an HTTP Basic Authorization header for this client."""
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def make_client(runner: FlaskCliRunner):  # type: ignore[no-untyped-def]
    """Register a client with the admin command and return its credentials."""

    def make(
        *args: str,
        grant_types: tuple[str, ...] = ("password", "refresh_token"),
        scope: str = "profile email",
    ) -> RegisteredClient:
        command = ["clients", "create", "--name", "test", "--scope", scope, "--json"]
        for grant_type in grant_types:
            command += ["--grant-type", grant_type]
        result = runner.invoke(args=[*command, *args])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        return RegisteredClient(data["client_id"], data["client_secret"])

    return make


@pytest.fixture
def make_user(runner: FlaskCliRunner):  # type: ignore[no-untyped-def]
    """Create a user with the admin command."""

    def make(username: str = "alice", password: str = PASSWORD) -> str:
        result = runner.invoke(
            args=["users", "create", username, "--password-stdin"],
            input=password + "\n",
        )
        assert result.exit_code == 0, result.output
        return username

    return make


@pytest.fixture
def oauth_client(make_client) -> RegisteredClient:  # type: ignore[no-untyped-def]
    """A confidential client allowed the password and refresh token grants."""
    return make_client()  # type: ignore[no-any-return]


@pytest.fixture
def user(make_user) -> str:  # type: ignore[no-untyped-def]
    """The username of an active user whose password is ``PASSWORD``."""
    return make_user()  # type: ignore[no-any-return]


@pytest.fixture
def get_token(client: FlaskClient, oauth_client: RegisteredClient, user: str):  # type: ignore[no-untyped-def]
    """Obtain tokens with the password grant."""

    def get(**form: str) -> dict[str, Any]:
        data = {"grant_type": "password", "username": user, "password": PASSWORD}
        data.update(form)
        response = client.post("/oauth/token", data=data, headers=oauth_client.basic)
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    return get


@contextmanager
def create_database(backend: str, directory: Path) -> Iterator[str]:
    """Create a migrated database that no other test touches; yield its URL.

    :param directory: where the SQLite file goes.
    """
    if backend == "sqlite":
        path = directory / f"authserver-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        migrate(url)
        yield url
        return

    with migrated_postgres("authserver_live") as database_url:
        yield database_url


def register_client(config: dict[str, Any], *grant_types: str) -> RegisteredClient:
    """Register a confidential client with ``authserver clients create``."""
    command = ["clients", "create", "--name", "live", "--json"]
    command += ["--scope", "profile email"]
    for grant_type in grant_types or ("password", "refresh_token"):
        command += ["--grant-type", grant_type]
    output = run_command(config, command)
    data = json.loads(output)
    return RegisteredClient(data["client_id"], data["client_secret"])


def register_user(config: dict[str, Any], username: str = "alice") -> str:
    """Create a user whose password is ``PASSWORD``."""
    command = ["users", "create", username, "--password-stdin"]
    run_command(config, command, input=PASSWORD + "\n")
    return username


def run_command(
    config: dict[str, Any], command: list[str], input: str | None = None
) -> str:
    """Run an admin command in this process, which is faster than a new one."""
    app = create_app(config)
    try:
        result = app.test_cli_runner().invoke(args=command, input=input)
    finally:
        app.extensions["authserver.engine"].dispose()
    assert result.exit_code == 0, result.output
    return result.output


class Clock:
    """A frozen Unix clock that a test moves forward by hand."""

    def __init__(self, start: int) -> None:
        self.time = start

    def __call__(self) -> int:
        return self.time

    def advance(self, seconds: int) -> None:
        self.time += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, app: Flask) -> Clock:
    """Freeze ``now`` in every authserver module that imported it."""
    frozen = Clock(security.now())
    original = security.now
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] != "authserver":
            continue
        if getattr(module, "now", None) is original:
            monkeypatch.setattr(module, "now", frozen)
    return frozen
