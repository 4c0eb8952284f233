"""Scopes: the server's registry, each client's allowance and refresh rules."""

from __future__ import annotations

from typing import Any

import pytest

from authserver import create_app
from tests.conftest import PASSWORD

TOKEN_URL = "/oauth/token"


def password_grant(client: Any, registered: Any, user: str, **form: str) -> Any:
    return client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            **form,
        },
        headers=registered.basic,
    )


def refresh_grant(client: Any, registered: Any, refresh_token: str, **form: str) -> Any:
    return client.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **form},
        headers=registered.basic,
    )


def assert_invalid_scope(response: Any) -> None:
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


# The registry: AUTHSERVER_SCOPES.


def test_scopes_registry_scope_is_granted(client, make_client, user):
    registered = make_client(scope="profile admin")

    response = password_grant(client, registered, user, scope="admin")

    assert response.status_code == 200
    assert response.get_json()["scope"] == "admin"


def test_scopes_client_with_unregistered_scope_is_rejected(runner):
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "x",
            "--grant-type",
            "password",
            "--scope",
            "profile reports",
        ]
    )

    assert result.exit_code != 0
    assert "reports" in result.output


def test_scopes_registry_from_config_is_honoured(config):
    config["AUTHSERVER_SCOPES"] = {"reports": "Read reports."}
    app = create_app(config)
    try:
        result = app.test_cli_runner().invoke(
            args=[
                "clients",
                "create",
                "--name",
                "x",
                "--grant-type",
                "client_credentials",
                "--scope",
                "reports",
            ]
        )
    finally:
        app.extensions["authserver.engine"].dispose()

    assert result.exit_code == 0, result.output


def test_scopes_unregistered_scope_is_invalid_scope(client, oauth_client, user):
    """RFC 6749 section 5.2: an unknown scope is invalid_scope."""
    response = password_grant(client, oauth_client, user, scope="profile reports")

    assert_invalid_scope(response)


def test_scopes_scope_not_allowed_to_client_is_invalid_scope(
    client, oauth_client, user
):
    """RFC 6749 section 5.2: a scope beyond the client's allowance is invalid."""
    response = password_grant(client, oauth_client, user, scope="admin")

    assert_invalid_scope(response)


def test_scopes_requested_subset_is_granted(client, oauth_client, user):
    response = password_grant(client, oauth_client, user, scope="email")

    assert response.status_code == 200
    assert response.get_json()["scope"] == "email"


def test_scopes_repeated_scope_is_granted_once(client, oauth_client, user):
    response = password_grant(client, oauth_client, user, scope="email email")

    assert response.get_json()["scope"] == "email"


# RFC 6749 section 3.3: defaults when the request names no scope.


def test_scopes_default_scope_applies_when_none_requested(client, make_client, user):
    """RFC 6749 section 3.3: an omitted scope gets the client's default."""
    registered = make_client("--default-scope", "profile")

    response = password_grant(client, registered, user)

    assert response.status_code == 200
    assert response.get_json()["scope"] == "profile"


def test_scopes_empty_scope_gets_default(client, make_client, user):
    """RFC 6749 section 3.3: an empty scope gets the client's default."""
    registered = make_client("--default-scope", "email")

    response = password_grant(client, registered, user, scope="")

    assert response.get_json()["scope"] == "email"


def test_scopes_without_default_every_allowed_scope_applies(client, oauth_client, user):
    """RFC 6749 section 3.3: the default is every allowed scope."""
    response = password_grant(client, oauth_client, user)

    assert response.get_json()["scope"] == "profile email"


def test_scopes_default_scope_applies_to_client_credentials(client, make_client):
    """RFC 6749 section 3.3: an omitted scope gets the client's default."""
    registered = make_client(
        "--default-scope", "email", grant_types=("client_credentials",)
    )

    response = client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers=registered.basic
    )

    assert response.status_code == 200
    assert response.get_json()["scope"] == "email"


def test_scopes_default_outside_registry_is_not_granted(config, make_client, user):
    """RFC 6749 section 3.3: a scope the server no longer knows is not issued."""
    registered = make_client(scope="profile admin")
    config["AUTHSERVER_SCOPES"] = {"profile": "Read the user's id and username."}
    app = create_app(config)
    try:
        response = password_grant(app.test_client(), registered, user)
    finally:
        app.extensions["authserver.engine"].dispose()

    assert response.status_code == 200
    assert response.get_json()["scope"] == "profile"


def test_scopes_default_wholly_outside_registry_is_invalid_scope(
    config, make_client, user
):
    """RFC 6749 section 3.3: with no usable default the request fails."""
    registered = make_client(scope="admin")
    config["AUTHSERVER_SCOPES"] = {"profile": "Read the user's id and username."}
    app = create_app(config)
    try:
        response = password_grant(app.test_client(), registered, user)
    finally:
        app.extensions["authserver.engine"].dispose()

    assert_invalid_scope(response)


# RFC 6749 section 6: scope on refresh.


def test_scopes_refresh_narrower_scope_is_granted(client, oauth_client, user):
    """RFC 6749 section 6: a refresh may narrow the scope."""
    issued = password_grant(client, oauth_client, user).get_json()

    response = refresh_grant(
        client, oauth_client, issued["refresh_token"], scope="email"
    )

    assert response.status_code == 200
    assert response.get_json()["scope"] == "email"


def test_scopes_refresh_narrower_token_lacks_dropped_scope(client, oauth_client, user):
    """RFC 6749 section 6: a narrowed token carries only the narrower scope."""
    issued = password_grant(client, oauth_client, user).get_json()
    narrowed = refresh_grant(
        client, oauth_client, issued["refresh_token"], scope="email"
    ).get_json()

    response = client.get(
        "/api/me", headers={"Authorization": f"Bearer {narrowed['access_token']}"}
    )

    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"


@pytest.mark.parametrize("scope", ["profile email", "profile email admin", "admin"])
def test_scopes_refresh_wider_scope_is_invalid_scope(client, make_client, user, scope):
    """RFC 6749 section 6: a refresh must not widen the original scope."""
    registered = make_client(scope="profile email admin")
    issued = password_grant(client, registered, user, scope="profile").get_json()

    response = refresh_grant(client, registered, issued["refresh_token"], scope=scope)

    assert_invalid_scope(response)


def test_scopes_refresh_unknown_scope_is_invalid_scope(client, oauth_client, user):
    """RFC 6749 section 6: a refresh must not widen the original scope."""
    issued = password_grant(client, oauth_client, user).get_json()

    response = refresh_grant(
        client, oauth_client, issued["refresh_token"], scope="reports"
    )

    assert_invalid_scope(response)


def test_scopes_refresh_omitted_scope_keeps_original(client, oauth_client, user):
    """RFC 6749 section 6: an omitted scope is the original grant's scope."""
    issued = password_grant(client, oauth_client, user, scope="profile email")

    response = refresh_grant(client, oauth_client, issued.get_json()["refresh_token"])

    assert response.get_json()["scope"] == "profile email"


def test_scopes_refresh_omitted_after_narrowing_keeps_original(
    client, oauth_client, user
):
    """RFC 6749 section 6: an omitted scope is the ORIGINAL grant's scope."""
    issued = password_grant(client, oauth_client, user).get_json()
    narrowed = refresh_grant(
        client, oauth_client, issued["refresh_token"], scope="email"
    ).get_json()

    response = refresh_grant(client, oauth_client, narrowed["refresh_token"])

    assert response.status_code == 200
    assert response.get_json()["scope"] == "profile email"


def test_scopes_refresh_after_narrowing_may_widen_to_original(
    client, oauth_client, user
):
    """RFC 6749 section 6: the bound is the original grant, not the last refresh."""
    issued = password_grant(client, oauth_client, user).get_json()
    narrowed = refresh_grant(
        client, oauth_client, issued["refresh_token"], scope="email"
    ).get_json()

    response = refresh_grant(
        client, oauth_client, narrowed["refresh_token"], scope="profile"
    )

    assert response.status_code == 200
    assert response.get_json()["scope"] == "profile"
