"""Authorization server metadata, RFC 8414, and what the server accepts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import PASSWORD

METADATA_URL = "/.well-known/oauth-authorization-server"
ISSUER = "https://auth.example.test"
TOKEN_URL = "/oauth/token"
REVOKE_URL = "/oauth/revoke"
INTROSPECT_URL = "/oauth/introspect"


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    config["AUTHSERVER_ISSUER"] = ISSUER
    return config


def get_document(client: Any) -> dict[str, Any]:
    response = client.get(METADATA_URL)
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def path_of(url: str) -> str:
    """Return the path of an endpoint URL of this issuer."""
    assert url.startswith(ISSUER + "/")
    return url[len(ISSUER) :]


# Section 2: the members of the document.


@pytest.mark.parametrize(
    "member",
    [
        "issuer",
        "token_endpoint",
        "response_types_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
        "revocation_endpoint",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint",
        "introspection_endpoint_auth_methods_supported",
    ],
)
def test_metadata_has_member(client, member):
    """RFC 8414 section 2: the document lists the server's capabilities."""
    assert member in get_document(client)


def test_metadata_issuer_is_configured_issuer(client):
    """RFC 8414 section 3.3: issuer must equal the configured issuer."""
    assert get_document(client)["issuer"] == ISSUER


def test_metadata_is_json(client):
    response = client.get(METADATA_URL)

    assert response.mimetype == "application/json"


def test_metadata_endpoints_are_under_issuer(client):
    document = get_document(client)

    assert document["token_endpoint"] == ISSUER + "/oauth/token"
    assert document["revocation_endpoint"] == ISSUER + "/oauth/revoke"
    assert document["introspection_endpoint"] == ISSUER + "/oauth/introspect"


def test_metadata_lists_grant_types(client):
    document = get_document(client)

    assert sorted(document["grant_types_supported"]) == [
        "client_credentials",
        "password",
        "refresh_token",
    ]


def test_metadata_lists_token_endpoint_auth_methods(client):
    document = get_document(client)

    assert sorted(document["token_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]


def test_metadata_introspection_excludes_public_clients(client):
    """RFC 7662 section 2.1: introspection needs an authenticated client."""
    document = get_document(client)

    assert sorted(document["introspection_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
    ]


def test_metadata_response_types_is_empty(client):
    """RFC 8414 section 2: no authorization endpoint, so no response type."""
    document = get_document(client)

    assert document["response_types_supported"] == []
    assert "authorization_endpoint" not in document


def test_metadata_scopes_are_the_registry(client):
    document = get_document(client)

    assert document["scopes_supported"] == ["profile", "email", "admin"]


def test_metadata_without_jwt_has_no_jwks_uri(client):
    assert "jwks_uri" not in get_document(client)


def test_metadata_with_jwt_has_jwks_uri(config):
    from authserver import create_app

    config["AUTHSERVER_ACCESS_TOKEN_FORMAT"] = "jwt"
    app = create_app(config)
    try:
        document = get_document(app.test_client())
    finally:
        app.extensions["authserver.engine"].dispose()

    assert document["jwks_uri"] == ISSUER + "/oauth/jwks"


def test_metadata_jwks_uri_serves_keys(config):
    from authserver import create_app

    config["AUTHSERVER_ACCESS_TOKEN_FORMAT"] = "jwt"
    app = create_app(config)
    try:
        test_client = app.test_client()
        jwks_uri = get_document(test_client)["jwks_uri"]
        response = test_client.get(path_of(jwks_uri))
    finally:
        app.extensions["authserver.engine"].dispose()

    assert response.status_code == 200
    assert "keys" in response.get_json()


# The document advertises exactly what the server accepts.


def _password_grant(client: Any, make_client: Any, user: str) -> Any:
    registered = make_client()
    return client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": user, "password": PASSWORD},
        headers=registered.basic,
    )


def _refresh_grant(client: Any, make_client: Any, user: str) -> Any:
    registered = make_client()
    issued = client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": user, "password": PASSWORD},
        headers=registered.basic,
    ).get_json()
    return client.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        headers=registered.basic,
    )


def _client_credentials_grant(client: Any, make_client: Any, user: str) -> Any:
    registered = make_client(grant_types=("client_credentials",))
    return client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers=registered.basic
    )


GRANT_REQUESTS: dict[str, Callable[[Any, Any, str], Any]] = {
    "password": _password_grant,
    "refresh_token": _refresh_grant,
    "client_credentials": _client_credentials_grant,
}


def _authenticate(method: str, make_client: Any) -> tuple[dict[str, str], dict]:
    """Register a client for ``method``; return its headers and form."""
    if method == "none":
        public = make_client("--public")
        return {}, {"client_id": public.client_id}
    registered = make_client("--auth-method", method)
    if method == "client_secret_basic":
        return registered.basic, {}
    form = {
        "client_id": registered.client_id,
        "client_secret": registered.client_secret,
    }
    return {}, form


def test_metadata_grant_types_all_have_a_request(client):
    document = get_document(client)

    assert set(document["grant_types_supported"]) == set(GRANT_REQUESTS)


@pytest.mark.parametrize("grant_type", sorted(GRANT_REQUESTS))
def test_metadata_advertised_grant_type_works(client, make_client, user, grant_type):
    """RFC 8414 section 2: every advertised grant type is served."""
    assert grant_type in get_document(client)["grant_types_supported"]

    response = GRANT_REQUESTS[grant_type](client, make_client, user)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["access_token"]


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "none"]
)
def test_metadata_advertised_token_auth_method_works(client, make_client, user, method):
    """RFC 8414 section 2: every advertised token endpoint auth method works."""
    assert method in get_document(client)["token_endpoint_auth_methods_supported"]
    headers, form = _authenticate(method, make_client)

    response = client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            **form,
        },
        headers=headers,
    )

    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "none"]
)
def test_metadata_advertised_revocation_auth_method_works(
    client, make_client, user, method
):
    """RFC 8414 section 2: every advertised revocation auth method works."""
    document = get_document(client)
    assert method in document["revocation_endpoint_auth_methods_supported"]
    headers, form = _authenticate(method, make_client)
    issued = client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            **form,
        },
        headers=headers,
    ).get_json()

    response = client.post(
        path_of(document["revocation_endpoint"]),
        data={"token": issued["access_token"], **form},
        headers=headers,
    )

    assert response.status_code == 200
    me = client.get(
        "/api/me", headers={"Authorization": f"Bearer {issued['access_token']}"}
    )
    assert me.status_code == 401


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_metadata_advertised_introspection_auth_method_works(
    client, make_client, user, method
):
    """RFC 8414 section 2: every advertised introspection auth method works."""
    document = get_document(client)
    assert method in document["introspection_endpoint_auth_methods_supported"]
    headers, form = _authenticate(method, make_client)
    issued = client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            **form,
        },
        headers=headers,
    ).get_json()

    response = client.post(
        path_of(document["introspection_endpoint"]),
        data={"token": issued["access_token"], **form},
        headers=headers,
    )

    assert response.status_code == 200
    assert response.get_json()["active"] is True


@pytest.mark.parametrize(
    "grant_type",
    [
        "authorization_code",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ],
)
def test_metadata_unlisted_grant_type_is_unsupported(client, oauth_client, grant_type):
    """RFC 6749 section 5.2: a grant type the server lacks is rejected."""
    assert grant_type not in get_document(client)["grant_types_supported"]

    response = client.post(
        TOKEN_URL,
        data={
            "grant_type": grant_type,
            "code": "abc",
            "assertion": "a.b.c",
            "redirect_uri": "https://client.example.test/cb",
        },
        headers=oauth_client.basic,
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("method", ["private_key_jwt", "client_secret_jwt"])
def test_metadata_unlisted_auth_method_is_rejected(client, oauth_client, user, method):
    """RFC 7523 section 2.2: a client assertion the server lacks is rejected."""
    assert method not in get_document(client)["token_endpoint_auth_methods_supported"]

    response = client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": user,
            "password": PASSWORD,
            "client_id": oauth_client.client_id,
            "client_assertion_type": (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ),
            "client_assertion": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
        },
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_metadata_without_authorization_endpoint_has_none(client):
    """RFC 8414 section 2: no response type is listed, and none is served."""
    response = client.get("/oauth/authorize?response_type=code&client_id=x")

    assert response.status_code == 404


def test_metadata_unlisted_auth_method_at_introspection_is_rejected(
    client, make_client, get_token
):
    """RFC 7662 section 2.1: a public client cannot introspect."""
    assert (
        "none"
        not in get_document(client)["introspection_endpoint_auth_methods_supported"]
    )
    public = make_client("--public")

    response = client.post(
        INTROSPECT_URL,
        data={"token": get_token()["access_token"], "client_id": public.client_id},
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
