"""Refresh token rotation under concurrent requests to a multi-process server."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import sqlalchemy as sa

from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.live import live_server

REQUESTS = 24
TIMEOUT_SECONDS = 30

LIVE_REFRESH_TOKENS = sa.text(
    "SELECT family_id, COUNT(*) FROM tokens"
    " WHERE rotated_at IS NULL AND revoked_at IS NULL"
    " AND refresh_token_digest IS NOT NULL"
    " GROUP BY family_id"
)


def post_token(base_url: str, oauth_client: RegisteredClient, **form: str) -> Any:
    return requests.post(
        base_url + "/oauth/token",
        data=form,
        headers=oauth_client.basic,
        timeout=TIMEOUT_SECONDS,
    )


def refresh_at_once(
    base_url: str, oauth_client: RegisteredClient, refresh_token: str
) -> list[requests.Response]:
    """Send ``REQUESTS`` refreshes with one token, released by a barrier."""
    barrier = threading.Barrier(REQUESTS, timeout=TIMEOUT_SECONDS)

    def send(_: int) -> requests.Response:
        barrier.wait()
        return post_token(
            base_url,
            oauth_client,
            grant_type="refresh_token",
            refresh_token=refresh_token,
        )

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        return list(pool.map(send, range(REQUESTS)))


def count_live_refresh_tokens(database_url: str) -> dict[int, int]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(LIVE_REFRESH_TOKENS).all()
    finally:
        engine.dispose()
    return {family_id: count for family_id, count in rows}


def test_refresh_concurrent_rotation_is_atomic(config, oauth_client, user):
    """RFC 9700 §4.14.2: of concurrent refreshes with one token, one wins."""
    with live_server(config, workers=4, threads=4) as base_url:
        grant = post_token(
            base_url,
            oauth_client,
            grant_type="password",
            username=user,
            password=PASSWORD,
        )
        assert grant.status_code == 200, grant.text
        responses = refresh_at_once(
            base_url, oauth_client, grant.json()["refresh_token"]
        )

    statuses = [response.status_code for response in responses]
    assert all(status < 500 for status in statuses), statuses
    assert statuses.count(200) <= 1, statuses
    failures = [r.json()["error"] for r in responses if r.status_code != 200]
    assert set(failures) <= {"invalid_grant"}, failures
    live = count_live_refresh_tokens(config["AUTHSERVER_DATABASE_URL"])
    assert all(count <= 1 for count in live.values()), live


FAMILIES = 12
REVOKED_FAMILIES = sa.text(
    "SELECT COUNT(*) FROM token_families WHERE revoked_at IS NOT NULL"
)


def send_at_once(
    base_url: str, oauth_client: RegisteredClient, refresh_tokens: list[str]
) -> list[requests.Response]:
    """Send one refresh per token in ``refresh_tokens``, released together."""
    barrier = threading.Barrier(len(refresh_tokens), timeout=TIMEOUT_SECONDS)

    def send(refresh_token: str) -> requests.Response:
        barrier.wait()
        return post_token(
            base_url,
            oauth_client,
            grant_type="refresh_token",
            refresh_token=refresh_token,
        )

    with ThreadPoolExecutor(max_workers=len(refresh_tokens)) as pool:
        return list(pool.map(send, refresh_tokens))


def count_revoked_families(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(REVOKED_FAMILIES).scalar_one())
    finally:
        engine.dispose()


def test_refresh_concurrent_replay_revokes_family(config, oauth_client, user):
    """RFC 9700 §4.14.2: a replay racing a legitimate refresh still revokes."""
    with live_server(config, workers=4, threads=4) as base_url:
        presented: list[str] = []
        for _ in range(FAMILIES):
            grant = post_token(
                base_url,
                oauth_client,
                grant_type="password",
                username=user,
                password=PASSWORD,
            )
            assert grant.status_code == 200, grant.text
            rotated = grant.json()["refresh_token"]
            current = post_token(
                base_url,
                oauth_client,
                grant_type="refresh_token",
                refresh_token=rotated,
            )
            assert current.status_code == 200, current.text
            presented += [rotated, current.json()["refresh_token"]]
        responses = send_at_once(base_url, oauth_client, presented)

    statuses = [response.status_code for response in responses]
    assert all(status < 500 for status in statuses), statuses
    revoked = count_revoked_families(config["AUTHSERVER_DATABASE_URL"])
    assert revoked == FAMILIES
