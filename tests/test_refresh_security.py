"""Refresh token rotation, reuse detection, grace period and expiry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from authserver import security
from authserver.db import get_session
from authserver.models import Token
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient

GRACE_SECONDS = 30


@dataclass
class Family:
    """The responses of one password grant and the refreshes after it."""

    pairs: list[dict[str, Any]]
    replay: Any


def refresh(
    client: FlaskClient, oauth_client: RegisteredClient, refresh_token: str
) -> Any:
    """Post a refresh token grant and return the response."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return client.post("/oauth/token", data=data, headers=oauth_client.basic)


def refresh_ok(
    client: FlaskClient, oauth_client: RegisteredClient, refresh_token: str
) -> dict[str, Any]:
    """Refresh and return the new pair, failing the test on an error."""
    response = refresh(client, oauth_client, refresh_token)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def get_me(client: FlaskClient, access_token: str) -> Any:
    """Call the protected API with ``access_token``."""
    headers = {"Authorization": f"Bearer {access_token}"}
    return client.get("/api/me", headers=headers)


def password_grant(
    client: FlaskClient, oauth_client: RegisteredClient, username: str
) -> dict[str, Any]:
    """Obtain a pair for ``username`` with the password grant."""
    data = {"grant_type": "password", "username": username, "password": PASSWORD}
    response = client.post("/oauth/token", data=data, headers=oauth_client.basic)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def revoke_refresh_token(app: Flask, refresh_token: str, at: int) -> None:
    """Mark a refresh token revoked, as an operator or RFC 7009 would."""
    with app.app_context():
        session = get_session()
        session.execute(
            update(Token)
            .where(Token.refresh_token_digest == security.digest_secret(refresh_token))
            .values(revoked_at=at)
        )
        session.commit()


@pytest.fixture
def grace_config(config: dict[str, Any]) -> dict[str, Any]:
    config["AUTHSERVER_REFRESH_GRACE_SECONDS"] = GRACE_SECONDS
    return config


@pytest.fixture
def replayed_family(
    client: FlaskClient, oauth_client: RegisteredClient, get_token: Any
) -> Family:
    """Rotate twice, then present the first refresh token again."""
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    third = refresh_ok(client, oauth_client, second["refresh_token"])
    replay = refresh(client, oauth_client, first["refresh_token"])
    return Family(pairs=[first, second, third], replay=replay)


# Rotation and reuse detection


def test_refresh_rotates_refresh_token(client, oauth_client, get_token):
    """RFC 9700 §4.14.2: each refresh returns a new refresh token."""
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])

    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]


def test_refresh_reuse_answers_invalid_grant(replayed_family):
    """RFC 9700 §4.14.2: a rotated refresh token is rejected as invalid_grant."""
    assert replayed_family.replay.status_code == 400
    assert replayed_family.replay.get_json()["error"] == "invalid_grant"


def test_refresh_reuse_revokes_family_access_tokens(client, replayed_family):
    """RFC 9700 §4.14.2: reuse revokes every access token of the family."""
    for pair in replayed_family.pairs:
        response = get_me(client, pair["access_token"])
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_token"


def test_refresh_reuse_revokes_family_refresh_tokens(
    client, oauth_client, replayed_family
):
    """RFC 9700 §4.14.2: reuse revokes every refresh token of the family."""
    for pair in replayed_family.pairs:
        response = refresh(client, oauth_client, pair["refresh_token"])
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_grant"


def test_refresh_reuse_spares_other_families(client, oauth_client, user, get_token):
    """RFC 9700 §4.14.2: only the family of the reused token is revoked."""
    other = password_grant(client, oauth_client, user)
    first = get_token()
    refresh_ok(client, oauth_client, first["refresh_token"])
    refresh(client, oauth_client, first["refresh_token"])

    assert get_me(client, other["access_token"]).status_code == 200
    refresh_ok(client, oauth_client, other["refresh_token"])


def test_refresh_grace_defaults_to_zero(app, client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: by default a replay in the same second is reuse."""
    assert app.config["AUTHSERVER_REFRESH_GRACE_SECONDS"] == 0
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert get_me(client, second["access_token"]).status_code == 401


# Grace period after a rotation


@pytest.mark.usefixtures("grace_config")
def test_refresh_grace_reissues_preceding_token(client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: within the grace period a retry gets a fresh pair."""
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(GRACE_SECONDS - 1)

    retry = refresh(client, oauth_client, first["refresh_token"])

    assert retry.status_code == 200, retry.get_json()
    body = retry.get_json()
    assert body["refresh_token"] not in (
        first["refresh_token"],
        second["refresh_token"],
    )
    assert get_me(client, body["access_token"]).status_code == 200
    refresh_ok(client, oauth_client, body["refresh_token"])


@pytest.mark.usefixtures("grace_config")
def test_refresh_grace_revokes_replaced_pair(client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: the pair that a grace retry replaces is revoked."""
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(1)
    refresh_ok(client, oauth_client, first["refresh_token"])

    me = get_me(client, second["access_token"])
    assert me.status_code == 401
    assert me.get_json()["error"] == "invalid_token"
    response = refresh(client, oauth_client, second["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("grace_config")
def test_refresh_grace_keeps_family(client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: a grace retry does not revoke the family."""
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(1)
    retry = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(1)

    # Presenting the replaced pair fails but is not treated as theft.
    replaced = refresh(client, oauth_client, second["refresh_token"])
    assert replaced.status_code == 400
    assert get_me(client, first["access_token"]).status_code == 200
    assert get_me(client, retry["access_token"]).status_code == 200
    refresh_ok(client, oauth_client, retry["refresh_token"])


@pytest.mark.usefixtures("grace_config")
def test_refresh_grace_ends_after_setting(client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: after the grace period a replay revokes the family."""
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(GRACE_SECONDS)

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    after = refresh(client, oauth_client, second["refresh_token"])
    assert after.status_code == 400
    assert after.get_json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("grace_config")
def test_refresh_grace_rejects_older_token(client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: only the immediately preceding token gets grace."""
    first = get_token()
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    third = refresh_ok(client, oauth_client, second["refresh_token"])
    clock.advance(1)

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert get_me(client, third["access_token"]).status_code == 401
    after = refresh(client, oauth_client, third["refresh_token"])
    assert after.status_code == 400
    assert after.get_json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("grace_config")
def test_refresh_grace_skips_revoked_token(app, client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: a refresh token revoked on purpose gets no grace."""
    first = get_token()
    refresh_ok(client, oauth_client, first["refresh_token"])
    revoke_refresh_token(app, first["refresh_token"], clock())
    clock.advance(1)

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("grace_config")
def test_refresh_grace_skips_revoked_family(
    client, oauth_client, runner, user, get_token, clock
):
    """RFC 9700 §4.14.2: no grace for a family revoked by a password change."""
    first = get_token()
    refresh_ok(client, oauth_client, first["refresh_token"])
    result = runner.invoke(
        args=["users", "set-password", user, "--password-stdin"],
        input=PASSWORD + " new\n",
    )
    assert result.exit_code == 0, result.output
    clock.advance(1)

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


# Absolute lifetime and idle timeout


@pytest.fixture
def short_lifetime_config(config: dict[str, Any]) -> dict[str, Any]:
    config["AUTHSERVER_REFRESH_TOKEN_LIFETIME_SECONDS"] = 100
    config["AUTHSERVER_REFRESH_TOKEN_IDLE_SECONDS"] = 60
    return config


@pytest.mark.usefixtures("short_lifetime_config")
def test_refresh_within_lifetime_succeeds(client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: a token used before both limits still refreshes."""
    first = get_token()
    clock.advance(50)
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(49)

    refresh_ok(client, oauth_client, second["refresh_token"])


@pytest.mark.usefixtures("short_lifetime_config")
def test_refresh_lifetime_counts_from_family_start(
    client, oauth_client, get_token, clock
):
    """RFC 9700 §4.14.2: the absolute lifetime runs from the password grant."""
    first = get_token()
    clock.advance(50)
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(50)

    response = refresh(client, oauth_client, second["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("short_lifetime_config")
def test_refresh_idle_timeout_expires(client, oauth_client, get_token, clock):
    """RFC 9700 §4.14.2: a refresh token unused for the idle time expires."""
    first = get_token()
    clock.advance(60)

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("short_lifetime_config")
def test_refresh_idle_timeout_counts_from_last_use(
    client, oauth_client, get_token, clock
):
    """RFC 9700 §4.14.2: the idle timeout restarts at each refresh."""
    first = get_token()
    clock.advance(40)
    second = refresh_ok(client, oauth_client, first["refresh_token"])
    clock.advance(40)
    third = refresh_ok(client, oauth_client, second["refresh_token"])
    clock.advance(60)

    response = refresh(client, oauth_client, third["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_client_lifetime_override_expires(client, make_client, user, clock):
    """RFC 9700 §4.14.2: a client's own absolute lifetime applies to it."""
    short = make_client("--refresh-lifetime", "100")
    first = password_grant(client, short, user)
    clock.advance(50)
    second = refresh_ok(client, short, first["refresh_token"])
    clock.advance(49)
    third = refresh_ok(client, short, second["refresh_token"])
    clock.advance(1)

    response = refresh(client, short, third["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_client_idle_override_expires(client, make_client, user, clock):
    """RFC 9700 §4.14.2: a client's own idle timeout applies to it."""
    short = make_client("--refresh-idle", "60")
    first = password_grant(client, short, user)
    clock.advance(59)
    second = refresh_ok(client, short, first["refresh_token"])
    clock.advance(60)

    response = refresh(client, short, second["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("short_lifetime_config")
def test_refresh_client_override_extends_server_setting(
    client, make_client, user, clock
):
    """RFC 9700 §4.14.2: a client's longer limits replace the server's."""
    long = make_client("--refresh-lifetime", "1000", "--refresh-idle", "500")
    first = password_grant(client, long, user)
    clock.advance(400)
    second = refresh_ok(client, long, first["refresh_token"])
    clock.advance(400)

    refresh_ok(client, long, second["refresh_token"])
