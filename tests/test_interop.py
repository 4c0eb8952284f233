"""Standard OAuth client libraries against a live server.

requests-oauthlib and Authlib's requests client are driven through their
public APIs only, as an application using authserver would drive them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import LegacyApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.conftest import RegisteredClient
from tests.live_oauth import LiveAuthserver
from tests.live_oauth import start_authserver

TIMEOUT_SECONDS = 10


@pytest.fixture(scope="module")
def server(sqlite_template, tmp_path_factory) -> Iterator[LiveAuthserver]:
    directory = tmp_path_factory.mktemp("interop")
    with start_authserver(sqlite_template, directory) as live:
        yield live


@pytest.fixture(scope="module")
def registered(server: LiveAuthserver) -> RegisteredClient:
    return server.create_client()


@pytest.fixture(autouse=True)
def _allow_loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both libraries reject plain http unless told otherwise, and the live
    # server listens on 127.0.0.1 without TLS.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def get_me(server: LiveAuthserver, access_token: str) -> requests.Response:
    return requests.get(
        server.url + "/api/me",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=TIMEOUT_SECONDS,
    )


# requests-oauthlib with oauthlib's LegacyApplicationClient.


def oauthlib_session(registered: RegisteredClient) -> OAuth2Session:
    client = LegacyApplicationClient(client_id=registered.client_id)
    return OAuth2Session(client=client)


def oauthlib_fetch(
    server: LiveAuthserver, registered: RegisteredClient
) -> tuple[OAuth2Session, dict[str, Any]]:
    session = oauthlib_session(registered)
    token = session.fetch_token(
        token_url=server.token_url,
        username=server.username,
        password=server.password,
        auth=HTTPBasicAuth(registered.client_id, registered.client_secret),
        timeout=TIMEOUT_SECONDS,
    )
    return session, token


def test_interop_oauthlib_password_grant(server, registered):
    session, token = oauthlib_fetch(server, registered)

    response = session.get(server.url + "/api/me", timeout=TIMEOUT_SECONDS)

    assert token["token_type"] == "Bearer"
    assert response.status_code == 200
    assert response.json()["username"] == server.username


def test_interop_oauthlib_refresh(server, registered):
    session, token = oauthlib_fetch(server, registered)

    refreshed = session.refresh_token(
        server.token_url,
        auth=HTTPBasicAuth(registered.client_id, registered.client_secret),
        timeout=TIMEOUT_SECONDS,
    )

    assert refreshed["refresh_token"] != token["refresh_token"]
    assert get_me(server, refreshed["access_token"]).status_code == 200


def test_interop_oauthlib_revocation(server, registered):
    """RFC 7009 section 2.1: a client library can revoke its token."""
    session, token = oauthlib_fetch(server, registered)

    response = session.post(
        server.revocation_url,
        data={"token": token["access_token"], "token_type_hint": "access_token"},
        auth=HTTPBasicAuth(registered.client_id, registered.client_secret),
        withhold_token=True,
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 200
    assert get_me(server, token["access_token"]).status_code == 401


# Authlib's requests client.


def authlib_session(registered: RegisteredClient) -> AuthlibSession:
    return AuthlibSession(
        registered.client_id,
        registered.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        timeout=TIMEOUT_SECONDS,
    )


def test_interop_authlib_password_grant(server, registered):
    with authlib_session(registered) as session:
        token = session.fetch_token(
            server.token_url, username=server.username, password=server.password
        )
        response = session.get(server.url + "/api/me")

    assert token["scope"] == "profile email"
    assert response.status_code == 200
    assert response.json()["username"] == server.username


def test_interop_authlib_refresh(server, registered):
    with authlib_session(registered) as session:
        token = session.fetch_token(
            server.token_url, username=server.username, password=server.password
        )
        first_refresh_token = token["refresh_token"]
        refreshed = session.refresh_token(server.token_url)

    assert refreshed["refresh_token"] != first_refresh_token
    assert get_me(server, refreshed["access_token"]).status_code == 200


def test_interop_authlib_revoke_token(server, registered):
    """RFC 7009 section 2.1: a client library can revoke its token."""
    with authlib_session(registered) as session:
        token = session.fetch_token(
            server.token_url, username=server.username, password=server.password
        )
        response = session.revoke_token(server.revocation_url, token["refresh_token"])

    assert response.status_code == 200
    assert get_me(server, token["access_token"]).status_code == 401


def test_interop_authlib_introspect_token(server, registered):
    """RFC 7662 section 2.2: a client library can read the active answer."""
    with authlib_session(registered) as session:
        token = session.fetch_token(
            server.token_url, username=server.username, password=server.password
        )
        response = session.introspect_token(
            server.introspection_url, token["access_token"]
        )

    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == registered.client_id
    assert body["username"] == server.username


def test_interop_authlib_introspect_revoked_token(server, registered):
    """RFC 7662 section 2.2: a revoked token is answered with only inactive."""
    with authlib_session(registered) as session:
        token = session.fetch_token(
            server.token_url, username=server.username, password=server.password
        )
        session.revoke_token(server.revocation_url, token["access_token"])
        response = session.introspect_token(
            server.introspection_url, token["access_token"]
        )

    assert response.json() == {"active": False}
