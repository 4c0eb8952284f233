"""The real server and the real admin commands, driven by an OAuth library.

Each backend gets an empty database of its own. The ``authserver``
console script migrates it and registers a client and a user, gunicorn
serves the application on a free loopback port, and requests-oauthlib
plays the client application.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from oauthlib.oauth2 import InvalidGrantError
from oauthlib.oauth2 import LegacyApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.conftest import BACKENDS
from tests.conftest import PASSWORD
from tests.conftest import POSTGRES_SERVER_URL
from tests.conftest import base_config
from tests.live import live_server
from tests.live import run_cli

USERNAME = "alice"


@dataclass(frozen=True)
class Deployment:
    """A running server with one registered client and one user."""

    base_url: str
    client_id: str
    client_secret: str
    user_id: int

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    @property
    def auth(self) -> HTTPBasicAuth:
        return HTTPBasicAuth(self.client_id, self.client_secret)


@pytest.fixture(autouse=True)
def _allow_loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses plain HTTP; the test server listens on 127.0.0.1 only.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """The URL of a database with no tables, made for this test alone."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'authserver.db'}"
        return

    name = f"authserver_end_to_end_{uuid.uuid4().hex[:12]}"
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


def run_ok(config: dict[str, Any], *args: str, input: str | None = None) -> str:
    result = run_cli(config, *args, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def deployment(empty_database_url) -> Iterator[Deployment]:
    """Migrate, register and serve with the commands an operator would run."""
    config = base_config(empty_database_url)
    run_ok(config, "db", "upgrade")
    client = json.loads(
        run_ok(
            config,
            "clients",
            "create",
            "--name",
            "end-to-end",
            "--grant-type",
            "password",
            "--grant-type",
            "refresh_token",
            "--scope",
            "profile email",
            "--json",
        )
    )
    created = run_ok(
        config, "users", "create", USERNAME, "--password-stdin", input=PASSWORD + "\n"
    )
    match = re.search(r"with id (\d+)", created)
    assert match is not None, created

    with live_server(config) as base_url:
        yield Deployment(
            base_url=base_url,
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            user_id=int(match.group(1)),
        )


def new_session(deployment: Deployment) -> OAuth2Session:
    return OAuth2Session(client=LegacyApplicationClient(client_id=deployment.client_id))


def fetch_token(session: OAuth2Session, deployment: Deployment) -> dict[str, Any]:
    token: dict[str, Any] = session.fetch_token(
        deployment.token_url,
        username=USERNAME,
        password=PASSWORD,
        client_id=deployment.client_id,
        client_secret=deployment.client_secret,
        timeout=10,
    )
    return token


def refresh(session: OAuth2Session, deployment: Deployment, refresh_token: str):
    return session.refresh_token(
        deployment.token_url,
        refresh_token=refresh_token,
        auth=deployment.auth,
        timeout=10,
    )


def test_end_to_end_client_flow(deployment):
    """RFC 6749 sections 4.3 and 6: a client signs in, calls the API, refreshes."""
    session = new_session(deployment)
    me_url = deployment.base_url + "/api/me"

    first = fetch_token(session, deployment)
    assert first["token_type"] == "Bearer"
    assert first["expires_in"] == 3600
    assert first["scope"] == ["profile", "email"]

    response = session.get(me_url, timeout=10)
    assert response.status_code == 200
    assert response.json()["id"] == deployment.user_id
    assert response.json()["username"] == USERNAME

    second = refresh(session, deployment, first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]

    response = session.get(me_url, timeout=10)
    assert response.status_code == 200
    assert response.json()["username"] == USERNAME

    # RFC 9700 section 4.14.2: the rotated refresh token no longer works.
    with pytest.raises(InvalidGrantError) as caught:
        refresh(session, deployment, first["refresh_token"])
    assert caught.value.error == "invalid_grant"
