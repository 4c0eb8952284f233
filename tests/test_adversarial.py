"""Attacks on the token endpoint, the logs and the admin commands.

Each test states the behaviour an attacker must not be able to change. The
races are made deterministic by running the concurrent admin command from
inside the password check, which is where a real second process lands
while bcrypt runs.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from alembic.util.exc import CommandError
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from authserver import logs
from authserver.grants import password as password_grant
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.live import live_server

NEW_PASSWORD = "a brand new password 42"

#: Larger than a PostgreSQL INTEGER (2**31 - 1), in which Unix times are stored.
INTEGER_OVERFLOW = str(2**31)

#: The longest refresh lifetime the CLI accepts: ten years.
MAX_LIFETIME_SECONDS = "315360000"
#: A clock in 2036, so that ten more years end after 2038-01-19, the last
#: second that a 32-bit column can hold.
YEAR_2036 = 2_100_000_000


def password_request(
    client: FlaskClient, registered: RegisteredClient, user: str, password: str
) -> Any:
    """Post a password grant and return the response."""
    return client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": user, "password": password},
        headers=registered.basic,
    )


def run_during_password_check(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], Any]
) -> list[Any]:
    """Run ``action`` once, after the grant has checked the password.

    This is the window of a real race: the grant has read the user and
    spent a bcrypt check, but has not yet issued tokens or rehashed. The
    action runs in its own thread, so that it gets its own application
    context and database session, as a separate admin process would.
    """
    original = password_grant.check_password
    results: list[Any] = []

    def check_then_act(password: str, password_hash: str) -> bool:
        matches = original(password, password_hash)
        if not results:
            thread = threading.Thread(target=lambda: results.append(action()))
            thread.start()
            thread.join()
        return matches

    monkeypatch.setattr(password_grant, "check_password", check_then_act)
    return results


def assert_no_traceback(result: Any) -> None:
    """Assert that a command succeeded or failed with a message, not a traceback.

    A value that SQLite stores but PostgreSQL rejects may succeed on SQLite.
    On PostgreSQL the command must reject it as an invalid option.
    """
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.output.startswith(("Error", "Usage")), result.output


# Transport and request parsing


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_plain_http_foreign_host_is_no_500(
    client: FlaskClient, oauth_client: RegisteredClient, user: str, path: str
) -> None:
    # A request over http whose Host is not a loopback name, as a resource
    # server on an internal network or a proxy without X-Forwarded-Proto
    # sends it. Authlib raises InsecureTransportError for such a URL.
    response = client.post(
        path,
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            "token": "unknown",
        },
        headers=oauth_client.basic,
        base_url="http://auth.example.com",
    )

    assert response.status_code < 500
    assert response.is_json


def test_malformed_chunk_size_is_400(config: dict[str, Any]) -> None:
    # gunicorn raises its own parse error only when the view reads the body.
    request = (
        b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    )
    with live_server(config, workers=1) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(request)
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]

    assert status_line == b"HTTP/1.1 400 BAD REQUEST"


def test_basic_and_other_form_client_id_is_invalid_request(
    client: FlaskClient, oauth_client: RegisteredClient, user: str
) -> None:
    """RFC 6749 section 2.3: a request uses one client authentication method."""
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            "client_id": "another-client",
        },
        headers=oauth_client.basic,
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


# Races with the admin commands


def test_reset_during_sign_in_revokes_tokens(
    client: FlaskClient,
    runner: FlaskCliRunner,
    oauth_client: RegisteredClient,
    user: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def reset_password() -> Any:
        return runner.invoke(
            args=["users", "set-password", user, "--password-stdin"],
            input=NEW_PASSWORD + "\n",
        )

    with monkeypatch.context() as patch:
        results = run_during_password_check(patch, reset_password)
        raced = password_request(client, oauth_client, user, PASSWORD)
    assert results[0].exit_code == 0, results[0].output

    # The reset promises to revoke every token of the user; a pair issued
    # for the old password after it committed must not work.
    if raced.status_code == 200:
        tokens = raced.get_json()
        api = client.get(
            "/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        refreshed = client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
            },
            headers=oauth_client.basic,
        )
        assert api.status_code == 401
        assert refreshed.status_code == 400


def test_password_reset_survives_racing_rehash(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    oauth_client: RegisteredClient,
    user: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The user's hash has the old cost, so the next sign-in rehashes it.
    app.config["AUTHSERVER_BCRYPT_ROUNDS"] = 5

    def reset_password() -> Any:
        return runner.invoke(
            args=["users", "set-password", user, "--password-stdin"],
            input=NEW_PASSWORD + "\n",
        )

    with monkeypatch.context() as patch:
        results = run_during_password_check(patch, reset_password)
        password_request(client, oauth_client, user, PASSWORD)
    assert results[0].exit_code == 0, results[0].output

    old = password_request(client, oauth_client, user, PASSWORD)
    new = password_request(client, oauth_client, user, NEW_PASSWORD)

    assert old.status_code == 400
    assert new.status_code == 200


def test_disable_during_sign_in_blocks_api(
    client: FlaskClient,
    runner: FlaskCliRunner,
    oauth_client: RegisteredClient,
    user: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def disable_user() -> Any:
        return runner.invoke(args=["users", "disable", user])

    with monkeypatch.context() as patch:
        results = run_during_password_check(patch, disable_user)
        raced = password_request(client, oauth_client, user, PASSWORD)
    assert results[0].exit_code == 0, results[0].output

    if raced.status_code == 200:
        access_token = raced.get_json()["access_token"]
        api = client.get("/api/me", headers={"Authorization": f"Bearer {access_token}"})
        assert api.status_code == 401


# Rate limits


def test_unauthenticated_requests_keep_client_limit(
    config: dict[str, Any], oauth_client: RegisteredClient, user: str
) -> None:
    app = create_limited_app(config)
    try:
        client = app.test_client()
        # An attacker with the client id, but without its secret, sends it.
        for _ in range(3):
            forged = client.post(
                "/oauth/token",
                data={
                    "grant_type": "password",
                    "client_id": oauth_client.client_id,
                    "username": "x",
                    "password": "y",
                },
                environ_overrides={"REMOTE_ADDR": "192.0.2.66"},
            )
            assert forged.status_code == 401

        legitimate = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": user, "password": PASSWORD},
            headers=oauth_client.basic,
            environ_overrides={"REMOTE_ADDR": "192.0.2.10"},
        )
        assert legitimate.status_code == 200
    finally:
        app.extensions["authserver.engine"].dispose()


def test_spoofed_forwarded_for_shares_address_limit(
    config: dict[str, Any], oauth_client: RegisteredClient, user: str
) -> None:
    app = create_limited_app(
        config,
        AUTHSERVER_RATELIMIT_PER_CLIENT="100 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="2 per hour",
    )
    try:
        client = app.test_client()
        statuses = [
            client.post(
                "/oauth/token",
                data={"grant_type": "password", "username": user, "password": PASSWORD},
                headers={**oauth_client.basic, "X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 429]
    finally:
        app.extensions["authserver.engine"].dispose()


def create_limited_app(config: dict[str, Any], **settings: Any) -> Flask:
    """Create an application with rate limits and no trusted proxy."""
    from authserver import create_app

    limits = {
        "AUTHSERVER_RATELIMIT_ENABLED": True,
        "AUTHSERVER_RATELIMIT_STORAGE_URL": "memory://",
        "AUTHSERVER_RATELIMIT_PER_CLIENT": "3 per hour",
        "AUTHSERVER_RATELIMIT_PER_ADDRESS": "1000 per hour",
        "AUTHSERVER_PROXY_COUNT": 0,
    }
    app = create_app({**config, **limits, **settings})
    app.testing = True
    return app


# Logs


def test_text_log_client_id_one_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "evil\n2030-01-01 00:00:00,000 INFO authserver.security: token_issued"
    with caplog.at_level(logging.INFO, logger="authserver.security"):
        response = client.post(
            "/oauth/revoke",
            data={"token": "x", "client_id": forged, "client_secret": "s"},
        )
    assert response.status_code == 401

    records = [
        r for r in caplog.records if r.getMessage() == "client_authentication_failed"
    ]
    assert records
    line = logs.TextFormatter().format(records[-1])
    assert "\n" not in line


# Limits of stored values


def test_long_refresh_lifetime_issues_tokens(
    client: FlaskClient,
    make_client: Callable[..., RegisteredClient],
    user: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered = make_client("--refresh-lifetime", MAX_LIFETIME_SECONDS)
    monkeypatch.setattr("authserver.grants.password.now", lambda: YEAR_2036)

    response = password_request(client, registered, user, PASSWORD)

    assert response.status_code == 200, response.get_json()


# Admin command errors


def test_cli_long_client_name_has_no_traceback(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "n" * 201,
            "--grant-type",
            "password",
            "--scope",
            "profile",
        ]
    )
    assert_no_traceback(result)


@pytest.mark.parametrize("option", ["--refresh-lifetime", "--refresh-idle"])
def test_cli_huge_client_lifetime_has_no_traceback(
    runner: FlaskCliRunner, option: str
) -> None:
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "x",
            "--grant-type",
            "password",
            "--scope",
            "profile",
            option,
            INTEGER_OVERFLOW,
        ]
    )
    assert_no_traceback(result)


def test_cli_huge_secret_overlap_has_no_traceback(
    runner: FlaskCliRunner, oauth_client: RegisteredClient
) -> None:
    result = runner.invoke(
        args=[
            "clients",
            "rotate-secret",
            oauth_client.client_id,
            "--overlap",
            INTEGER_OVERFLOW,
        ]
    )
    assert_no_traceback(result)


@pytest.mark.parametrize("days", ["99999999999", "9" * 21])
def test_cli_huge_retention_has_no_traceback(runner: FlaskCliRunner, days: str) -> None:
    result = runner.invoke(args=["tokens", "purge-expired", "--retention-days", days])
    assert_no_traceback(result)


@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
def test_cli_unknown_revision_has_no_traceback(
    runner: FlaskCliRunner, command: str
) -> None:
    result = runner.invoke(args=["db", command, "no-such-revision"])
    assert not isinstance(result.exception, CommandError)
    assert_no_traceback(result)
    assert result.exit_code != 0
