"""Token revocation by the admin commands that change users and clients."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient

OVERLAP_SECONDS = 60
NEW_PASSWORD = "a brand new passphrase"


def invoke(runner: FlaskCliRunner, *args: str, input: str | None = None) -> str:
    """Run an admin command that must succeed; return its output."""
    result = runner.invoke(args=list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def rotate_secret(
    runner: FlaskCliRunner, oauth_client: RegisteredClient, *args: str
) -> RegisteredClient:
    """Rotate the client's secret; return the client with the new secret."""
    output = invoke(
        runner, "clients", "rotate-secret", oauth_client.client_id, "--json", *args
    )
    data = json.loads(output)
    return RegisteredClient(data["client_id"], data["client_secret"])


def sign_in(client: FlaskClient, oauth_client: RegisteredClient, user: str) -> Any:
    data = {"grant_type": "password", "username": user, "password": PASSWORD}
    return client.post("/oauth/token", data=data, headers=oauth_client.basic)


def refresh(
    client: FlaskClient, oauth_client: RegisteredClient, refresh_token: str
) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return client.post("/oauth/token", data=data, headers=oauth_client.basic)


def get_me(client: FlaskClient, access_token: str) -> Any:
    headers = {"Authorization": f"Bearer {access_token}"}
    return client.get("/api/me", headers=headers)


def assert_access_revoked(client: FlaskClient, access_token: str) -> None:
    response = get_me(client, access_token)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def assert_refresh_revoked(
    client: FlaskClient, oauth_client: RegisteredClient, refresh_token: str
) -> None:
    response = refresh(client, oauth_client, refresh_token)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


# users set-password


def test_users_set_password_revokes_access_tokens(client, runner, user, get_token):
    """RFC 9700 §4.14.2: a password change revokes the user's access tokens."""
    tokens = get_token()

    invoke(
        runner,
        "users",
        "set-password",
        user,
        "--password-stdin",
        input=NEW_PASSWORD + "\n",
    )

    assert_access_revoked(client, tokens["access_token"])


def test_users_set_password_revokes_refresh_tokens(
    client, runner, oauth_client, user, get_token
):
    """RFC 9700 §4.14.2: a password change revokes the user's refresh tokens."""
    tokens = get_token()

    invoke(
        runner,
        "users",
        "set-password",
        user,
        "--password-stdin",
        input=NEW_PASSWORD + "\n",
    )

    assert_refresh_revoked(client, oauth_client, tokens["refresh_token"])


def test_users_set_password_spares_other_users(
    client, runner, oauth_client, user, make_user, get_token
):
    """RFC 9700 §4.14.2: a password change leaves other users' tokens alone."""
    other = make_user("bob")
    other_tokens = sign_in(client, oauth_client, other).get_json()
    get_token()

    invoke(
        runner,
        "users",
        "set-password",
        user,
        "--password-stdin",
        input=NEW_PASSWORD + "\n",
    )

    assert get_me(client, other_tokens["access_token"]).status_code == 200
    assert (
        refresh(client, oauth_client, other_tokens["refresh_token"]).status_code == 200
    )


# users disable


def test_users_disable_revokes_access_tokens(client, runner, user, get_token):
    """RFC 9700 §4.14.2: disabling a user revokes their access tokens."""
    tokens = get_token()

    invoke(runner, "users", "disable", user)

    assert_access_revoked(client, tokens["access_token"])


def test_users_disable_revokes_refresh_tokens(
    client, runner, oauth_client, user, get_token
):
    """RFC 9700 §4.14.2: a re-enabled user's old refresh tokens stay revoked."""
    tokens = get_token()

    invoke(runner, "users", "disable", user)
    invoke(runner, "users", "enable", user)

    assert_refresh_revoked(client, oauth_client, tokens["refresh_token"])


# clients disable


def test_clients_disable_revokes_access_tokens(client, runner, oauth_client, get_token):
    """RFC 9700 §4.14.2: disabling a client revokes its access tokens."""
    tokens = get_token()

    invoke(runner, "clients", "disable", oauth_client.client_id)

    assert_access_revoked(client, tokens["access_token"])


def test_clients_disable_revokes_refresh_tokens(
    client, runner, oauth_client, get_token
):
    """RFC 9700 §4.14.2: a re-enabled client's old refresh tokens stay revoked."""
    tokens = get_token()

    invoke(runner, "clients", "disable", oauth_client.client_id)
    invoke(runner, "clients", "enable", oauth_client.client_id)

    assert_refresh_revoked(client, oauth_client, tokens["refresh_token"])


def test_clients_disable_rejects_client(client, runner, oauth_client, user):
    """RFC 6749 §5.2: a disabled client fails authentication."""
    invoke(runner, "clients", "disable", oauth_client.client_id)

    response = sign_in(client, oauth_client, user)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


# clients rotate-secret without overlap


def test_clients_rotate_secret_rejects_old_secret(client, runner, oauth_client, user):
    """RFC 6749 §2.3.1: without overlap the old secret fails at once."""
    rotate_secret(runner, oauth_client)

    response = sign_in(client, oauth_client, user)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_clients_rotate_secret_accepts_new_secret(client, runner, oauth_client, user):
    """RFC 6749 §2.3.1: the new secret authenticates the client."""
    rotated = rotate_secret(runner, oauth_client)

    assert rotated.client_secret != oauth_client.client_secret
    assert sign_in(client, rotated, user).status_code == 200


def test_clients_rotate_secret_revokes_access_tokens(
    client, runner, oauth_client, get_token
):
    """RFC 9700 §4.14.2: rotating without overlap revokes access tokens."""
    tokens = get_token()

    rotate_secret(runner, oauth_client)

    assert_access_revoked(client, tokens["access_token"])


def test_clients_rotate_secret_revokes_refresh_tokens(
    client, runner, oauth_client, get_token
):
    """RFC 9700 §4.14.2: rotating without overlap revokes refresh tokens."""
    tokens = get_token()

    rotated = rotate_secret(runner, oauth_client)

    assert_refresh_revoked(client, rotated, tokens["refresh_token"])


# clients rotate-secret --overlap


def test_clients_rotate_secret_overlap_keeps_old_secret(
    client, runner, oauth_client, user, clock
):
    """RFC 6749 §2.3.1: the old secret works until the overlap ends."""
    rotate_secret(runner, oauth_client, "--overlap", str(OVERLAP_SECONDS))
    clock.advance(OVERLAP_SECONDS - 1)

    assert sign_in(client, oauth_client, user).status_code == 200


def test_clients_rotate_secret_overlap_expires(
    client, runner, oauth_client, user, clock
):
    """RFC 6749 §2.3.1: the old secret fails once the overlap has ended."""
    rotate_secret(runner, oauth_client, "--overlap", str(OVERLAP_SECONDS))
    clock.advance(OVERLAP_SECONDS)

    response = sign_in(client, oauth_client, user)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_clients_rotate_secret_overlap_keeps_tokens(
    client, runner, oauth_client, get_token, clock
):
    """RFC 9700 §4.14.2: rotating with overlap leaves issued tokens valid."""
    tokens = get_token()

    rotated = rotate_secret(runner, oauth_client, "--overlap", str(OVERLAP_SECONDS))
    clock.advance(OVERLAP_SECONDS)

    assert get_me(client, tokens["access_token"]).status_code == 200
    assert refresh(client, rotated, tokens["refresh_token"]).status_code == 200
