"""The token endpoint: RFC 6749 section 5.1 responses and section 5.2 errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from authserver import create_app
from tests.conftest import PASSWORD

TOKEN_URL = "/oauth/token"


def basic_header(client_id: str, client_secret: str) -> dict[str, str]:
    """Return an HTTP Basic header built from the raw id and secret."""
    raw = f"{client_id}:{client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def percent_encode_all(value: str) -> str:
    """Return ``value`` with every byte percent-encoded, letters included."""
    return "".join(f"%{byte:02X}" for byte in value.encode("utf-8"))


def password_form(username: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "password",
        "username": username,
        "password": PASSWORD,
        **extra,
    }


# Section 5.1: a successful response.


def test_token_success_body_has_every_field(client, oauth_client, user):
    response = client.post(
        TOKEN_URL, data=password_form(user), headers=oauth_client.basic
    )

    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    assert body["scope"] == "profile email"


def test_token_success_is_json(client, oauth_client, user):
    response = client.post(
        TOKEN_URL, data=password_form(user), headers=oauth_client.basic
    )

    assert response.mimetype == "application/json"


def test_token_success_forbids_caching(client, oauth_client, user):
    """RFC 6749 section 5.1: token responses carry no-store and no-cache."""
    response = client.post(
        TOKEN_URL, data=password_form(user), headers=oauth_client.basic
    )

    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_token_access_and_refresh_tokens_differ(get_token):
    body = get_token()

    assert body["access_token"] != body["refresh_token"]


def test_token_each_grant_issues_new_tokens(get_token):
    first = get_token()
    second = get_token()

    assert first["access_token"] != second["access_token"]
    assert first["refresh_token"] != second["refresh_token"]


def test_token_without_refresh_grant_has_no_refresh_token(client, make_client, user):
    password_only = make_client(grant_types=("password",))

    response = client.post(
        TOKEN_URL, data=password_form(user), headers=password_only.basic
    )

    assert response.status_code == 200
    assert "refresh_token" not in response.get_json()


def test_token_lifetime_setting_sets_expires_in(
    monkeypatch, config, oauth_client, user
):
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS", "120")
    app = create_app(config)

    try:
        response = app.test_client().post(
            TOKEN_URL, data=password_form(user), headers=oauth_client.basic
        )
    finally:
        app.extensions["authserver.engine"].dispose()

    assert response.get_json()["expires_in"] == 120


# Refresh, RFC 6749 section 6, with rotation.


def refresh(client, oauth_client, refresh_token: str, **extra: str):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return client.post(TOKEN_URL, data=form, headers=oauth_client.basic)


def test_refresh_issues_new_pair(client, oauth_client, get_token):
    first = get_token()

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"] != first["access_token"]
    assert body["refresh_token"] != first["refresh_token"]


def test_refresh_keeps_scope(client, oauth_client, get_token):
    first = get_token(scope="profile")

    response = refresh(client, oauth_client, first["refresh_token"])

    assert response.get_json()["scope"] == "profile"


def test_refresh_forbids_caching(client, oauth_client, get_token):
    """RFC 6749 section 5.1: token responses carry no-store and no-cache."""
    response = refresh(client, oauth_client, get_token()["refresh_token"])

    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_refresh_presented_token_stops_working(client, oauth_client, get_token):
    """RFC 9700 section 4.14.2: a rotated refresh token is invalidated."""
    old = get_token()["refresh_token"]
    assert refresh(client, oauth_client, old).status_code == 200

    response = refresh(client, oauth_client, old)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_new_token_works(client, oauth_client, get_token):
    first = refresh(client, oauth_client, get_token()["refresh_token"])

    response = refresh(client, oauth_client, first.get_json()["refresh_token"])

    assert response.status_code == 200


def test_refresh_unknown_token_is_invalid_grant(client, oauth_client, get_token):
    """RFC 6749 section 5.2: an invalid refresh token is invalid_grant."""
    get_token()

    response = refresh(client, oauth_client, "not-a-refresh-token")

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_token_of_other_client_is_invalid_grant(client, make_client, get_token):
    """RFC 6749 section 5.2: a refresh token issued to another client fails."""
    other = make_client()

    response = refresh(client, other, get_token()["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_wider_scope_is_invalid_scope(client, oauth_client, get_token):
    """RFC 6749 section 6: a refresh may not exceed the original scope."""
    first = get_token(scope="profile")

    response = refresh(client, oauth_client, first["refresh_token"], scope="email")

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


# Section 5.2: errors of the request itself.


@pytest.mark.parametrize("missing", ["grant_type", "username", "password"])
def test_token_missing_parameter_is_invalid_request(
    client, oauth_client, user, missing
):
    """RFC 6749 section 5.2: a missing required parameter is invalid_request."""
    form = password_form(user)
    del form[missing]

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_refresh_missing_token_is_invalid_request(client, oauth_client):
    """RFC 6749 section 5.2: a missing required parameter is invalid_request."""
    form = {"grant_type": "refresh_token"}

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_token_repeated_parameter_is_invalid_request(client, oauth_client, user):
    """RFC 6749 section 5.2: a repeated parameter is invalid_request."""
    form = [
        ("grant_type", "password"),
        ("username", user),
        ("username", user),
        ("password", PASSWORD),
    ]
    body = "&".join(f"{key}={value}" for key, value in form)

    response = client.post(
        TOKEN_URL,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers=oauth_client.basic,
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_token_two_auth_methods_is_invalid_request(client, oauth_client, user):
    """RFC 6749 section 5.2: more than one authentication method is rejected."""
    form = password_form(
        user,
        client_id=oauth_client.client_id,
        client_secret=oauth_client.client_secret,
    )

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_token_json_body_is_invalid_request(client, oauth_client, user):
    """RFC 6749 section 3.2: parameters are sent form-encoded."""
    response = client.post(
        TOKEN_URL,
        data=json.dumps(password_form(user)),
        content_type="application/json",
        headers=oauth_client.basic,
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_token_parameters_in_query_are_ignored(client, oauth_client, user):
    """RFC 6749 section 3.2: credentials in the URL are not accepted."""
    response = client.post(
        TOKEN_URL,
        query_string={"username": user, "password": PASSWORD},
        data={"grant_type": "password"},
        headers=oauth_client.basic,
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("grant_type", ["magic", "authorization_code", "implicit"])
def test_token_unknown_grant_type_is_unsupported(
    client, oauth_client, user, grant_type
):
    """RFC 6749 section 5.2: an unknown grant type is unsupported_grant_type."""
    form = password_form(user, grant_type=grant_type)

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_token_error_forbids_caching(client, oauth_client, user):
    form = password_form(user, password="wrong password")

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


# Section 5.2: invalid_grant for bad resource owner credentials.


def test_token_wrong_password_is_invalid_grant(client, oauth_client, user):
    """RFC 6749 section 5.2: invalid resource owner credentials are invalid_grant."""
    form = password_form(user, password="wrong password")

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_token_unknown_user_is_invalid_grant(client, oauth_client, user):
    """RFC 6749 section 5.2: invalid resource owner credentials are invalid_grant."""
    response = client.post(
        TOKEN_URL, data=password_form("mallory"), headers=oauth_client.basic
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def get_stable_headers(headers: Any) -> list[tuple[str, str]]:
    """Return the headers that do not change from one response to the next."""
    varying = ("date", "x-request-id")
    return sorted((k, v) for k, v in headers.items() if k.lower() not in varying)


def test_token_unknown_user_matches_wrong_password(client, oauth_client, user):
    """RFC 6749 section 10.10: the response does not reveal which users exist."""
    wrong = client.post(
        TOKEN_URL,
        data=password_form(user, password="wrong password"),
        headers=oauth_client.basic,
    )
    unknown = client.post(
        TOKEN_URL, data=password_form("mallory"), headers=oauth_client.basic
    )

    assert unknown.status_code == wrong.status_code
    assert get_stable_headers(unknown.headers) == get_stable_headers(wrong.headers)
    assert unknown.get_data() == wrong.get_data()


def test_token_disabled_user_is_invalid_grant(client, oauth_client, user, runner):
    result = runner.invoke(args=["users", "disable", user])
    assert result.exit_code == 0, result.output

    response = client.post(
        TOKEN_URL, data=password_form(user), headers=oauth_client.basic
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


# Section 5.2: invalid_client for failed client authentication.


def wrong_secret(registered) -> dict[str, str]:
    return basic_header(registered.client_id, "wrong-secret")


def unknown_client(registered) -> dict[str, str]:
    return basic_header("no-such-client", registered.client_secret)


def empty_secret(registered) -> dict[str, str]:
    return basic_header(registered.client_id, "")


def no_colon(registered) -> dict[str, str]:
    encoded = base64.b64encode(registered.client_id.encode()).decode()
    return {"Authorization": "Basic " + encoded}


def not_base64(registered) -> dict[str, str]:
    return {"Authorization": "Basic !!not*base64!!"}


def not_utf8(registered) -> dict[str, str]:
    raw = b"\xff\xfe" + registered.client_id.encode() + b":\xc3\x28"
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def other_scheme(registered) -> dict[str, str]:
    return {"Authorization": "Digest username=" + registered.client_id}


BAD_BASIC_HEADERS = [
    wrong_secret,
    unknown_client,
    empty_secret,
    no_colon,
    not_base64,
    not_utf8,
    other_scheme,
]


@pytest.mark.parametrize("make_header", BAD_BASIC_HEADERS)
def test_token_bad_basic_auth_is_invalid_client(
    client, oauth_client, user, make_header
):
    """RFC 6749 section 5.2: failed Basic authentication is 401 invalid_client."""
    response = client.post(
        TOKEN_URL, data=password_form(user), headers=make_header(oauth_client)
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("make_header", BAD_BASIC_HEADERS)
def test_token_bad_basic_auth_challenges_basic(client, oauth_client, user, make_header):
    """RFC 6749 section 5.2: a 401 carries a WWW-Authenticate Basic challenge."""
    response = client.post(
        TOKEN_URL, data=password_form(user), headers=make_header(oauth_client)
    )

    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_token_unknown_client_matches_wrong_secret(client, oauth_client, user):
    """RFC 6749 section 5.2: one response for an unknown client and a bad secret."""
    wrong = client.post(
        TOKEN_URL, data=password_form(user), headers=wrong_secret(oauth_client)
    )
    unknown = client.post(
        TOKEN_URL, data=password_form(user), headers=unknown_client(oauth_client)
    )

    assert get_stable_headers(unknown.headers) == get_stable_headers(wrong.headers)
    assert unknown.get_data() == wrong.get_data()


def test_token_no_client_authentication_is_invalid_client(client, oauth_client, user):
    """RFC 6749 section 5.2: a request without client authentication fails."""
    response = client.post(TOKEN_URL, data=password_form(user))

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_token_disabled_client_is_invalid_client(client, oauth_client, user, runner):
    result = runner.invoke(args=["clients", "disable", oauth_client.client_id])
    assert result.exit_code == 0, result.output

    response = client.post(
        TOKEN_URL, data=password_form(user), headers=oauth_client.basic
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_token_basic_client_id_is_form_url_decoded(client, oauth_client, user):
    """RFC 6749 section 2.3.1: Basic credentials are form-url-encoded."""
    header = basic_header(
        percent_encode_all(oauth_client.client_id), oauth_client.client_secret
    )

    response = client.post(TOKEN_URL, data=password_form(user), headers=header)

    assert response.status_code == 200


def test_token_basic_client_secret_is_form_url_decoded(client, oauth_client, user):
    """RFC 6749 section 2.3.1: Basic credentials are form-url-encoded."""
    header = basic_header(
        oauth_client.client_id, percent_encode_all(oauth_client.client_secret)
    )

    response = client.post(TOKEN_URL, data=password_form(user), headers=header)

    assert response.status_code == 200


# Client authentication methods, RFC 6749 section 2.3 and RFC 7591 section 2.


def test_token_client_secret_post_succeeds(client, oauth_client, user):
    form = password_form(
        user,
        client_id=oauth_client.client_id,
        client_secret=oauth_client.client_secret,
    )

    response = client.post(TOKEN_URL, data=form)

    assert response.status_code == 200
    assert response.get_json()["token_type"] == "Bearer"


def test_token_client_secret_post_wrong_secret_is_invalid_client(
    client, oauth_client, user
):
    """RFC 6749 section 5.2: failed client authentication is invalid_client."""
    form = password_form(
        user, client_id=oauth_client.client_id, client_secret="wrong-secret"
    )

    response = client.post(TOKEN_URL, data=form)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_token_post_only_client_refused_over_basic(client, make_client, user):
    """RFC 7591 section 2: a client uses only its registered auth method."""
    post_only = make_client("--auth-method", "client_secret_post")

    response = client.post(TOKEN_URL, data=password_form(user), headers=post_only.basic)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_token_post_only_client_accepted_over_post(client, make_client, user):
    post_only = make_client("--auth-method", "client_secret_post")
    form = password_form(
        user, client_id=post_only.client_id, client_secret=post_only.client_secret
    )

    response = client.post(TOKEN_URL, data=form)

    assert response.status_code == 200


def test_token_basic_only_client_refused_over_post(client, make_client, user):
    """RFC 7591 section 2: a client uses only its registered auth method."""
    basic_only = make_client("--auth-method", "client_secret_basic")
    form = password_form(
        user, client_id=basic_only.client_id, client_secret=basic_only.client_secret
    )

    response = client.post(TOKEN_URL, data=form)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_token_basic_only_client_accepted_over_basic(client, make_client, user):
    basic_only = make_client("--auth-method", "client_secret_basic")

    response = client.post(
        TOKEN_URL, data=password_form(user), headers=basic_only.basic
    )

    assert response.status_code == 200


def test_token_public_client_authenticates_with_none(client, make_client, user):
    public = make_client("--public")
    form = password_form(user, client_id=public.client_id)

    response = client.post(TOKEN_URL, data=form)

    assert response.status_code == 200
    assert response.get_json()["token_type"] == "Bearer"


def test_token_public_client_refreshes_with_none(client, make_client, user):
    public = make_client("--public")
    first = client.post(
        TOKEN_URL, data=password_form(user, client_id=public.client_id)
    ).get_json()
    form = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": public.client_id,
    }

    response = client.post(TOKEN_URL, data=form)

    assert response.status_code == 200


def test_token_confidential_client_refused_without_secret(client, oauth_client, user):
    """RFC 6749 section 2.3: a confidential client must authenticate."""
    form = password_form(user, client_id=oauth_client.client_id)

    response = client.post(TOKEN_URL, data=form)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


# Section 5.2: unauthorized_client.


def test_token_grant_not_allowed_is_unauthorized_client(client, make_client, user):
    """RFC 6749 section 5.2: a grant the client may not use is unauthorized_client."""
    refresh_only = make_client(grant_types=("refresh_token",))

    response = client.post(
        TOKEN_URL, data=password_form(user), headers=refresh_only.basic
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


def test_token_grant_checked_before_password(client, make_client, user):
    """RFC 6749 section 5.2: the client's grant is checked before the password."""
    refresh_only = make_client(grant_types=("refresh_token",))
    form = password_form(user, password="wrong password")

    response = client.post(TOKEN_URL, data=form, headers=refresh_only.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


def test_refresh_grant_not_allowed_is_unauthorized_client(
    client, make_client, get_token
):
    """RFC 6749 section 5.2: a grant the client may not use is unauthorized_client."""
    password_only = make_client(grant_types=("password",))

    response = refresh(client, password_only, get_token()["refresh_token"])

    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


# Scope, RFC 6749 section 3.3.


def test_token_without_scope_gets_client_scope(client, oauth_client, user):
    response = client.post(
        TOKEN_URL, data=password_form(user), headers=oauth_client.basic
    )

    assert response.get_json()["scope"] == "profile email"


def test_token_without_scope_gets_default_scope(client, make_client, user):
    narrow_default = make_client("--default-scope", "profile")

    response = client.post(
        TOKEN_URL, data=password_form(user), headers=narrow_default.basic
    )

    assert response.get_json()["scope"] == "profile"


def test_token_requested_scope_is_granted(client, oauth_client, user):
    form = password_form(user, scope="email")

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.status_code == 200
    assert response.get_json()["scope"] == "email"


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("unknown", id="unknown"),
        pytest.param("profile unknown", id="one-unknown"),
        pytest.param("admin", id="not-allowed"),
        pytest.param("profile admin", id="one-not-allowed"),
    ],
)
def test_token_bad_scope_is_invalid_scope(client, oauth_client, user, scope):
    """RFC 6749 section 5.2: an unknown or disallowed scope is invalid_scope."""
    form = password_form(user, scope=scope)

    response = client.post(TOKEN_URL, data=form, headers=oauth_client.basic)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"
