"""``authserver tokens purge-expired``: deleting ended token families."""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

import requests
from sqlalchemy import func
from sqlalchemy import select

from authserver.db import get_session
from authserver.models import Client
from authserver.models import Token
from authserver.models import TokenFamily
from authserver.models import User
from authserver.security import now
from tests.conftest import PASSWORD
from tests.live import live_server
from tests.live import run_cli

DAY = 24 * 3600
SUMMARY = re.compile(
    r"Deleted (\d+) token families and (\d+) tokens in (\d+) batches;"
    r" kept everything that ended after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.\n"
)


def add_family(
    app: Any,
    *,
    expires_in: int,
    revoked_ago: int | None = None,
    access_expires_in: int = -30 * DAY,
    tokens: int = 2,
) -> int:
    """Insert a family and its tokens with times relative to now; return its id.

    :param expires_in: seconds until the family expires, negative if past.
    :param revoked_ago: seconds since the family and its tokens were revoked.
    :param access_expires_in: seconds until the last access token expires.
    """
    at = now()
    revoked_at = at - revoked_ago if revoked_ago is not None else None
    with app.app_context():
        session = get_session()
        client_id = session.scalar(select(Client.id).limit(1))
        user_id = session.scalar(select(User.id).limit(1))
        family = TokenFamily(
            client_id=client_id,
            user_id=user_id,
            scope="profile",
            created_at=at - 60 * DAY,
            last_used_at=at - 60 * DAY,
            expires_at=at + expires_in,
            revoked_at=revoked_at,
        )
        session.add(family)
        session.flush()
        for index in range(tokens):
            # Earlier tokens of the chain expired before the last one.
            access_expires_at = at + access_expires_in - (tokens - 1 - index) * DAY
            session.add(
                Token(
                    family_id=family.id,
                    client_id=client_id,
                    user_id=user_id,
                    scope="profile",
                    access_token_digest=secrets.token_hex(32),
                    refresh_token_digest=secrets.token_hex(32),
                    issued_at=access_expires_at - 3600,
                    access_token_expires_at=access_expires_at,
                    refresh_token_expires_at=at + expires_in,
                    revoked_at=revoked_at,
                )
            )
        session.commit()
        return family.id


def get_family_ids(app: Any) -> set[int]:
    with app.app_context():
        return set(get_session().scalars(select(TokenFamily.id)))


def count_tokens(app: Any, family_id: int) -> int:
    with app.app_context():
        statement = select(func.count(Token.id)).where(Token.family_id == family_id)
        return int(get_session().scalar(statement) or 0)


def purge(runner: Any, *args: str) -> Any:
    result = runner.invoke(args=["tokens", "purge-expired", *args])
    assert result.exit_code == 0, result.output
    return result


def test_purge_deletes_expired_family(app, runner, oauth_client, user):
    family_id = add_family(app, expires_in=-10 * DAY)

    purge(runner)

    assert family_id not in get_family_ids(app)
    assert count_tokens(app, family_id) == 0


def test_purge_deletes_revoked_family(app, runner, oauth_client, user):
    family_id = add_family(
        app, expires_in=20 * DAY, revoked_ago=10 * DAY, access_expires_in=-9 * DAY
    )

    purge(runner)

    assert family_id not in get_family_ids(app)
    assert count_tokens(app, family_id) == 0


def test_purge_keeps_live_family(app, runner, oauth_client, user):
    family_id = add_family(app, expires_in=20 * DAY, access_expires_in=3600)

    purge(runner)

    assert family_id in get_family_ids(app)
    assert count_tokens(app, family_id) == 2


def test_purge_keeps_recently_expired_family(app, runner, oauth_client, user):
    family_id = add_family(app, expires_in=-2 * DAY, access_expires_in=-2 * DAY)

    purge(runner)

    assert family_id in get_family_ids(app)


def test_purge_keeps_recently_revoked_family(app, runner, oauth_client, user):
    family_id = add_family(
        app, expires_in=20 * DAY, revoked_ago=2 * DAY, access_expires_in=-2 * DAY
    )

    purge(runner)

    assert family_id in get_family_ids(app)


def test_purge_retention_days_option(app, runner, oauth_client, user):
    family_id = add_family(app, expires_in=-2 * DAY, access_expires_in=-2 * DAY)

    purge(runner, "--retention-days", "1")

    assert family_id not in get_family_ids(app)


def test_purge_keeps_family_with_unexpired_access_token(
    app, runner, oauth_client, user
):
    """An access token may outlive its family's refresh tokens; it stays."""
    family_id = add_family(app, expires_in=-10 * DAY, access_expires_in=3600)

    purge(runner)

    assert family_id in get_family_ids(app)
    assert count_tokens(app, family_id) == 2


def test_purge_deletes_in_batches(app, runner, oauth_client, user):
    ended = [add_family(app, expires_in=-10 * DAY) for _ in range(5)]
    live = add_family(app, expires_in=20 * DAY, access_expires_in=3600)

    result = purge(runner, "--batch-size", "2")

    match = SUMMARY.fullmatch(result.output)
    assert match is not None, result.output
    assert match.groups() == ("5", "10", "3")
    assert get_family_ids(app) == {live}
    assert not set(ended) & get_family_ids(app)


def test_purge_prints_one_summary_line(app, runner, oauth_client, user):
    add_family(app, expires_in=-10 * DAY, tokens=3)
    add_family(app, expires_in=20 * DAY, access_expires_in=3600)

    result = purge(runner)

    assert SUMMARY.fullmatch(result.output), result.output
    assert result.output.startswith("Deleted 1 token families and 3 tokens in 1 ")


def test_purge_nothing_to_delete(app, runner, oauth_client, user):
    add_family(app, expires_in=20 * DAY, access_expires_in=3600)

    result = purge(runner)

    assert result.output.startswith("Deleted 0 token families and 0 tokens in 0 ")


def test_purge_shows_progress_bar_on_terminal(
    app, runner, oauth_client, user, monkeypatch
):
    from authserver.cli import tokens

    monkeypatch.setattr(tokens, "_is_terminal", lambda: True)
    add_family(app, expires_in=-10 * DAY)

    result = purge(runner)

    assert "Purging token families" in result.output
    assert "Deleted 1 token families" in result.output


def test_purge_rejects_zero_retention(runner):
    result = runner.invoke(args=["tokens", "purge-expired", "--retention-days", "0"])

    assert result.exit_code == 2
    assert "--retention-days" in result.output


def test_purge_rejects_zero_batch_size(runner):
    result = runner.invoke(args=["tokens", "purge-expired", "--batch-size", "0"])

    assert result.exit_code == 2
    assert "--batch-size" in result.output


def use_tokens_until_stopped(
    base_url: str, access_token: str, stop: threading.Event, failures: list[str]
) -> None:
    """Call the API with ``access_token`` until ``stop``, recording failures."""
    headers = {"Authorization": f"Bearer {access_token}"}
    for _ in range(2000):
        if stop.is_set():
            return
        response = requests.get(base_url + "/api/me", headers=headers, timeout=10)
        if response.status_code != 200:
            failures.append(f"/api/me answered {response.status_code}")


def test_purge_while_server_serves(app, config, oauth_client, user):
    ended = [add_family(app, expires_in=-10 * DAY) for _ in range(40)]
    auth = (oauth_client.client_id, oauth_client.client_secret)
    password_form = {"grant_type": "password", "username": user, "password": PASSWORD}
    stop = threading.Event()
    failures: list[str] = []

    with live_server(config, workers=2) as url:
        body = requests.post(
            url + "/oauth/token", data=password_form, auth=auth, timeout=10
        ).json()
        worker = threading.Thread(
            target=use_tokens_until_stopped,
            args=(url, body["access_token"], stop, failures),
        )
        worker.start()
        try:
            result = run_cli(config, "tokens", "purge-expired", "--batch-size", "7")
        finally:
            stop.set()
            worker.join(timeout=30)

        headers = {"Authorization": f"Bearer {body['access_token']}"}
        me = requests.get(url + "/api/me", headers=headers, timeout=10)
        refresh_form = {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
        }
        refreshed = requests.post(
            url + "/oauth/token", data=refresh_form, auth=auth, timeout=10
        )

    assert result.returncode == 0, result.stderr
    match = SUMMARY.fullmatch(result.stdout)
    assert match is not None, result.stdout
    assert match.groups() == ("40", "80", "6")
    assert failures == []
    assert refreshed.status_code == 200
    assert me.status_code == 200
    assert not set(ended) & get_family_ids(app)


def test_purge_rejects_batch_size_above_max(runner):
    result = runner.invoke(args=["tokens", "purge-expired", "--batch-size", "10001"])

    assert result.exit_code == 2
    assert "--batch-size" in result.output
