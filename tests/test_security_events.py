"""Security events on the ``authserver.security`` logger."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from authserver import create_app
from authserver.logs import HANDLER_NAME
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient

SECURITY_LOGGER = "authserver.security"
WRONG_PASSWORD = "wrong horse battery staple"
REMOTE_ADDR = "127.0.0.1"


def get_events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """Return the fields of every captured security event called ``name``."""
    return [
        record.event  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == SECURITY_LOGGER and record.getMessage() == name
    ]


def get_one_event(caplog: pytest.LogCaptureFixture, name: str) -> dict[str, Any]:
    events = get_events(caplog, name)
    assert len(events) == 1, [r.getMessage() for r in caplog.records]
    return events[0]


def get_level(caplog: pytest.LogCaptureFixture, name: str) -> int:
    levels = {
        record.levelno
        for record in caplog.records
        if record.name == SECURITY_LOGGER and record.getMessage() == name
    }
    assert len(levels) == 1, levels
    return levels.pop()


def sign_in(
    client: FlaskClient, oauth_client: RegisteredClient, user: str, password: str
) -> Any:
    data = {"grant_type": "password", "username": user, "password": password}
    return client.post("/oauth/token", data=data, headers=oauth_client.basic)


def refresh(
    client: FlaskClient, oauth_client: RegisteredClient, refresh_token: str
) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return client.post("/oauth/token", data=data, headers=oauth_client.basic)


def assert_identifies(
    event: dict[str, Any], oauth_client: RegisteredClient, user_id: int | None
) -> None:
    assert event["client_id"] == oauth_client.client_id
    assert event["user_id"] == user_id
    assert event["remote_addr"] == REMOTE_ADDR


def test_event_password_grant_succeeded(caplog, client, oauth_client, user):
    """RFC 9700 §4.14.2: each successful sign-in is logged with its ids."""
    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200

    event = get_one_event(caplog, "password_grant_succeeded")

    assert_identifies(event, oauth_client, 1)


def test_event_password_grant_failed(caplog, client, oauth_client, user):
    """RFC 6749 §10.10: each failed sign-in is logged as a warning."""
    assert sign_in(client, oauth_client, user, WRONG_PASSWORD).status_code == 400

    event = get_one_event(caplog, "password_grant_failed")

    assert_identifies(event, oauth_client, 1)
    assert get_level(caplog, "password_grant_failed") == logging.WARNING


def test_event_password_grant_failed_unknown_user(caplog, client, oauth_client):
    """RFC 6749 §10.10: a sign-in as an unknown user is logged without a user."""
    assert sign_in(client, oauth_client, "nobody", PASSWORD).status_code == 400

    event = get_one_event(caplog, "password_grant_failed")

    assert_identifies(event, oauth_client, None)


def test_event_username_locked(caplog, app, client, oauth_client, user):
    """RFC 6749 §10.10: a lock after repeated failures is logged."""
    for _ in range(app.config["AUTHSERVER_LOCKOUT_THRESHOLD"]):
        assert sign_in(client, oauth_client, user, WRONG_PASSWORD).status_code == 400

    event = get_one_event(caplog, "username_locked")

    assert_identifies(event, oauth_client, 1)
    assert event["locked_seconds"] == app.config["AUTHSERVER_LOCKOUT_BASE_SECONDS"]
    assert get_level(caplog, "username_locked") == logging.WARNING


def test_event_password_grant_locked(caplog, app, client, oauth_client, user):
    """RFC 6749 §10.10: a sign-in refused because of a lock is logged."""
    for _ in range(app.config["AUTHSERVER_LOCKOUT_THRESHOLD"]):
        sign_in(client, oauth_client, user, WRONG_PASSWORD)

    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 400

    event = get_one_event(caplog, "password_grant_locked")
    assert event["client_id"] == oauth_client.client_id
    assert event["remote_addr"] == REMOTE_ADDR


def test_event_token_issued(caplog, client, oauth_client, user):
    """RFC 9700 §4.14.2: each issued token is logged with its ids."""
    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200

    event = get_one_event(caplog, "token_issued")

    assert_identifies(event, oauth_client, 1)
    assert event["grant_type"] == "password"


def test_event_token_refreshed(caplog, client, oauth_client, get_token):
    """RFC 9700 §4.14.2: each refresh is logged with its ids."""
    tokens = get_token()

    assert refresh(client, oauth_client, tokens["refresh_token"]).status_code == 200

    event = get_one_event(caplog, "token_refreshed")
    assert_identifies(event, oauth_client, 1)


def test_event_refresh_token_reused(caplog, client, oauth_client, get_token):
    """RFC 9700 §4.14.2: presenting a rotated refresh token is logged."""
    tokens = get_token()
    refresh(client, oauth_client, tokens["refresh_token"])

    assert refresh(client, oauth_client, tokens["refresh_token"]).status_code == 400

    event = get_one_event(caplog, "refresh_token_reused")
    assert_identifies(event, oauth_client, 1)
    assert get_level(caplog, "refresh_token_reused") == logging.WARNING


def test_event_token_family_revoked(caplog, client, oauth_client, get_token):
    """RFC 9700 §4.14.2: revoking a family after reuse is logged."""
    tokens = get_token()
    refresh(client, oauth_client, tokens["refresh_token"])

    assert refresh(client, oauth_client, tokens["refresh_token"]).status_code == 400

    event = get_one_event(caplog, "token_family_revoked")
    assert_identifies(event, oauth_client, 1)
    assert event["reason"] == "reuse"
    assert event["tokens_revoked"] == 2


def test_event_client_authentication_failed(caplog, client, oauth_client, user):
    """RFC 6749 §10.10: a failed client authentication is logged."""
    wrong = RegisteredClient(oauth_client.client_id, "not-the-secret")

    response = sign_in(client, wrong, user, PASSWORD)

    assert response.status_code == 401
    event = get_one_event(caplog, "client_authentication_failed")
    assert event["client_id"] == oauth_client.client_id
    assert event["remote_addr"] == REMOTE_ADDR
    assert get_level(caplog, "client_authentication_failed") == logging.WARNING


def test_events_never_contain_secrets(caplog, client, oauth_client, user, get_token):
    """RFC 9700 §4.14.2: logs carry no password, client secret or token."""
    caplog.set_level(logging.DEBUG)
    sign_in(client, oauth_client, user, WRONG_PASSWORD)
    tokens = get_token()
    second = refresh(client, oauth_client, tokens["refresh_token"]).get_json()
    refresh(client, oauth_client, tokens["refresh_token"])
    sign_in(client, RegisteredClient(oauth_client.client_id, "guess"), user, PASSWORD)

    secrets = [
        PASSWORD,
        WRONG_PASSWORD,
        oauth_client.client_secret,
        tokens["access_token"],
        tokens["refresh_token"],
        second["access_token"],
        second["refresh_token"],
    ]
    for record in caplog.records:
        if not record.name.startswith("authserver"):
            continue
        text = record.getMessage() + json.dumps(getattr(record, "event", None))
        for secret in secrets:
            assert secret not in text, record.getMessage()


def test_events_json_format(config, oauth_client, user, monkeypatch):
    """RFC 6749 §10.10: with the JSON log format each event is a JSON object."""
    json_app = create_app({**config, "AUTHSERVER_LOG_FORMAT": "json"})
    handler = next(
        h for h in logging.getLogger("authserver").handlers if h.name == HANDLER_NAME
    )
    stream = io.StringIO()
    monkeypatch.setattr(handler, "stream", stream)
    try:
        sign_in(json_app.test_client(), oauth_client, user, WRONG_PASSWORD)
    finally:
        json_app.extensions["authserver.engine"].dispose()

    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [e for e in entries if e.get("event") == "password_grant_failed"]
    assert len(failed) == 1, entries
    assert failed[0]["logger"] == SECURITY_LOGGER
    assert failed[0]["level"] == "WARNING"
    assert failed[0]["client_id"] == oauth_client.client_id
    assert failed[0]["user_id"] == 1
    assert failed[0]["remote_addr"] == REMOTE_ADDR
