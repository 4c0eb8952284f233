"""The revocation endpoint, RFC 7009."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

REVOKE_URL = "/oauth/revoke"
TOKEN_URL = "/oauth/token"
ME_URL = "/api/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def revoke(client: Any, registered: Any, token: str, **form: str) -> Any:
    return client.post(
        REVOKE_URL, data={"token": token, **form}, headers=registered.basic
    )


def refresh(client: Any, registered: Any, refresh_token: str) -> Any:
    return client.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=registered.basic,
    )


def test_revoke_access_token_answers_200_with_empty_body(
    client, oauth_client, get_token
):
    token = get_token()["access_token"]

    response = revoke(client, oauth_client, token)

    assert response.status_code == 200
    assert response.get_json() == {}


def test_revoke_access_token_is_rejected_by_api(client, oauth_client, get_token):
    """RFC 7009 section 2.1: a revoked access token is invalid at once."""
    token = get_token()["access_token"]

    revoke(client, oauth_client, token)

    assert client.get(ME_URL, headers=bearer(token)).status_code == 401


def test_revoke_without_client_authentication_is_401(client, get_token):
    """RFC 7009 section 2.1: the caller must authenticate as a client."""
    token = get_token()["access_token"]

    response = client.post(REVOKE_URL, data={"token": token})

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_revoke_without_client_authentication_keeps_token(client, get_token):
    """RFC 7009 section 2.1: an unauthenticated request revokes nothing."""
    token = get_token()["access_token"]

    client.post(REVOKE_URL, data={"token": token})

    assert client.get(ME_URL, headers=bearer(token)).status_code == 200


def test_revoke_with_wrong_secret_is_401(client, oauth_client, get_token):
    """RFC 7009 section 2.1: client authentication failures are invalid_client."""
    token = get_token()["access_token"]

    response = client.post(
        REVOKE_URL,
        data={
            "token": token,
            "client_id": oauth_client.client_id,
            "client_secret": "wrong",
        },
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_revoke_token_of_another_client_is_invalid_grant(
    client, make_client, get_token
):
    """RFC 7009 section 2.1: a token issued to another client is rejected."""
    token = get_token()["access_token"]
    other = make_client()

    response = revoke(client, other, token)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_revoke_token_of_another_client_stays_valid(client, make_client, get_token):
    """RFC 7009 section 2.1: a rejected revocation leaves the token valid."""
    token = get_token()["access_token"]
    other = make_client()

    revoke(client, other, token)

    assert client.get(ME_URL, headers=bearer(token)).status_code == 200


def test_revoke_refresh_token_of_another_client_stays_valid(
    client, oauth_client, make_client, get_token
):
    """RFC 7009 section 2.1: a rejected revocation leaves the token valid."""
    refresh_token = get_token()["refresh_token"]
    other = make_client()

    revoke(client, other, refresh_token)

    assert refresh(client, oauth_client, refresh_token).status_code == 200


@pytest.mark.parametrize("hint", ["refresh_token", "bogus_type", ""])
def test_revoke_access_token_with_other_hint_is_revoked(
    client, oauth_client, get_token, hint
):
    """RFC 7009 section 2.1: a wrong or unknown hint never stops the search."""
    token = get_token()["access_token"]

    response = revoke(client, oauth_client, token, token_type_hint=hint)

    assert response.status_code == 200
    assert client.get(ME_URL, headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("hint", ["access_token", "bogus_type", ""])
def test_revoke_refresh_token_with_other_hint_is_revoked(
    client, oauth_client, get_token, hint
):
    """RFC 7009 section 2.1: a wrong or unknown hint never stops the search."""
    refresh_token = get_token()["refresh_token"]

    response = revoke(client, oauth_client, refresh_token, token_type_hint=hint)

    assert response.status_code == 200
    assert refresh(client, oauth_client, refresh_token).status_code == 400


@pytest.mark.parametrize(
    "token",
    ["unknown-token-value", "x" * 43, "not a token!", "é" * 10, "a" * 5000],
)
def test_revoke_unknown_or_malformed_token_answers_200(client, oauth_client, token):
    """RFC 7009 section 2.2: an invalid token is no error."""
    response = revoke(client, oauth_client, token)

    assert response.status_code == 200
    assert response.get_json() == {}


def test_revoke_without_token_is_invalid_request(client, oauth_client):
    """RFC 7009 section 2.1: the ``token`` parameter is required."""
    response = client.post(REVOKE_URL, data={}, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_revoke_already_revoked_token_answers_200(client, oauth_client, get_token):
    token = get_token()["access_token"]
    revoke(client, oauth_client, token)

    response = revoke(client, oauth_client, token)

    assert response.status_code == 200


def test_revoke_refresh_token_rejects_the_refresh_token(
    client, oauth_client, get_token
):
    """RFC 7009 section 2.1: a revoked refresh token cannot be refreshed."""
    refresh_token = get_token()["refresh_token"]

    revoke(client, oauth_client, refresh_token)

    response = refresh(client, oauth_client, refresh_token)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_revoke_refresh_token_revokes_its_access_token(client, oauth_client, get_token):
    """RFC 7009 section 2.1: revoking a refresh token may revoke the grant."""
    tokens = get_token()

    revoke(client, oauth_client, tokens["refresh_token"])

    assert client.get(ME_URL, headers=bearer(tokens["access_token"])).status_code == 401


def test_revoke_refresh_token_revokes_later_access_tokens(
    client, oauth_client, get_token
):
    """RFC 7009 section 2.1: revoking a refresh token may revoke the grant."""
    first = get_token()
    second = refresh(client, oauth_client, first["refresh_token"]).get_json()
    third = refresh(client, oauth_client, second["refresh_token"]).get_json()

    revoke(client, oauth_client, second["refresh_token"], token_type_hint="")

    for generation in (first, second, third):
        response = client.get(ME_URL, headers=bearer(generation["access_token"]))
        assert response.status_code == 401


def test_revoke_earlier_refresh_token_revokes_latest_refresh_token(
    client, oauth_client, get_token
):
    """RFC 7009 section 2.1: revoking a refresh token may revoke the grant."""
    first = get_token()
    second = refresh(client, oauth_client, first["refresh_token"]).get_json()

    revoke(client, oauth_client, first["refresh_token"])

    response = refresh(client, oauth_client, second["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_revoke_latest_refresh_token_revokes_first_access_token(
    client, oauth_client, get_token
):
    """RFC 7009 section 2.1: revoking a refresh token may revoke the grant."""
    first = get_token()
    second = refresh(client, oauth_client, first["refresh_token"]).get_json()

    revoke(client, oauth_client, second["refresh_token"])

    assert client.get(ME_URL, headers=bearer(first["access_token"])).status_code == 401


def test_revoke_refresh_token_spares_other_grants(client, oauth_client, get_token):
    """RFC 7009 section 2.1: revocation reaches one grant, not the user's others."""
    first = get_token()
    other = get_token()

    revoke(client, oauth_client, first["refresh_token"])

    assert client.get(ME_URL, headers=bearer(other["access_token"])).status_code == 200


def test_revoke_access_token_keeps_its_refresh_token(client, oauth_client, get_token):
    """RFC 7009 section 2.1: revoking an access token leaves the refresh token."""
    tokens = get_token()

    revoke(client, oauth_client, tokens["access_token"])

    response = refresh(client, oauth_client, tokens["refresh_token"])
    assert response.status_code == 200
    assert (
        client.get(
            ME_URL, headers=bearer(response.get_json()["access_token"])
        ).status_code
        == 200
    )


def test_revoke_access_token_spares_other_generations(client, oauth_client, get_token):
    """RFC 7009 section 2.1: revoking an access token revokes that token only."""
    first = get_token()
    second = refresh(client, oauth_client, first["refresh_token"]).get_json()

    revoke(client, oauth_client, first["access_token"])

    assert client.get(ME_URL, headers=bearer(second["access_token"])).status_code == 200


def test_revoke_by_public_client_revokes_its_token(client, make_client, user):
    """RFC 7009 section 2.1: a public client identifies itself by client_id."""
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
        REVOKE_URL,
        data={"token": issued["access_token"], "client_id": public.client_id},
    )

    assert response.status_code == 200
    assert client.get(ME_URL, headers=bearer(issued["access_token"])).status_code == 401


def test_revoke_accepts_client_secret_post(client, oauth_client, get_token):
    token = get_token()["access_token"]

    response = client.post(
        REVOKE_URL,
        data={
            "token": token,
            "client_id": oauth_client.client_id,
            "client_secret": oauth_client.client_secret,
        },
    )

    assert response.status_code == 200
    assert client.get(ME_URL, headers=bearer(token)).status_code == 401
