"""The introspection endpoint, RFC 7662."""

from __future__ import annotations

from typing import Any

import pytest

from authserver.security import now
from tests.conftest import PASSWORD

INTROSPECT_URL = "/oauth/introspect"
REVOKE_URL = "/oauth/revoke"
TOKEN_URL = "/oauth/token"
ISSUER = "http://127.0.0.1:5000"
INACTIVE = {"active": False}


def introspect(client: Any, registered: Any, token: str, **form: str) -> Any:
    return client.post(
        INTROSPECT_URL, data={"token": token, **form}, headers=registered.basic
    )


@pytest.fixture
def resource_server(make_client):  # type: ignore[no-untyped-def]
    """A client registered with ``--introspect``, as a resource server."""
    return make_client("--introspect", grant_types=("client_credentials",))


def test_introspect_without_client_authentication_is_401(client, get_token):
    """RFC 7662 section 2.1: the caller must be authorized to introspect."""
    token = get_token()["access_token"]

    response = client.post(INTROSPECT_URL, data={"token": token})

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspect_with_wrong_secret_is_401(client, oauth_client, get_token):
    """RFC 7662 section 2.1: the caller must be authorized to introspect."""
    token = get_token()["access_token"]

    response = client.post(
        INTROSPECT_URL,
        data={
            "token": token,
            "client_id": oauth_client.client_id,
            "client_secret": "wrong",
        },
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspect_by_public_client_is_401(client, make_client, user):
    """RFC 7662 section 2.1: a public client cannot authenticate, so it is rejected."""
    public = make_client("--public")
    issued = client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            "client_id": public.client_id,
        },
    ).get_json()

    response = client.post(
        INTROSPECT_URL,
        data={"token": issued["access_token"], "client_id": public.client_id},
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspect_without_token_is_invalid_request(client, oauth_client):
    """RFC 7662 section 2.1: the ``token`` parameter is required."""
    response = client.post(INTROSPECT_URL, data={}, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_introspect_own_access_token_is_active(client, oauth_client, get_token):
    token = get_token()["access_token"]

    body = introspect(client, oauth_client, token).get_json()

    assert body["active"] is True
    assert body["token_type"] == "Bearer"


def test_introspect_own_refresh_token_is_active(client, oauth_client, get_token):
    token = get_token()["refresh_token"]

    body = introspect(client, oauth_client, token).get_json()

    assert body["active"] is True
    assert body["token_type"] == "refresh_token"


def test_introspect_answer_forbids_caching(client, oauth_client, get_token):
    token = get_token()["access_token"]

    response = introspect(client, oauth_client, token)

    assert response.headers["Cache-Control"] == "no-store"


def test_introspect_active_answer_has_every_member(
    client, oauth_client, user, get_token
):
    """RFC 7662 section 2.2: the active answer describes the token."""
    before = now()
    token = get_token(scope="profile")["access_token"]

    body = introspect(client, oauth_client, token).get_json()

    assert body["active"] is True
    assert body["scope"] == "profile"
    assert body["client_id"] == oauth_client.client_id
    assert body["username"] == user
    assert body["sub"].isdigit()
    assert body["token_type"] == "Bearer"
    assert before <= body["iat"] <= now()
    assert body["exp"] == body["iat"] + 3600
    assert body["iss"] == ISSUER
    assert "jti" not in body


def test_introspect_sub_matches_api_me(client, oauth_client, get_token):
    token = get_token()["access_token"]
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})

    body = introspect(client, oauth_client, token).get_json()

    assert body["sub"] == me.get_json()["sub"]


def test_introspect_refresh_token_exp_is_refresh_expiry(
    client, oauth_client, get_token
):
    token = get_token()["refresh_token"]

    body = introspect(client, oauth_client, token).get_json()

    assert body["exp"] == body["iat"] + 30 * 24 * 3600


@pytest.mark.parametrize("hint", ["refresh_token", "bogus_type", ""])
def test_introspect_access_token_with_other_hint_is_active(
    client, oauth_client, get_token, hint
):
    """RFC 7662 section 2.1: a wrong or unknown hint never stops the search."""
    token = get_token()["access_token"]

    body = introspect(client, oauth_client, token, token_type_hint=hint).get_json()

    assert body["active"] is True
    assert body["token_type"] == "Bearer"


@pytest.mark.parametrize("hint", ["access_token", "bogus_type"])
def test_introspect_refresh_token_with_other_hint_is_active(
    client, oauth_client, get_token, hint
):
    """RFC 7662 section 2.1: a wrong or unknown hint never stops the search."""
    token = get_token()["refresh_token"]

    body = introspect(client, oauth_client, token, token_type_hint=hint).get_json()

    assert body["active"] is True
    assert body["token_type"] == "refresh_token"


def test_introspect_by_resource_server_any_access_token_is_active(
    client, resource_server, oauth_client, get_token
):
    """RFC 7662 section 2.1: a protected resource may introspect access tokens."""
    token = get_token()["access_token"]

    body = introspect(client, resource_server, token).get_json()

    assert body["active"] is True
    assert body["client_id"] == oauth_client.client_id


def test_introspect_by_resource_server_other_refresh_token_is_inactive(
    client, resource_server, get_token
):
    """RFC 7662 section 2.1: a resource server never sees refresh tokens."""
    token = get_token()["refresh_token"]

    response = introspect(client, resource_server, token)

    assert response.status_code == 200
    assert response.get_json() == INACTIVE


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_introspect_by_other_client_is_inactive(client, make_client, get_token, kind):
    """RFC 7662 section 2.2: a caller not allowed to see a token gets inactive."""
    token = get_token()[kind]
    other = make_client()

    response = introspect(client, other, token)

    assert response.status_code == 200
    assert response.get_json() == INACTIVE


@pytest.mark.parametrize("token", ["unknown-token", "x" * 43, "not a token!"])
def test_introspect_unknown_token_is_inactive(client, oauth_client, token):
    """RFC 7662 section 2.2: an unknown token is answered with only inactive."""
    response = introspect(client, oauth_client, token)

    assert response.status_code == 200
    assert response.get_json() == INACTIVE


def test_introspect_expired_access_token_is_inactive(
    monkeypatch, client, oauth_client, get_token
):
    """RFC 7662 section 2.2: an expired token is answered with only inactive."""
    token = get_token()["access_token"]
    later = now() + 3600
    monkeypatch.setattr("authserver.endpoints.lookup.now", lambda: later)

    response = introspect(client, oauth_client, token)

    assert response.get_json() == INACTIVE


def test_introspect_expired_refresh_token_is_inactive(
    monkeypatch, client, oauth_client, get_token
):
    """RFC 7662 section 2.2: an expired token is answered with only inactive."""
    token = get_token()["refresh_token"]
    later = now() + 30 * 24 * 3600
    monkeypatch.setattr("authserver.endpoints.lookup.now", lambda: later)

    response = introspect(client, oauth_client, token)

    assert response.get_json() == INACTIVE


def test_introspect_revoked_access_token_is_inactive(client, oauth_client, get_token):
    """RFC 7662 section 2.2: a revoked token is answered with only inactive."""
    token = get_token()["access_token"]
    client.post(REVOKE_URL, data={"token": token}, headers=oauth_client.basic)

    response = introspect(client, oauth_client, token)

    assert response.get_json() == INACTIVE


def test_introspect_revoked_refresh_token_is_inactive(client, oauth_client, get_token):
    """RFC 7662 section 2.2: a revoked token is answered with only inactive."""
    token = get_token()["refresh_token"]
    client.post(REVOKE_URL, data={"token": token}, headers=oauth_client.basic)

    response = introspect(client, oauth_client, token)

    assert response.get_json() == INACTIVE


def test_introspect_rotated_refresh_token_is_inactive(client, oauth_client, get_token):
    """RFC 7662 section 2.2: a used refresh token is no longer active."""
    token = get_token()["refresh_token"]
    client.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers=oauth_client.basic,
    )

    response = introspect(client, oauth_client, token)

    assert response.get_json() == INACTIVE


def test_introspect_token_of_disabled_user_is_inactive(
    client, runner, oauth_client, user, get_token
):
    """RFC 7662 section 2.2: a token of a disabled user is not active."""
    token = get_token()["access_token"]
    result = runner.invoke(args=["users", "disable", user])
    assert result.exit_code == 0, result.output

    response = introspect(client, oauth_client, token)

    assert response.get_json() == INACTIVE


def test_introspect_client_credentials_token_sub_is_client(client, make_client):
    service = make_client(grant_types=("client_credentials",))
    issued = client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers=service.basic
    ).get_json()

    body = introspect(client, service, issued["access_token"]).get_json()

    assert body["active"] is True
    assert body["sub"] == service.client_id
    assert "username" not in body
