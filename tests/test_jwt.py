"""JWT access tokens, RFC 9068, and the keys that sign them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from joserfc import jws
from joserfc import jwt
from joserfc.jwk import KeySet

from authserver.security import now

ISSUER = "http://127.0.0.1:5000"
JWKS_URL = "/oauth/jwks"
ME_URL = "/api/me"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def _delete_signing_keys(database_url: str) -> None:
    # The shared PostgreSQL database keeps its rows between tests except
    # for the tables that conftest truncates, and signing keys are not
    # among them.
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM signing_keys"))
    finally:
        engine.dispose()


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    config["AUTHSERVER_ACCESS_TOKEN_FORMAT"] = "jwt"
    _delete_signing_keys(config["AUTHSERVER_DATABASE_URL"])
    return config


def get_header(token: str) -> dict[str, Any]:
    header: dict[str, Any] = jws.extract_compact(token.encode()).protected
    return header


def get_claims(client: Any, token: str) -> dict[str, Any]:
    """Verify ``token`` with the published keys and return its claims."""
    keys = KeySet.import_key_set(client.get(JWKS_URL).get_json())
    claims: dict[str, Any] = jwt.decode(token, keys).claims
    return claims


def rotate(runner: Any) -> None:
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output


def get_kids(client: Any) -> list[str]:
    return [key["kid"] for key in client.get(JWKS_URL).get_json()["keys"]]


# The token: RFC 9068 section 2.


def test_jwt_header_type_is_at_jwt(get_token):
    """RFC 9068 section 2.1: the header typ is at+jwt."""
    token = get_token()["access_token"]

    assert get_header(token)["typ"] == "at+jwt"


def test_jwt_header_has_published_kid(client, get_token):
    """RFC 9068 section 2.1: the kid names a key in the JWKS document."""
    token = get_token()["access_token"]

    assert get_header(token)["kid"] in get_kids(client)


def test_jwt_default_algorithm_is_rs256(get_token):
    """RFC 9068 section 2.1: RS256 must be supported."""
    token = get_token()["access_token"]

    assert get_header(token)["alg"] == "RS256"


def test_jwt_signature_verifies_with_jwks(client, get_token):
    token = get_token()["access_token"]

    claims = get_claims(client, token)

    assert claims["iss"] == ISSUER


def test_jwt_claims_are_complete(client, oauth_client, user, get_token):
    """RFC 9068 section 2.2: the token carries every required claim."""
    before = now()
    token = get_token(scope="profile")["access_token"]
    me = client.get(ME_URL, headers={"Authorization": f"Bearer {token}"}).get_json()

    claims = get_claims(client, token)

    assert claims["iss"] == ISSUER
    assert claims["sub"] == me["sub"]
    assert claims["aud"] == ISSUER
    assert claims["client_id"] == oauth_client.client_id
    assert claims["scope"] == "profile"
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 32
    assert before <= claims["iat"] <= now()
    assert claims["exp"] == claims["iat"] + 3600


def test_jwt_each_token_has_its_own_jti(client, get_token):
    """RFC 9068 section 2.2: jti identifies one token."""
    first = get_claims(client, get_token()["access_token"])
    second = get_claims(client, get_token()["access_token"])

    assert first["jti"] != second["jti"]


def test_jwt_audience_is_configurable(config):
    from authserver import create_app

    config["AUTHSERVER_ACCESS_TOKEN_AUDIENCE"] = "https://api.example.test"
    app = create_app(config)
    try:
        with app.app_context():
            from authserver.jwt_tokens import get_audience

            audience = get_audience()
    finally:
        app.extensions["authserver.engine"].dispose()

    assert audience == "https://api.example.test"


def test_jwt_client_credentials_sub_is_client_id(client, make_client):
    """RFC 9068 section 2.2: without a user, sub names the client."""
    service = make_client(grant_types=("client_credentials",))
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=service.basic
    ).get_json()["access_token"]

    claims = get_claims(client, token)

    assert claims["sub"] == service.client_id


def test_jwt_refresh_issues_jwt(client, oauth_client, get_token):
    refresh_token = get_token()["refresh_token"]
    response = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=oauth_client.basic,
    )

    token = response.get_json()["access_token"]

    assert get_header(token)["typ"] == "at+jwt"


# ES256.


@pytest.fixture
def es256_config(config: dict[str, Any]) -> dict[str, Any]:
    config["AUTHSERVER_JWT_ALGORITHM"] = "ES256"
    return config


def test_jwt_es256_header_algorithm(es256_config, get_token):
    token = get_token()["access_token"]

    assert get_header(token)["alg"] == "ES256"


def test_jwt_es256_signature_verifies_with_jwks(es256_config, client, get_token):
    token = get_token()["access_token"]

    claims = get_claims(client, token)

    assert claims["iss"] == ISSUER


def test_jwt_es256_key_is_p256(es256_config, client, get_token):
    get_token()

    key = client.get(JWKS_URL).get_json()["keys"][0]

    assert key["kty"] == "EC"
    assert key["crv"] == "P-256"
    assert key["alg"] == "ES256"


# The JWKS document and the keys commands.


def test_jwt_jwks_has_no_private_members(client, get_token):
    """RFC 7517 section 9.2: a published key must not reveal private parts."""
    get_token()

    keys = client.get(JWKS_URL).get_json()["keys"]

    assert keys
    for key in keys:
        assert PRIVATE_MEMBERS.isdisjoint(key)


def test_jwt_jwks_keys_are_for_signing(client, get_token):
    get_token()

    key = client.get(JWKS_URL).get_json()["keys"][0]

    assert key["use"] == "sig"
    assert key["kty"] == "RSA"


def test_jwt_keys_rotate_signs_with_new_key(client, runner, get_token):
    old_kid = get_header(get_token()["access_token"])["kid"]

    rotate(runner)

    new_kid = get_header(get_token()["access_token"])["kid"]
    assert new_kid != old_kid
    assert new_kid in get_kids(client)


def test_jwt_keys_rotate_keeps_old_key_published(client, runner, get_token):
    """RFC 7517 section 5: tokens signed before a rotation still verify."""
    old_token = get_token()["access_token"]

    rotate(runner)

    assert get_header(old_token)["kid"] in get_kids(client)
    assert get_claims(client, old_token)["iss"] == ISSUER


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A frozen clock for the signing keys; set ``clock[0]`` to move it."""
    moment = [now()]
    monkeypatch.setattr("authserver.jwt_tokens.now", lambda: moment[0])
    return moment


def test_jwt_keys_rotate_keeps_old_key_until_last_token_expires(
    clock, client, runner, get_token
):
    old_kid = get_header(get_token()["access_token"])["kid"]
    rotate(runner)
    clock[0] += 3600 - 1

    assert old_kid in get_kids(client)


def test_jwt_keys_rotate_drops_old_key_after_last_token_expired(
    clock, client, runner, get_token
):
    old_kid = get_header(get_token()["access_token"])["kid"]
    rotate(runner)
    clock[0] += 3600

    kids = get_kids(client)

    assert old_kid not in kids
    assert len(kids) == 1


def test_jwt_keys_rotate_honours_short_lifetime(config, clock):
    from authserver import create_app

    config["AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS"] = 5
    app = create_app(config)
    try:
        runner = app.test_cli_runner()
        rotate(runner)
        old_kids = get_kids(app.test_client())
        rotate(runner)
        clock[0] += 5
        kids = get_kids(app.test_client())
    finally:
        app.extensions["authserver.engine"].dispose()

    assert len(old_kids) == 1
    assert old_kids[0] not in kids
    assert len(kids) == 1


def test_jwt_keys_list_shows_no_private_parts(runner, get_token):
    get_token()
    rotate(runner)

    result = runner.invoke(args=["keys", "list", "--json"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    for line in lines:
        public_jwk = json.loads(line)["public_jwk"]
        assert PRIVATE_MEMBERS.isdisjoint(public_jwk)
    assert "PRIVATE KEY" not in result.output


def test_jwt_keys_list_table_shows_no_pem(runner, get_token):
    get_token()

    result = runner.invoke(args=["keys", "list"])

    assert result.exit_code == 0, result.output
    assert "current" in result.output
    assert "-----BEGIN" not in result.output


def test_jwt_private_key_is_stored_encrypted(config, get_token):
    get_token()
    engine = sa.create_engine(config["AUTHSERVER_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            stored = (
                connection.execute(
                    sa.text("SELECT encrypted_private_key FROM signing_keys")
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()

    assert len(stored) == 1
    assert b"-----BEGIN" not in bytes(stored[0])
    assert b"PRIVATE KEY" not in bytes(stored[0])


# Revocation and introspection.


def test_jwt_revoked_token_is_rejected_at_once(client, oauth_client, get_token):
    """RFC 7009 section 2.1: a revoked token is invalid at once."""
    token = get_token()["access_token"]
    client.post("/oauth/revoke", data={"token": token}, headers=oauth_client.basic)

    response = client.get(ME_URL, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_jwt_revoked_token_is_inactive(client, oauth_client, get_token):
    """RFC 7662 section 2.2: a revoked token is answered with only inactive."""
    token = get_token()["access_token"]
    client.post("/oauth/revoke", data={"token": token}, headers=oauth_client.basic)

    response = client.post(
        "/oauth/introspect", data={"token": token}, headers=oauth_client.basic
    )

    assert response.get_json() == {"active": False}


def test_jwt_introspection_adds_jti_and_aud(client, oauth_client, get_token):
    """RFC 7662 section 2.2: the answer names the JWT's jti and aud."""
    token = get_token()["access_token"]
    claims = get_claims(client, token)

    body = client.post(
        "/oauth/introspect", data={"token": token}, headers=oauth_client.basic
    ).get_json()

    assert body["active"] is True
    assert body["jti"] == claims["jti"]
    assert body["aud"] == claims["aud"]
    assert body["exp"] == claims["exp"]
    assert body["iat"] == claims["iat"]
    assert body["sub"] == claims["sub"]
