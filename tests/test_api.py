"""The protected API and its bearer token checks, RFC 6750."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from authserver.db import get_session
from authserver.models import User
from authserver.security import now

ME_URL = "/api/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_user_id(app, username: str) -> int:
    with app.app_context():
        user_id = get_session().scalar(select(User.id).where(User.username == username))
    assert user_id is not None
    return user_id


def test_me_returns_user_id(app, client, user, get_token):
    response = client.get(ME_URL, headers=bearer(get_token()["access_token"]))

    assert response.status_code == 200
    assert response.get_json()["id"] == get_user_id(app, user)


def test_me_returns_username(client, user, get_token):
    response = client.get(ME_URL, headers=bearer(get_token()["access_token"]))

    assert response.status_code == 200
    assert response.get_json()["username"] == user


def test_me_accepts_lowercase_scheme(client, get_token):
    """RFC 7235 section 2.1: the authentication scheme is case-insensitive."""
    token = get_token()["access_token"]

    response = client.get(ME_URL, headers={"Authorization": f"bearer {token}"})

    assert response.status_code == 200


def test_me_accepts_refreshed_token(client, oauth_client, get_token):
    form = {
        "grant_type": "refresh_token",
        "refresh_token": get_token()["refresh_token"],
    }
    refreshed = client.post("/oauth/token", data=form, headers=oauth_client.basic)

    response = client.get(ME_URL, headers=bearer(refreshed.get_json()["access_token"]))

    assert response.status_code == 200


# Requests without a token: RFC 6750 section 3.1 says to send no error code.

NO_TOKEN_HEADERS = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": ""}, id="empty-header"),
    pytest.param({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, id="basic-scheme"),
]


@pytest.mark.parametrize("headers", NO_TOKEN_HEADERS)
def test_me_without_token_is_401(client, headers):
    """RFC 6750 section 3: a request without a token gets 401."""
    response = client.get(ME_URL, headers=headers)

    assert response.status_code == 401


@pytest.mark.parametrize("headers", NO_TOKEN_HEADERS)
def test_me_without_token_challenges_bearer_realm(client, headers):
    """RFC 6750 section 3: the challenge names the Bearer scheme and realm."""
    response = client.get(ME_URL, headers=headers)

    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="')


@pytest.mark.parametrize("headers", NO_TOKEN_HEADERS)
def test_me_without_token_has_no_error_code(client, headers):
    """RFC 6750 section 3.1: without authentication, the challenge has no error."""
    response = client.get(ME_URL, headers=headers)

    assert "error=" not in response.headers["WWW-Authenticate"]
    assert "error" not in response.get_json()


def test_me_ignores_token_in_query(client, get_token):
    """RFC 6750 section 2.3: tokens in the URI are not accepted."""
    token = get_token()["access_token"]

    response = client.get(ME_URL, query_string={"access_token": token})

    assert response.status_code == 401
    assert "error=" not in response.headers["WWW-Authenticate"]


def test_me_ignores_token_in_form(client, get_token):
    """RFC 6750 section 2.2: this server reads tokens from the header only."""
    token = get_token()["access_token"]

    response = client.get(ME_URL, data={"access_token": token})

    assert response.status_code == 401
    assert "error=" not in response.headers["WWW-Authenticate"]


# Tokens that are present but not valid: RFC 6750 section 3.1, invalid_token.

MALFORMED_TOKENS = [
    pytest.param("", id="empty"),
    pytest.param("two words", id="space"),
    pytest.param('a"b', id="quote"),
    pytest.param("ab,cd", id="comma"),
    pytest.param("=abc", id="leading-equals"),
    pytest.param("é" * 10, id="non-ascii"),
    pytest.param("a" * 5000, id="too-long"),
]


def assert_invalid_token(response) -> None:
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("token", MALFORMED_TOKENS)
def test_me_malformed_token_is_invalid_token(client, token):
    """RFC 6750 section 3.1: a malformed token is 401 invalid_token."""
    response = client.get(ME_URL, headers={"Authorization": f"Bearer {token}"})

    assert_invalid_token(response)


def test_me_unknown_token_is_invalid_token(client, get_token):
    """RFC 6750 section 3.1: a token the server did not issue is invalid_token."""
    get_token()

    response = client.get(ME_URL, headers=bearer("x" * 43))

    assert_invalid_token(response)


def test_me_refresh_token_is_invalid_token(client, get_token):
    """RFC 6749 section 1.5: a refresh token is not an access token."""
    response = client.get(ME_URL, headers=bearer(get_token()["refresh_token"]))

    assert_invalid_token(response)


def test_me_invalid_token_challenge_names_realm(client):
    """RFC 6750 section 3: the challenge names the Bearer scheme and realm."""
    response = client.get(ME_URL, headers=bearer("x" * 43))

    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="')


def test_me_expired_token_is_invalid_token(monkeypatch, client, get_token):
    """RFC 6750 section 3.1: an expired token is 401 invalid_token."""
    token = get_token()["access_token"]
    later = now() + 3600
    monkeypatch.setattr("authserver.bearer.now", lambda: later)

    response = client.get(ME_URL, headers=bearer(token))

    assert_invalid_token(response)


def test_me_token_valid_until_expiry(monkeypatch, client, get_token):
    token = get_token()["access_token"]
    later = now() + 3500
    monkeypatch.setattr("authserver.bearer.now", lambda: later)

    response = client.get(ME_URL, headers=bearer(token))

    assert response.status_code == 200


def test_me_expired_by_lifetime_is_invalid_token(monkeypatch, client, get_token):
    """RFC 6750 section 3.1: an expired token is 401 invalid_token."""
    issued_at = now() - 3600
    monkeypatch.setattr("authserver.grants.password.now", lambda: issued_at)
    token = get_token()["access_token"]

    response = client.get(ME_URL, headers=bearer(token))

    assert_invalid_token(response)


def test_me_token_revoked_by_new_password_is_invalid_token(
    client, runner, user, get_token
):
    """RFC 6750 section 3.1: a revoked token is 401 invalid_token."""
    token = get_token()["access_token"]
    result = runner.invoke(
        args=["users", "set-password", user, "--password-stdin"],
        input="another long password\n",
    )
    assert result.exit_code == 0, result.output

    response = client.get(ME_URL, headers=bearer(token))

    assert_invalid_token(response)


@pytest.mark.parametrize("command", ["disable", "delete"])
def test_me_token_of_removed_user_is_invalid_token(
    client, runner, user, get_token, command
):
    """RFC 6750 section 3.1: a revoked token is 401 invalid_token."""
    token = get_token()["access_token"]
    result = runner.invoke(args=["users", command, user])
    assert result.exit_code == 0, result.output

    response = client.get(ME_URL, headers=bearer(token))

    assert_invalid_token(response)


@pytest.mark.parametrize("command", ["disable", "delete"])
def test_me_token_of_removed_client_is_invalid_token(
    client, runner, oauth_client, get_token, command
):
    """RFC 6750 section 3.1: a revoked token is 401 invalid_token."""
    token = get_token()["access_token"]
    result = runner.invoke(args=["clients", command, oauth_client.client_id])
    assert result.exit_code == 0, result.output

    response = client.get(ME_URL, headers=bearer(token))

    assert_invalid_token(response)


def test_me_token_revoked_by_refresh_reuse_is_invalid_token(
    client, oauth_client, get_token
):
    """RFC 9700 section 4.14.2: refresh token reuse revokes the whole family."""
    first = get_token()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = client.post("/oauth/token", data=form, headers=oauth_client.basic)
    client.post("/oauth/token", data=form, headers=oauth_client.basic)

    response = client.get(ME_URL, headers=bearer(second.get_json()["access_token"]))

    assert_invalid_token(response)


# Scope, RFC 6750 section 3.1.


def test_me_without_profile_scope_is_forbidden(client, get_token):
    """RFC 6750 section 3.1: a token lacking the scope is 403 insufficient_scope."""
    token = get_token(scope="email")["access_token"]

    response = client.get(ME_URL, headers=bearer(token))

    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"


def test_me_without_profile_scope_challenge_names_scope(client, get_token):
    """RFC 6750 section 3: the challenge names the error and the scope needed."""
    token = get_token(scope="email")["access_token"]

    response = client.get(ME_URL, headers=bearer(token))

    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="')
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="profile"' in challenge
