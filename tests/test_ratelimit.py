"""Rate limits on the token endpoint: per client, per address, shared."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authserver import ConfigError
from authserver import create_app
from authserver.ratelimit import get_client_key
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.live import free_port
from tests.live import live_server

REDIS_URL = "redis://127.0.0.1:6379/0"
ADDRESS = "192.0.2.1"
OTHER_ADDRESS = "192.0.2.2"


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A Redis key prefix for one test; its keys are deleted afterwards."""
    prefix = f"authserver-test-{uuid.uuid4().hex}"
    yield prefix

    connection = redis.Redis.from_url(REDIS_URL)
    keys = _find_redis_keys(connection, prefix)
    if keys:
        connection.delete(*keys)
    connection.close()


def _find_redis_keys(connection: redis.Redis, prefix: str) -> list[bytes]:
    # Flask-Limiter stores keys as LIMITS:LIMITER/<prefix>/<key>/<scope>/...
    return list(connection.scan_iter(match=f"*LIMITER/{prefix}/*", count=1000))


@pytest.fixture
def make_app(config: dict[str, Any]) -> Iterator[Any]:
    """Create applications with rate limiting enabled and extra settings."""
    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        app = create_app({**config, "AUTHSERVER_RATELIMIT_ENABLED": True, **settings})
        app.testing = True
        apps.append(app)
        return app

    yield make

    for app in apps:
        app.extensions["authserver.engine"].dispose()


def request_token(
    client: FlaskClient, registered: RegisteredClient, address: str = ADDRESS
) -> TestResponse:
    """Request a token with the password grant from ``address``."""
    return client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        headers=registered.basic,
        environ_overrides={"REMOTE_ADDR": address},
    )


def test_token_limit_rejects_with_429_error_body(make_app, oauth_client, user):
    client = make_app(AUTHSERVER_RATELIMIT_PER_CLIENT="2 per hour").test_client()

    statuses = [request_token(client, oauth_client).status_code for _ in range(2)]
    response = request_token(client, oauth_client)

    assert statuses == [200, 200]
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == "rate_limited"
    assert isinstance(response.get_json()["error_description"], str)


def test_client_limit_counts_clients_separately(make_app, make_client, user):
    client = make_app(
        AUTHSERVER_RATELIMIT_PER_CLIENT="2 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="100 per hour",
    ).test_client()
    first, second = make_client(), make_client()

    statuses = [request_token(client, first).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert request_token(client, second).status_code == 200


def test_client_limit_applies_across_addresses(make_app, oauth_client, user):
    client = make_app(
        AUTHSERVER_RATELIMIT_PER_CLIENT="2 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="100 per hour",
    ).test_client()
    addresses = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]

    statuses = [
        request_token(client, oauth_client, address).status_code
        for address in addresses
    ]

    assert statuses == [200, 200, 429]


def test_address_limit_applies_across_clients(make_app, make_client, user):
    client = make_app(
        AUTHSERVER_RATELIMIT_PER_CLIENT="100 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="2 per hour",
    ).test_client()
    registered = [make_client() for _ in range(3)]

    statuses = [request_token(client, each).status_code for each in registered]

    assert statuses == [200, 200, 429]


def test_address_limit_counts_addresses_separately(make_app, oauth_client, user):
    client = make_app(
        AUTHSERVER_RATELIMIT_PER_CLIENT="100 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="2 per hour",
    ).test_client()

    statuses = [request_token(client, oauth_client).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert request_token(client, oauth_client, OTHER_ADDRESS).status_code == 200


def test_address_limit_uses_forwarded_address(make_app, oauth_client, user):
    client = make_app(
        AUTHSERVER_PROXY_COUNT=1,
        AUTHSERVER_RATELIMIT_PER_CLIENT="100 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="1 per hour",
    ).test_client()

    def request_from(forwarded_for: str) -> int:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": user, "password": PASSWORD},
            headers={**oauth_client.basic, "X-Forwarded-For": forwarded_for},
        )
        return response.status_code

    assert request_from("198.51.100.1") == 200
    assert request_from("198.51.100.1") == 429
    assert request_from("198.51.100.2") == 200


def test_token_limit_ignores_other_requests(make_app, oauth_client, user):
    client = make_app(AUTHSERVER_RATELIMIT_PER_ADDRESS="1 per hour").test_client()
    environ = {"REMOTE_ADDR": ADDRESS}

    health = [client.get("/healthz", environ_overrides=environ) for _ in range(3)]
    wrong_method = client.get("/oauth/token", environ_overrides=environ)

    assert [response.status_code for response in health] == [200, 200, 200]
    assert wrong_method.status_code == 405
    assert request_token(client, oauth_client).status_code == 200


def test_token_limit_counts_failed_requests(make_app, oauth_client, user):
    client = make_app(AUTHSERVER_RATELIMIT_PER_CLIENT="2 per hour").test_client()
    wrong_password = {"grant_type": "password", "username": user, "password": "x"}

    first = client.post("/oauth/token", data=wrong_password, headers=oauth_client.basic)
    second = request_token(client, oauth_client)
    third = request_token(client, oauth_client)

    assert first.status_code == 400
    assert second.status_code == 200
    assert third.status_code == 429


def test_token_limit_disabled_allows_every_request(make_app, oauth_client, user):
    client = make_app(
        AUTHSERVER_RATELIMIT_ENABLED=False,
        AUTHSERVER_RATELIMIT_PER_CLIENT="1 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="1 per hour",
    ).test_client()

    statuses = [request_token(client, oauth_client).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


@pytest.mark.parametrize(
    ("headers", "data", "expected"),
    [
        ({"Authorization": "Basic Y2xpZW50LWE6c2VjcmV0"}, {}, "client-a"),
        ({}, {"client_id": "client-b"}, "client-b"),
        ({}, {"client_id": "c" * 100}, "c" * 64),
        ({"Authorization": "Basic not-base64!"}, {}, ""),
        ({}, {}, ""),
    ],
)
def test_get_client_key_returns_claimed_id(app, headers, data, expected):
    with app.test_request_context(
        "/oauth/token", method="POST", headers=headers, data=data
    ):
        assert get_client_key() == expected


def test_get_client_key_ignores_json_body(app):
    with app.test_request_context(
        "/oauth/token", method="POST", json={"client_id": "client-a"}
    ):
        assert get_client_key() == ""


@pytest.mark.parametrize(
    "name", ["AUTHSERVER_RATELIMIT_PER_CLIENT", "AUTHSERVER_RATELIMIT_PER_ADDRESS"]
)
@pytest.mark.parametrize(
    "value", ["lots", "600 per fortnight", "0 per minute", "10/second;", ""]
)
def test_config_rejects_malformed_limit(config, name, value):
    config[name] = value

    with pytest.raises(ConfigError, match=name):
        create_app(config)


@pytest.mark.parametrize("value", ["", "has space", "a/b", "préfixe"])
def test_config_rejects_malformed_key_prefix(config, value):
    config["AUTHSERVER_RATELIMIT_KEY_PREFIX"] = value

    with pytest.raises(ConfigError, match="AUTHSERVER_RATELIMIT_KEY_PREFIX"):
        create_app(config)


def test_config_rejects_unknown_storage_scheme(config):
    config["AUTHSERVER_RATELIMIT_ENABLED"] = True
    config["AUTHSERVER_RATELIMIT_STORAGE_URL"] = "ftp://user:hunter2@127.0.0.1/"

    with pytest.raises(ConfigError, match="AUTHSERVER_RATELIMIT_STORAGE_URL") as info:
        create_app(config)

    assert "hunter2" not in str(info.value)


def test_token_limit_shared_between_servers(config, oauth_client, user, key_prefix):
    config.update(
        AUTHSERVER_RATELIMIT_ENABLED=True,
        AUTHSERVER_RATELIMIT_STORAGE_URL=REDIS_URL,
        AUTHSERVER_RATELIMIT_KEY_PREFIX=key_prefix,
        AUTHSERVER_RATELIMIT_PER_CLIENT="4 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="1000 per hour",
    )
    form = {"grant_type": "password", "username": user, "password": PASSWORD}

    with (
        live_server(config, workers=1, port=free_port()) as first,
        live_server(config, workers=1, port=free_port()) as second,
    ):
        responses = [
            requests.post(
                url + "/oauth/token", data=form, headers=oauth_client.basic, timeout=10
            )
            for url in [first, second] * 3
        ]

    connection = redis.Redis.from_url(REDIS_URL)
    keys = _find_redis_keys(connection, key_prefix)
    connection.close()

    statuses = [response.status_code for response in responses]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert responses[4].json()["error"] == "rate_limited"
    assert "Retry-After" in responses[4].headers
    assert keys


def test_unreachable_storage_allows_requests(make_app, oauth_client, user):
    client = make_app(
        AUTHSERVER_RATELIMIT_STORAGE_URL=f"redis://127.0.0.1:{free_port()}/0",
        AUTHSERVER_RATELIMIT_PER_CLIENT="1 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="1 per hour",
    ).test_client()

    statuses = [request_token(client, oauth_client).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


def test_unreachable_storage_logs_one_warning(make_app, oauth_client, user, caplog):
    client = make_app(
        AUTHSERVER_RATELIMIT_STORAGE_URL=f"redis://127.0.0.1:{free_port()}/0",
    ).test_client()

    with caplog.at_level(logging.WARNING, logger="authserver.ratelimit"):
        for _ in range(3):
            request_token(client, oauth_client)

    warnings = [
        record
        for record in caplog.records
        if record.name == "authserver.ratelimit" and record.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert "not applied" in warnings[0].getMessage()
