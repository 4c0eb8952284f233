"""The client credentials grant, RFC 6749 section 4.4."""

from __future__ import annotations

from typing import Any

import pytest

TOKEN_URL = "/oauth/token"
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def service(make_client):  # type: ignore[no-untyped-def]
    """A confidential client registered for the client credentials grant."""
    return make_client(grant_types=("client_credentials",))


def request_token(client: Any, registered: Any, **form: str) -> Any:
    return client.post(TOKEN_URL, data={**GRANT, **form}, headers=registered.basic)


def test_client_credentials_issues_access_token(client, service):
    response = request_token(client, service)

    assert response.status_code == 200
    body = response.get_json()
    assert body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "profile email"


def test_client_credentials_issues_no_refresh_token(client, service):
    """RFC 6749 section 4.4.3: a refresh token should not be included."""
    response = request_token(client, service)

    assert "refresh_token" not in response.get_json()


def test_client_credentials_forbids_caching(client, service):
    """RFC 6749 section 5.1: token responses carry no-store."""
    response = request_token(client, service)

    assert response.headers["Cache-Control"] == "no-store"


def test_client_credentials_with_client_secret_post(client, service):
    """RFC 6749 section 2.3.1: credentials may be sent in the body."""
    response = client.post(
        TOKEN_URL,
        data={
            **GRANT,
            "client_id": service.client_id,
            "client_secret": service.client_secret,
        },
    )

    assert response.status_code == 200


def test_client_credentials_not_registered_is_unauthorized_client(client, oauth_client):
    """RFC 6749 section 5.2: a client without the grant is unauthorized_client."""
    response = request_token(client, oauth_client)

    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


def test_client_credentials_without_authentication_is_invalid_client(client):
    """RFC 6749 section 4.4.2: the client must authenticate."""
    response = client.post(TOKEN_URL, data=GRANT)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_client_credentials_wrong_secret_is_invalid_client(client, service):
    """RFC 6749 section 5.2: failed client authentication is invalid_client."""
    response = client.post(
        TOKEN_URL,
        data={**GRANT, "client_id": service.client_id, "client_secret": "wrong"},
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_client_credentials_public_client_is_invalid_client(client, make_client):
    """RFC 6749 section 4.4: only confidential clients may use the grant."""
    public = make_client("--public")

    response = client.post(TOKEN_URL, data={**GRANT, "client_id": public.client_id})

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_client_credentials_public_registration_is_rejected(runner):
    """RFC 6749 section 4.4: only confidential clients may use the grant."""
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "x",
            "--public",
            "--grant-type",
            "client_credentials",
            "--scope",
            "profile",
        ]
    )

    assert result.exit_code != 0
    assert "public" in result.output


def test_client_credentials_requested_scope_is_granted(client, service):
    response = request_token(client, service, scope="email")

    assert response.get_json()["scope"] == "email"


def test_client_credentials_scope_not_allowed_is_invalid_scope(client, service):
    """RFC 6749 section 5.2: a scope beyond the client's allowance is invalid."""
    response = request_token(client, service, scope="admin")

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_client_credentials_token_at_api_me_is_403(client, service):
    """RFC 6750 section 3.1: a token with no user cannot read a user's data."""
    token = request_token(client, service).get_json()["access_token"]

    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"


def test_client_credentials_refresh_grant_gets_no_refresh_token(client, make_client):
    """RFC 6749 section 4.4.3: the grant has no refresh token to present."""
    both = make_client(grant_types=("client_credentials", "refresh_token"))
    body = request_token(client, both).get_json()

    assert "refresh_token" not in body
