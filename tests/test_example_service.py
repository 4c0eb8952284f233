"""The example sibling service, run as its own process against authserver."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from joserfc import jws

from tests.conftest import RegisteredClient
from tests.live import BIN
from tests.live import free_port
from tests.live import stop_process
from tests.live import wait_until_up
from tests.live_oauth import LiveAuthserver
from tests.live_oauth import start_authserver

ROOT = Path(__file__).resolve().parent.parent
APP_PATH = ROOT / "examples" / "sibling_service" / "app.py"
TIMEOUT_SECONDS = 10
JWT_LIFETIME_SECONDS = 3


@contextmanager
def run_example(settings: dict[str, str]) -> Iterator[str]:
    """Serve the example with ``flask run``; yield its base URL."""
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("EXAMPLE_", "AUTHSERVER_"))
    }
    env.update(settings)
    command = [
        str(BIN / "flask"),
        "--app",
        str(APP_PATH),
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url)
        yield base_url
    finally:
        stop_process(process)


def get_token(
    server: LiveAuthserver, registered: RegisteredClient, **form: str
) -> dict[str, Any]:
    response = requests.post(
        server.token_url,
        data={
            "grant_type": "password",
            "username": server.username,
            "password": server.password,
            **form,
        },
        auth=(registered.client_id, registered.client_secret),
        timeout=TIMEOUT_SECONDS,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def revoke(server: LiveAuthserver, registered: RegisteredClient, token: str) -> None:
    response = requests.post(
        server.revocation_url,
        data={"token": token},
        auth=(registered.client_id, registered.client_secret),
        timeout=TIMEOUT_SECONDS,
    )
    assert response.status_code == 200


def call(example_url: str, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(example_url + path, headers=headers, timeout=TIMEOUT_SECONDS)


# Introspection mode.


@pytest.fixture(scope="module")
def server(sqlite_template, tmp_path_factory) -> Iterator[LiveAuthserver]:
    directory = tmp_path_factory.mktemp("example_opaque")
    with start_authserver(sqlite_template, directory) as live:
        yield live


@pytest.fixture(scope="module")
def app_client(server: LiveAuthserver) -> RegisteredClient:
    return server.create_client()


@pytest.fixture(scope="module")
def introspection_example(server: LiveAuthserver) -> Iterator[str]:
    service = server.create_client(
        "--introspect", grant_types=("client_credentials",), scope="profile"
    )
    settings = {
        "EXAMPLE_AUTHSERVER_URL": server.url,
        "EXAMPLE_MODE": "introspection",
        "EXAMPLE_CLIENT_ID": service.client_id,
        "EXAMPLE_CLIENT_SECRET": str(service.client_secret),
    }
    with run_example(settings) as url:
        yield url


def test_example_introspection_accepts_valid_token(
    server, app_client, introspection_example
):
    token = get_token(server, app_client)["access_token"]

    response = call(introspection_example, "/profile", token)

    assert response.status_code == 200
    assert response.json()["client_id"] == app_client.client_id


def test_example_introspection_email_endpoint_accepts_email_scope(
    server, app_client, introspection_example
):
    token = get_token(server, app_client, scope="email")["access_token"]

    response = call(introspection_example, "/email", token)

    assert response.status_code == 200


def test_example_introspection_without_scope_is_403(
    server, app_client, introspection_example
):
    """RFC 6750 section 3.1: a token without the scope is insufficient_scope."""
    token = get_token(server, app_client, scope="profile")["access_token"]

    response = call(introspection_example, "/email", token)

    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_example_introspection_without_token_is_401(introspection_example):
    """RFC 6750 section 3.1: a request without a token is 401."""
    response = call(introspection_example, "/profile", None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_example_introspection_rejects_revoked_token_at_once(
    server, app_client, introspection_example
):
    """RFC 7662 section 2.2: introspection reports a revoked token inactive."""
    token = get_token(server, app_client)["access_token"]
    assert call(introspection_example, "/profile", token).status_code == 200

    revoke(server, app_client, token)

    response = call(introspection_example, "/profile", token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


# JWT mode.


@pytest.fixture(scope="module")
def jwt_server(sqlite_template, tmp_path_factory) -> Iterator[LiveAuthserver]:
    directory = tmp_path_factory.mktemp("example_jwt")
    with start_authserver(
        sqlite_template,
        directory,
        AUTHSERVER_ACCESS_TOKEN_FORMAT="jwt",
        AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS=JWT_LIFETIME_SECONDS,
    ) as live:
        yield live


@pytest.fixture(scope="module")
def jwt_client(jwt_server: LiveAuthserver) -> RegisteredClient:
    return jwt_server.create_client()


@pytest.fixture(scope="module")
def jwt_example(jwt_server: LiveAuthserver) -> Iterator[str]:
    settings = {"EXAMPLE_AUTHSERVER_URL": jwt_server.url, "EXAMPLE_MODE": "jwt"}
    with run_example(settings) as url:
        yield url


def get_expiry(token: str) -> int:
    claims = jws.extract_compact(token.encode()).payload
    expires_at: int = json.loads(claims)["exp"]
    return expires_at


def test_example_jwt_accepts_valid_token(jwt_server, jwt_client, jwt_example):
    token = get_token(jwt_server, jwt_client)["access_token"]

    response = call(jwt_example, "/profile", token)

    assert response.status_code == 200
    assert response.json()["client_id"] == jwt_client.client_id


def test_example_jwt_without_scope_is_403(jwt_server, jwt_client, jwt_example):
    """RFC 6750 section 3.1: a token without the scope is insufficient_scope."""
    token = get_token(jwt_server, jwt_client, scope="profile")["access_token"]

    response = call(jwt_example, "/email", token)

    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_example_jwt_accepts_revoked_token_until_expiry(
    jwt_server, jwt_client, jwt_example
):
    token = get_token(jwt_server, jwt_client)["access_token"]

    revoke(jwt_server, jwt_client, token)

    # The service checks a JWT locally and never hears of the revocation.
    assert call(jwt_example, "/profile", token).status_code == 200


def test_example_jwt_rejects_revoked_token_once_expired(
    jwt_server, jwt_client, jwt_example
):
    """RFC 9068 section 4: an expired token must be rejected."""
    token = get_token(jwt_server, jwt_client)["access_token"]
    revoke(jwt_server, jwt_client, token)

    wait = get_expiry(token) + 1 - time.time()
    assert 0 < wait <= JWT_LIFETIME_SECONDS + 1
    time.sleep(wait)

    response = call(jwt_example, "/profile", token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


# Settings, checked in this process.


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sibling_service_app", APP_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_settings_without_url_are_rejected():
    example = load_example()

    with pytest.raises(example.SettingsError, match="EXAMPLE_AUTHSERVER_URL"):
        example.create_app({"EXAMPLE_MODE": "jwt"})


def test_example_settings_with_unknown_mode_are_rejected():
    example = load_example()

    with pytest.raises(example.SettingsError, match="EXAMPLE_MODE"):
        example.create_app(
            {"EXAMPLE_AUTHSERVER_URL": "http://127.0.0.1:1", "EXAMPLE_MODE": "magic"}
        )


def test_example_settings_introspection_needs_credentials():
    example = load_example()

    with pytest.raises(example.SettingsError, match="EXAMPLE_CLIENT_ID"):
        example.create_app({"EXAMPLE_AUTHSERVER_URL": "http://127.0.0.1:1"})


def test_example_settings_issuer_and_audience_default_to_url():
    example = load_example()

    settings = example.load_settings(
        {"EXAMPLE_AUTHSERVER_URL": "http://127.0.0.1:1/", "EXAMPLE_MODE": "jwt"}
    )

    assert settings["ISSUER"] == "http://127.0.0.1:1"
    assert settings["AUDIENCE"] == "http://127.0.0.1:1"
