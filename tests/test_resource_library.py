"""The resource-server library ``authserver.resource`` against a live server.

A small Flask app in this process plays the sibling service; the tokens
come from a real authserver in a subprocess.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from authlib.integrations.flask_oauth2 import current_token
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

from authserver import create_app
from authserver.resource import IntrospectionValidator
from authserver.resource import JWTValidator
from authserver.resource import ResourceProtector
from tests.conftest import RegisteredClient
from tests.live import free_port
from tests.live_oauth import LiveAuthserver
from tests.live_oauth import start_authserver

TIMEOUT_SECONDS = 10


class CountingSession(requests.Session):
    """A requests session that counts the calls it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls += 1
        return super().request(*args, **kwargs)


def create_resource_app(validator: Any) -> Flask:
    """Return a Flask app whose endpoints need ``profile`` and ``admin``."""
    app = Flask("resource")
    require_oauth = ResourceProtector(validator)

    @app.get("/profile")
    @require_oauth("profile")
    def profile() -> dict[str, Any]:
        return {"sub": current_token.subject, "scope": current_token.scope}

    @app.get("/admin")
    @require_oauth("admin")
    def admin() -> dict[str, Any]:
        return {"sub": current_token.subject}

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def password_grant(server: LiveAuthserver, registered: RegisteredClient) -> Any:
    response = requests.post(
        server.token_url,
        data={
            "grant_type": "password",
            "username": server.username,
            "password": server.password,
        },
        auth=(registered.client_id, registered.client_secret),
        timeout=TIMEOUT_SECONDS,
    )
    assert response.status_code == 200, response.text
    return response.json()


def revoke(server: LiveAuthserver, registered: RegisteredClient, token: str) -> None:
    response = requests.post(
        server.revocation_url,
        data={"token": token},
        auth=(registered.client_id, registered.client_secret),
        timeout=TIMEOUT_SECONDS,
    )
    assert response.status_code == 200


# The introspection validator.


@pytest.fixture(scope="module")
def server(sqlite_template, tmp_path_factory) -> Iterator[LiveAuthserver]:
    directory = tmp_path_factory.mktemp("resource_opaque")
    with start_authserver(sqlite_template, directory) as live:
        yield live


@pytest.fixture(scope="module")
def app_client(server: LiveAuthserver) -> RegisteredClient:
    """The application that obtains tokens for the user."""
    return server.create_client()


@pytest.fixture(scope="module")
def resource_server(server: LiveAuthserver) -> RegisteredClient:
    """The sibling service's own client, allowed to introspect."""
    return server.create_client(
        "--introspect", grant_types=("client_credentials",), scope="profile"
    )


@pytest.fixture
def introspection_validator(
    server: LiveAuthserver, resource_server: RegisteredClient
) -> IntrospectionValidator:
    return IntrospectionValidator(
        server.introspection_url,
        resource_server.client_id,
        resource_server.client_secret,
        timeout_seconds=TIMEOUT_SECONDS,
    )


@pytest.fixture
def protected(introspection_validator: IntrospectionValidator) -> FlaskClient:
    return create_resource_app(introspection_validator).test_client()


def test_introspection_validator_accepts_valid_token(server, app_client, protected):
    token = password_grant(server, app_client)["access_token"]

    response = protected.get("/profile", headers=bearer(token))

    assert response.status_code == 200
    assert response.get_json()["scope"] == "profile email"


def test_introspection_validator_rejects_revoked_token_at_once(
    server, app_client, protected
):
    """RFC 7662 section 2.2: introspection reports a revoked token inactive."""
    token = password_grant(server, app_client)["access_token"]
    assert protected.get("/profile", headers=bearer(token)).status_code == 200

    revoke(server, app_client, token)

    response = protected.get("/profile", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_introspection_validator_rejects_refresh_token(
    server, resource_server, protected
):
    """RFC 6750 section 3.1: a refresh token is no access token."""
    own = server.create_client(
        "--introspect", grant_types=("password", "refresh_token")
    )
    refresh_token = password_grant(server, own)["refresh_token"]
    validator = IntrospectionValidator(
        server.introspection_url, own.client_id, own.client_secret
    )
    app = create_resource_app(validator).test_client()

    response = app.get("/profile", headers=bearer(refresh_token))

    assert response.status_code == 401


def test_introspection_validator_missing_scope_is_403(server, app_client, protected):
    """RFC 6750 section 3.1: a token without the scope is insufficient_scope."""
    token = password_grant(server, app_client)["access_token"]

    response = protected.get("/admin", headers=bearer(token))

    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"


def test_introspection_validator_missing_scope_challenge(server, app_client, protected):
    """RFC 6750 section 3: the challenge names the error and the scope."""
    token = password_grant(server, app_client)["access_token"]

    response = protected.get("/admin", headers=bearer(token))

    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="admin"' in challenge


def test_introspection_validator_without_token_is_401(protected):
    """RFC 6750 section 3.1: a request without a token has no error code."""
    response = protected.get("/profile")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authserver"'


def test_introspection_validator_other_scheme_is_401(protected):
    """RFC 6750 section 3.1: a request without a bearer token has no error code."""
    response = protected.get("/profile", headers={"Authorization": "Basic eDp5"})

    assert response.status_code == 401
    assert "error=" not in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("token", ["unknown-token", "x" * 43])
def test_introspection_validator_unknown_token_is_invalid_token(protected, token):
    """RFC 6750 section 3.1: an unknown token is 401 invalid_token."""
    response = protected.get("/profile", headers=bearer(token))

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("token", ["not a token", "a" * 5000, "abc=def"])
def test_introspection_validator_malformed_token_is_invalid_token(protected, token):
    """RFC 6750 section 3.1: a token that cannot be ours is invalid_token."""
    response = protected.get("/profile", headers=bearer(token))

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_introspection_validator_wrong_credentials_is_503(server, app_client):
    """RFC 6750 section 3.1: a server-side failure is not the token's fault."""
    validator = IntrospectionValidator(
        server.introspection_url, "unknown-client", "wrong-secret"
    )
    token = password_grant(server, app_client)["access_token"]

    response = (
        create_resource_app(validator)
        .test_client()
        .get("/profile", headers=bearer(token))
    )

    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_introspection_validator_unreachable_server_is_503(resource_server):
    # Nothing listens on the port, so every connection is rejected.
    url = f"http://127.0.0.1:{free_port()}/oauth/introspect"
    validator = IntrospectionValidator(
        url, resource_server.client_id, resource_server.client_secret
    )

    response = (
        create_resource_app(validator)
        .test_client()
        .get("/profile", headers=bearer("x" * 43))
    )

    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_introspection_validator_cache_size_is_honoured(server, resource_server):
    http = CountingSession()
    validator = IntrospectionValidator(
        server.introspection_url,
        resource_server.client_id,
        resource_server.client_secret,
        inactive_cache_seconds=60,
        cache_size=2,
        session=http,
    )
    app = create_resource_app(validator).test_client()
    for token in ("first-token", "second-token", "third-token"):
        app.get("/profile", headers=bearer(token))
    assert http.calls == 3

    app.get("/profile", headers=bearer("third-token"))
    assert http.calls == 3
    app.get("/profile", headers=bearer("first-token"))
    assert http.calls == 4


def test_introspection_validator_active_cache_reuses_answer(
    server, app_client, resource_server
):
    http = CountingSession()
    validator = IntrospectionValidator(
        server.introspection_url,
        resource_server.client_id,
        resource_server.client_secret,
        active_cache_seconds=60,
        session=http,
    )
    app = create_resource_app(validator).test_client()
    token = password_grant(server, app_client)["access_token"]

    app.get("/profile", headers=bearer(token))
    response = app.get("/profile", headers=bearer(token))

    assert response.status_code == 200
    assert http.calls == 1


# The JWT validator.


@pytest.fixture(scope="module")
def jwt_server(sqlite_template, tmp_path_factory) -> Iterator[LiveAuthserver]:
    directory = tmp_path_factory.mktemp("resource_jwt")
    with start_authserver(
        sqlite_template, directory, AUTHSERVER_ACCESS_TOKEN_FORMAT="jwt"
    ) as live:
        yield live


@pytest.fixture(scope="module")
def jwt_client(jwt_server: LiveAuthserver) -> RegisteredClient:
    return jwt_server.create_client()


def create_jwt_validator(server: LiveAuthserver, **options: Any) -> JWTValidator:
    return JWTValidator(server.jwks_url, server.url, server.url, **options)


def get_server_key(server: LiveAuthserver) -> tuple[str, RSAKey]:
    """Return the kid and private key of the server's current signing key."""
    from authserver.jwt_tokens import _decrypt

    app = create_app(server.config)
    try:
        engine = sa.create_engine(server.config["AUTHSERVER_DATABASE_URL"])
        with engine.connect() as connection:
            kid, encrypted = connection.execute(
                sa.text(
                    "SELECT kid, encrypted_private_key FROM signing_keys"
                    " WHERE retired_at IS NULL ORDER BY created_at DESC"
                )
            ).first()
        engine.dispose()
        with app.app_context():
            pem = _decrypt(bytes(encrypted))
    finally:
        app.extensions["authserver.engine"].dispose()
    return kid, RSAKey.import_key(pem)


def valid_claims(server: LiveAuthserver) -> dict[str, Any]:
    issued_at = int(time.time())
    return {
        "iss": server.url,
        "sub": "1",
        "aud": server.url,
        "client_id": "crafted",
        "scope": "profile",
        "jti": "crafted-" + str(issued_at),
        "iat": issued_at,
        "exp": issued_at + 600,
    }


def sign(key: Any, kid: str, claims: dict[str, Any], **header: str) -> str:
    algorithm = "ES256" if isinstance(key, ECKey) else "RS256"
    protected = {"alg": algorithm, "typ": "at+jwt", "kid": kid, **header}
    return jwt.encode(protected, claims, key, algorithms=[algorithm])


@pytest.fixture(scope="module")
def server_key(
    jwt_server: LiveAuthserver, jwt_client: RegisteredClient
) -> tuple[str, RSAKey]:
    # The first token makes the server create its signing key.
    password_grant(jwt_server, jwt_client)
    return get_server_key(jwt_server)


def get_status(validator: JWTValidator, token: str) -> int:
    app = create_resource_app(validator).test_client()
    return app.get("/profile", headers=bearer(token)).status_code


def test_jwt_validator_accepts_valid_token(jwt_server, jwt_client):
    token = password_grant(jwt_server, jwt_client)["access_token"]
    app = create_resource_app(create_jwt_validator(jwt_server)).test_client()

    response = app.get("/profile", headers=bearer(token))

    assert response.status_code == 200
    assert response.get_json()["scope"] == "profile email"


def test_jwt_validator_accepts_token_signed_by_server_key(jwt_server, server_key):
    kid, key = server_key
    token = sign(key, kid, valid_claims(jwt_server))

    assert get_status(create_jwt_validator(jwt_server), token) == 200


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWS"])
def test_jwt_validator_wrong_typ_is_rejected(jwt_server, server_key, typ):
    """RFC 9068 section 4: a resource server must check typ."""
    kid, key = server_key
    token = sign(key, kid, valid_claims(jwt_server), typ=typ)

    assert get_status(create_jwt_validator(jwt_server), token) == 401


def test_jwt_validator_missing_typ_is_rejected(jwt_server, server_key):
    """RFC 9068 section 4: a resource server must check typ."""
    kid, key = server_key
    token = jwt.encode({"alg": "RS256", "kid": kid}, valid_claims(jwt_server), key)

    assert get_status(create_jwt_validator(jwt_server), token) == 401


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", "https://other.example.test"),
        ("aud", "https://other.example.test"),
        ("aud", ["https://other.example.test"]),
    ],
)
def test_jwt_validator_wrong_iss_or_aud_is_rejected(
    jwt_server, server_key, claim, value
):
    """RFC 9068 section 4: iss and aud must match the resource server's."""
    kid, key = server_key
    claims = {**valid_claims(jwt_server), claim: value}

    assert get_status(create_jwt_validator(jwt_server), sign(key, kid, claims)) == 401


def test_jwt_validator_audience_list_with_ours_is_accepted(jwt_server, server_key):
    """RFC 7519 section 4.1.3: aud may be a list naming the recipient."""
    kid, key = server_key
    claims = {**valid_claims(jwt_server), "aud": ["other", jwt_server.url]}

    assert get_status(create_jwt_validator(jwt_server), sign(key, kid, claims)) == 200


@pytest.mark.parametrize("claim", ["iss", "aud", "exp"])
def test_jwt_validator_missing_claim_is_rejected(jwt_server, server_key, claim):
    """RFC 9068 section 4: the required claims must be present."""
    kid, key = server_key
    claims = valid_claims(jwt_server)
    del claims[claim]

    assert get_status(create_jwt_validator(jwt_server), sign(key, kid, claims)) == 401


def test_jwt_validator_expired_token_is_rejected(jwt_server, server_key):
    """RFC 9068 section 4: an expired token must be rejected."""
    kid, key = server_key
    claims = {**valid_claims(jwt_server), "exp": int(time.time()) - 1}

    assert get_status(create_jwt_validator(jwt_server), sign(key, kid, claims)) == 401


def test_jwt_validator_foreign_key_with_server_kid_is_rejected(jwt_server, server_key):
    """RFC 9068 section 4: the signature must verify with the issuer's key."""
    kid, _ = server_key
    foreign = RSAKey.generate_key(2048, private=True)

    token = sign(foreign, kid, valid_claims(jwt_server))

    assert get_status(create_jwt_validator(jwt_server), token) == 401


def test_jwt_validator_foreign_key_with_own_kid_is_rejected(jwt_server):
    """RFC 9068 section 4: the signature must verify with the issuer's key."""
    foreign = ECKey.generate_key("P-256", private=True)

    token = sign(foreign, "foreign-kid", valid_claims(jwt_server))

    assert get_status(create_jwt_validator(jwt_server), token) == 401


def test_jwt_validator_alg_none_is_rejected(jwt_server, server_key):
    """RFC 8725 section 3.1: an unsigned token must be rejected."""
    kid, _ = server_key

    def encode(data: dict[str, Any]) -> str:
        raw = json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = {"alg": "none", "typ": "at+jwt", "kid": kid}
    token = f"{encode(header)}.{encode(valid_claims(jwt_server))}."

    assert get_status(create_jwt_validator(jwt_server), token) == 401


def test_jwt_validator_tampered_claims_are_rejected(jwt_server, jwt_client):
    """RFC 9068 section 4: the signature must cover the claims."""
    token = password_grant(jwt_server, jwt_client)["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "profile email admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")

    tampered = f"{header}.{forged.decode()}.{signature}"

    assert get_status(create_jwt_validator(jwt_server), tampered) == 401


def test_jwt_validator_invalid_token_challenge(jwt_server):
    """RFC 6750 section 3.1: an invalid token is 401 invalid_token."""
    app = create_resource_app(create_jwt_validator(jwt_server)).test_client()

    response = app.get("/profile", headers=bearer("a.b.c"))

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_jwt_validator_missing_scope_is_403(jwt_server, jwt_client):
    """RFC 6750 section 3.1: a token without the scope is insufficient_scope."""
    token = password_grant(jwt_server, jwt_client)["access_token"]
    app = create_resource_app(create_jwt_validator(jwt_server)).test_client()

    response = app.get("/admin", headers=bearer(token))

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_jwt_validator_unreachable_jwks_is_503(jwt_server, server_key):
    kid, key = server_key
    url = f"http://127.0.0.1:{free_port()}/oauth/jwks"
    validator = JWTValidator(url, jwt_server.url, jwt_server.url)

    response = (
        create_resource_app(validator)
        .test_client()
        .get("/profile", headers=bearer(sign(key, kid, valid_claims(jwt_server))))
    )

    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_jwt_validator_revoked_token_is_accepted_until_expiry(jwt_server, jwt_client):
    token = password_grant(jwt_server, jwt_client)["access_token"]
    validator = create_jwt_validator(jwt_server)

    revoke(jwt_server, jwt_client, token)

    # A JWT is checked locally, so revocation cannot reach this validator.
    assert get_status(validator, token) == 200


def test_jwt_validator_caches_jwks(jwt_server, jwt_client):
    http = CountingSession()
    validator = create_jwt_validator(jwt_server, session=http)
    first = password_grant(jwt_server, jwt_client)["access_token"]
    second = password_grant(jwt_server, jwt_client)["access_token"]

    get_status(validator, first)
    get_status(validator, second)

    assert http.calls == 1


def test_jwt_validator_refetches_jwks_after_rotation(jwt_server, jwt_client):
    http = CountingSession()
    validator = create_jwt_validator(jwt_server, session=http, min_refresh_seconds=0)
    old_token = password_grant(jwt_server, jwt_client)["access_token"]
    assert get_status(validator, old_token) == 200

    jwt_server.run("keys", "rotate")
    new_token = password_grant(jwt_server, jwt_client)["access_token"]

    assert get_status(validator, new_token) == 200
    assert http.calls == 2
    assert get_status(validator, old_token) == 200
