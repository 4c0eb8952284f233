"""Two server instances sharing one PostgreSQL database and one Redis.

Each instance is a separate gunicorn server on its own port, as behind a
load balancer. Whatever one instance does must be visible to the other at
once: nothing that an instance keeps in memory may be needed elsewhere.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis
import requests

from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.conftest import empty_postgres
from tests.live import live_server
from tests.live import run_cli

REDIS_URL = "redis://127.0.0.1:6379/0"
TIMEOUT_SECONDS = 10

StartPair = Callable[..., tuple[str, str]]


@pytest.fixture
def database_url(postgres_database: str) -> str:
    """Only PostgreSQL: several servers cannot share an SQLite file safely."""
    empty_postgres(postgres_database)
    return postgres_database


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A Redis key prefix for one test; its keys are deleted afterwards."""
    prefix = f"authserver-test-{uuid.uuid4().hex}"
    yield prefix

    connection = redis.Redis.from_url(REDIS_URL)
    # Flask-Limiter stores keys as LIMITS:LIMITER/<prefix>/<key>/<scope>/...
    keys = list(connection.scan_iter(match=f"*LIMITER/{prefix}/*", count=1000))
    if keys:
        connection.delete(*keys)
    connection.close()


@pytest.fixture
def shared_config(config: dict[str, Any], key_prefix: str) -> dict[str, Any]:
    """Settings of both instances: one database, rate limits in one Redis."""
    config.update(
        AUTHSERVER_RATELIMIT_ENABLED=True,
        AUTHSERVER_RATELIMIT_STORAGE_URL=REDIS_URL,
        AUTHSERVER_RATELIMIT_KEY_PREFIX=key_prefix,
    )
    return config


@pytest.fixture
def start_pair(shared_config: dict[str, Any]) -> Iterator[StartPair]:
    """Start two instances with the shared settings and ``overrides``."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> tuple[str, str]:
            shared_config.update(overrides)
            first = stack.enter_context(live_server(shared_config, workers=1))
            second = stack.enter_context(live_server(shared_config, workers=1))
            return first, second

        yield start


def post_form(
    url: str, path: str, client: RegisteredClient, **form: str
) -> requests.Response:
    """POST a form to ``path`` with the client's HTTP Basic credentials."""
    return requests.post(
        url + path, data=form, headers=client.basic, timeout=TIMEOUT_SECONDS
    )


def request_password_grant(
    url: str, client: RegisteredClient, username: str, password: str = PASSWORD
) -> requests.Response:
    return post_form(
        url,
        "/oauth/token",
        client,
        grant_type="password",
        username=username,
        password=password,
    )


def obtain_tokens(url: str, client: RegisteredClient, username: str) -> dict[str, Any]:
    """Return the token response of a successful password grant at ``url``."""
    response = request_password_grant(url, client, username)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(
    url: str, client: RegisteredClient, refresh_token: str
) -> requests.Response:
    return post_form(
        url,
        "/oauth/token",
        client,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )


def get_me(url: str, access_token: str) -> requests.Response:
    return requests.get(
        url + "/api/me",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=TIMEOUT_SECONDS,
    )


def get_jwt_header(token: str) -> dict[str, Any]:
    """Decode the protected header of a compact JWT, without verifying it."""
    encoded = token.split(".")[0]
    padded = encoded + "=" * (-len(encoded) % 4)
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return header


def get_published_kids(url: str) -> set[str]:
    response = requests.get(url + "/oauth/jwks", timeout=TIMEOUT_SECONDS)
    assert response.status_code == 200, response.text
    return {key["kid"] for key in response.json()["keys"]}


def get_current_kid(config: dict[str, Any]) -> str:
    """Return the kid that ``authserver keys list`` shows as current."""
    result = run_cli(config, "keys", "list", "--json")
    assert result.returncode == 0, result.stderr
    keys = [json.loads(line) for line in result.stdout.splitlines() if line]
    current = [key["kid"] for key in keys if key["status"] == "current"]
    assert len(current) == 1, keys
    kid: str = current[0]
    return kid


def test_refresh_through_other_instance(start_pair, oauth_client, user):
    first, second = start_pair()
    issued = obtain_tokens(first, oauth_client, user)

    refreshed = refresh(second, oauth_client, issued["refresh_token"])

    assert refreshed.status_code == 200, refreshed.text
    new_access_token = refreshed.json()["access_token"]
    for url in (first, second):
        me = get_me(url, new_access_token)
        assert me.status_code == 200, (url, me.text)
        assert me.json()["username"] == user


def test_revocation_through_other_instance(start_pair, oauth_client, user):
    """RFC 7009 section 2.1: revoking a refresh token revokes its family."""
    first, second = start_pair()
    issued = obtain_tokens(first, oauth_client, user)
    refreshed = refresh(second, oauth_client, issued["refresh_token"]).json()

    revoked = post_form(
        first,
        "/oauth/revoke",
        oauth_client,
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )

    assert revoked.status_code == 200, revoked.text
    for url in (first, second):
        assert get_me(url, refreshed["access_token"]).status_code == 401, url
        response = refresh(url, oauth_client, refreshed["refresh_token"])
        assert response.status_code == 400, (url, response.text)
        assert response.json()["error"] == "invalid_grant"


def test_lockout_counter_shared(start_pair, oauth_client, user):
    """RFC 6749 section 10.10: guessing is throttled across every instance."""
    # Two failures per instance reach the threshold only if they are
    # counted together.
    first, second = start_pair(AUTHSERVER_LOCKOUT_THRESHOLD=4)

    failures = [
        request_password_grant(url, oauth_client, user, "wrong password")
        for url in [first, second] * 2
    ]

    assert [r.status_code for r in failures] == [400] * 4
    for url in (first, second):
        response = request_password_grant(url, oauth_client, user)
        assert response.status_code == 400, (url, response.text)
        assert response.json()["error"] == "invalid_grant"


def test_lockout_not_reached_below_threshold(start_pair, oauth_client, user):
    first, second = start_pair(AUTHSERVER_LOCKOUT_THRESHOLD=4)

    for url in [first, second, first]:
        request_password_grant(url, oauth_client, user, "wrong password")

    response = request_password_grant(second, oauth_client, user)
    assert response.status_code == 200, response.text


def test_rate_limit_shared(start_pair, oauth_client, user):
    first, second = start_pair(
        AUTHSERVER_RATELIMIT_PER_CLIENT="4 per hour",
        AUTHSERVER_RATELIMIT_PER_ADDRESS="1000 per hour",
    )

    responses = [
        request_password_grant(url, oauth_client, user) for url in [first, second] * 3
    ]

    statuses = [response.status_code for response in responses]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert responses[4].json()["error"] == "rate_limited"
    assert responses[5].json()["error"] == "rate_limited"


def test_jwt_accepted_by_other_instance(start_pair, oauth_client, user):
    """RFC 9068 section 4: any instance validates a JWT the other issued."""
    first, second = start_pair(AUTHSERVER_ACCESS_TOKEN_FORMAT="jwt")
    access_token = obtain_tokens(first, oauth_client, user)["access_token"]

    me = get_me(second, access_token)

    assert me.status_code == 200, me.text
    assert me.json()["username"] == user
    assert get_jwt_header(access_token)["kid"] in get_published_kids(second)


def test_key_rotation_seen_by_both(start_pair, shared_config, oauth_client, user):
    first, second = start_pair(AUTHSERVER_ACCESS_TOKEN_FORMAT="jwt")
    before = obtain_tokens(first, oauth_client, user)["access_token"]
    old_kid = get_jwt_header(before)["kid"]

    result = run_cli(shared_config, "keys", "rotate")

    assert result.returncode == 0, result.stderr
    new_kid = get_current_kid(shared_config)
    assert new_kid != old_kid
    for url in (first, second):
        token = obtain_tokens(url, oauth_client, user)["access_token"]
        assert get_jwt_header(token)["kid"] == new_kid, url
        assert {old_kid, new_kid} <= get_published_kids(url), url
        assert get_me(url, before).status_code == 200, url
