"""Password grant security: lockout, enumeration, hashing and odd input."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from authserver import create_app
from authserver.db import get_session
from authserver.models import User
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient

THRESHOLD = 3
BASE_SECONDS = 30
MAX_SECONDS = 100
WRONG_PASSWORD = "wrong horse battery staple"
#: A valid password of exactly bcrypt's 72-byte limit.
LONG_PASSWORD = "p" * 60 + "\N{GRINNING FACE}" * 3
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def lockout_config(config: dict[str, Any]) -> dict[str, Any]:
    config["AUTHSERVER_LOCKOUT_THRESHOLD"] = THRESHOLD
    config["AUTHSERVER_LOCKOUT_BASE_SECONDS"] = BASE_SECONDS
    config["AUTHSERVER_LOCKOUT_MAX_SECONDS"] = MAX_SECONDS
    return config


def sign_in(
    client: FlaskClient,
    oauth_client: RegisteredClient,
    username: str,
    password: str,
) -> Any:
    """Post a password grant and return the response."""
    data = {"grant_type": "password", "username": username, "password": password}
    return client.post("/oauth/token", data=data, headers=oauth_client.basic)


def sign_in_raw(
    client: FlaskClient, oauth_client: RegisteredClient, username: str, password: str
) -> Any:
    """Post a password grant whose fields are already percent-encoded."""
    body = f"grant_type=password&username={username}&password={password}"
    return client.post(
        "/oauth/token",
        data=body.encode("ascii"),
        content_type=FORM,
        headers=oauth_client.basic,
    )


def fail(client: FlaskClient, oauth_client: RegisteredClient, username: str) -> Any:
    """Sign in with a wrong password; return the response."""
    response = sign_in(client, oauth_client, username, WRONG_PASSWORD)
    assert response.status_code == 400
    return response


def lock(client: FlaskClient, oauth_client: RegisteredClient, username: str) -> None:
    """Fail often enough to lock ``username``."""
    for _ in range(THRESHOLD):
        fail(client, oauth_client, username)


#: Headers that differ between any two responses, whatever the request.
PER_RESPONSE_HEADERS = {"date", "x-request-id"}


def describe(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Return what a client sees of ``response``, apart from per-response headers."""
    headers = [
        (k, v) for k, v in response.headers if k.lower() not in PER_RESPONSE_HEADERS
    ]
    return response.status_code, headers, response.get_data()


def assert_rejected(response: Any, error: str = "invalid_grant") -> None:
    assert response.status_code == 400, response.get_data()
    assert response.get_json()["error"] == error


def get_password_hash(app: Flask, username: str) -> str:
    with app.app_context():
        user = get_session().scalar(select(User).where(User.username == username))
        assert user is not None
        return user.password_hash


# Lockout after repeated failures


@pytest.mark.usefixtures("lockout_config")
def test_lockout_rejects_correct_password(client, oauth_client, user, clock):
    """RFC 6749 §4.3.2: a locked username is refused even the right password."""
    lock(client, oauth_client, user)

    assert_rejected(sign_in(client, oauth_client, user, PASSWORD))


@pytest.mark.usefixtures("lockout_config")
def test_lockout_answer_matches_wrong_password(client, oauth_client, user, clock):
    """RFC 6749 §5.2: a locked username gets the wrong-password answer."""
    wrong = fail(client, oauth_client, user)
    lock(client, oauth_client, user)

    locked = sign_in(client, oauth_client, user, PASSWORD)

    assert describe(locked) == describe(wrong)


@pytest.mark.usefixtures("lockout_config")
def test_lockout_below_threshold_allows_sign_in(client, oauth_client, user, clock):
    """RFC 6749 §4.3.2: failures under the threshold do not lock."""
    for _ in range(THRESHOLD - 1):
        fail(client, oauth_client, user)

    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200


@pytest.mark.usefixtures("lockout_config")
def test_lockout_expires_after_base_seconds(client, oauth_client, user, clock):
    """RFC 6749 §4.3.2: the first lock lasts the base time, then expires."""
    lock(client, oauth_client, user)
    clock.advance(BASE_SECONDS - 1)
    assert_rejected(sign_in(client, oauth_client, user, PASSWORD))
    clock.advance(1)

    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200


@pytest.mark.usefixtures("lockout_config")
def test_lockout_doubles_each_lock(client, oauth_client, user, clock):
    """RFC 6749 §4.3.2: a second lock lasts twice as long as the first."""
    lock(client, oauth_client, user)
    clock.advance(BASE_SECONDS)
    lock(client, oauth_client, user)
    clock.advance(2 * BASE_SECONDS - 1)
    assert_rejected(sign_in(client, oauth_client, user, PASSWORD))
    clock.advance(1)

    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200


@pytest.mark.usefixtures("lockout_config")
def test_lockout_capped_at_max_seconds(client, oauth_client, user, clock):
    """RFC 6749 §4.3.2: no lock lasts longer than the maximum."""
    lock(client, oauth_client, user)
    clock.advance(BASE_SECONDS)
    lock(client, oauth_client, user)
    clock.advance(2 * BASE_SECONDS)
    # The third lock would last 4 * 30 = 120 seconds without the cap.
    lock(client, oauth_client, user)
    clock.advance(MAX_SECONDS - 1)
    assert_rejected(sign_in(client, oauth_client, user, PASSWORD))
    clock.advance(1)

    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200


@pytest.mark.usefixtures("lockout_config")
def test_lockout_counts_unknown_usernames(client, oauth_client, make_user, clock):
    """RFC 6749 §4.3.2: failures count for usernames that do not exist yet."""
    lock(client, oauth_client, "mallory")
    make_user("mallory")

    assert_rejected(sign_in(client, oauth_client, "mallory", PASSWORD))


@pytest.mark.usefixtures("lockout_config")
def test_lockout_reset_by_success(client, oauth_client, user, clock):
    """RFC 6749 §4.3.2: a successful sign-in clears the failure count."""
    for _ in range(THRESHOLD - 1):
        fail(client, oauth_client, user)
    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200
    for _ in range(THRESHOLD - 1):
        fail(client, oauth_client, user)

    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200


@pytest.mark.usefixtures("lockout_config")
def test_lockout_shared_by_username_spellings(client, oauth_client, user, clock):
    """RFC 6749 §4.3.2: spellings of one username share one counter."""
    lock(client, oauth_client, user.upper())

    assert_rejected(sign_in(client, oauth_client, user, PASSWORD))


@pytest.mark.usefixtures("lockout_config")
def test_users_unlock_clears_lock(client, oauth_client, runner, user, clock):
    """RFC 6749 §4.3.2: an operator can lift a lock before it expires."""
    lock(client, oauth_client, user)

    result = runner.invoke(args=["users", "unlock", user])

    assert result.exit_code == 0, result.output
    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200


# No username enumeration


def test_password_grant_unknown_user_matches_wrong_password(client, oauth_client, user):
    """RFC 6749 §5.2: an unknown username and a wrong password look alike."""
    wrong = sign_in(client, oauth_client, user, WRONG_PASSWORD)
    unknown = sign_in(client, oauth_client, "nobody", WRONG_PASSWORD)

    assert_rejected(unknown)
    assert describe(unknown) == describe(wrong)


def test_password_grant_disabled_user_matches_wrong_password(
    client, oauth_client, runner, user
):
    """RFC 6749 §5.2: a disabled user and a wrong password look alike."""
    wrong = sign_in(client, oauth_client, user, WRONG_PASSWORD)
    result = runner.invoke(args=["users", "disable", user])
    assert result.exit_code == 0, result.output

    disabled = sign_in(client, oauth_client, user, PASSWORD)

    assert_rejected(disabled)
    assert describe(disabled) == describe(wrong)


# Hash cost and rehashing


def test_users_create_uses_configured_cost(app, user):
    """RFC 9700 §2.4: passwords are stored at the configured bcrypt cost."""
    assert get_password_hash(app, user).startswith("$2b$04$")


def test_password_rehash_on_cost_change(app, config, oauth_client, user):
    """RFC 9700 §2.4: a sign-in rehashes a password stored at another cost."""
    before = get_password_hash(app, user)
    stronger = create_app({**config, "AUTHSERVER_BCRYPT_ROUNDS": 5})
    try:
        response = sign_in(stronger.test_client(), oauth_client, user, PASSWORD)
    finally:
        stronger.extensions["authserver.engine"].dispose()

    assert response.status_code == 200
    after = get_password_hash(app, user)
    assert before.startswith("$2b$04$")
    assert after.startswith("$2b$05$")


def test_password_rehash_keeps_matching_cost(app, client, oauth_client, user):
    """RFC 9700 §2.4: a hash already at the configured cost is kept."""
    before = get_password_hash(app, user)

    assert sign_in(client, oauth_client, user, PASSWORD).status_code == 200

    assert get_password_hash(app, user) == before


def test_password_rehash_failure_keeps_hash(app, config, oauth_client, user):
    """RFC 9700 §2.4: a wrong password never rehashes the stored hash."""
    before = get_password_hash(app, user)
    stronger = create_app({**config, "AUTHSERVER_BCRYPT_ROUNDS": 5})
    try:
        response = sign_in(stronger.test_client(), oauth_client, user, WRONG_PASSWORD)
    finally:
        stronger.extensions["authserver.engine"].dispose()

    assert_rejected(response)
    assert get_password_hash(app, user) == before


# Passwords and usernames of every shape


# Each case maps to the error expected. The form parser rejects NUL in any
# parameter as invalid_request; every other value fails as credentials.
ODD_PASSWORDS = {
    "empty": ("", "invalid_grant"),
    "long": ("x" * 5000, "invalid_grant"),
    "nul-suffix": (quote(PASSWORD) + "%00", "invalid_request"),
    "nul-prefix": ("%00" + quote(PASSWORD), "invalid_request"),
    "nul-72-byte": (quote(PASSWORD) + "%00" * (73 - len(PASSWORD)), "invalid_request"),
    "lone-surrogate": ("%ED%A0%80", "invalid_grant"),
    "invalid-utf8": ("%FF%FE%FD", "invalid_grant"),
    "overlong-nul": ("%C0%80", "invalid_grant"),
    "emoji": (quote("\N{GRINNING FACE}" * 40), "invalid_grant"),
    "combining": (quote("e\u0301" * 30), "invalid_grant"),
    "real-plus-72": (quote(PASSWORD + "x" * 72), "invalid_grant"),
}


@pytest.mark.parametrize(
    ("password", "error"), ODD_PASSWORDS.values(), ids=ODD_PASSWORDS
)
def test_password_grant_rejects_odd_password(
    client, oauth_client, user, password, error
):
    """RFC 6749 §5.2: any password gets an OAuth error, never a 5xx."""
    response = sign_in_raw(client, oauth_client, user, password)

    assert_rejected(response, error)


ODD_USERNAMES = {
    "empty": ("", "invalid_grant"),
    "nul": ("%00", "invalid_request"),
    "nul-suffix": ("alice%00", "invalid_request"),
    "long": ("a" * 5000, "invalid_grant"),
    "lone-surrogate": ("%ED%A0%80", "invalid_grant"),
    "invalid-utf8": ("%FF%FE", "invalid_grant"),
    "control": ("alice%07", "invalid_grant"),
    "spaces": ("%20%20", "invalid_grant"),
    "emoji": (quote("\N{GRINNING FACE}"), "invalid_grant"),
}


@pytest.mark.parametrize(
    ("username", "error"), ODD_USERNAMES.values(), ids=ODD_USERNAMES
)
def test_password_grant_rejects_odd_username(
    client, oauth_client, user, username, error
):
    """RFC 6749 §5.2: any username gets an OAuth error, never a 5xx."""
    response = sign_in_raw(client, oauth_client, username, quote(PASSWORD))

    assert_rejected(response, error)


def test_password_grant_accepts_emoji_password(client, oauth_client, make_user):
    """RFC 6749 §4.3.2: a password outside ASCII signs in."""
    password = "\N{GRINNING FACE}\N{SNOWMAN} correct horse"
    make_user("bob", password)

    assert sign_in(client, oauth_client, "bob", password).status_code == 200


def test_password_grant_accepts_72_byte_password(client, oauth_client, make_user):
    """RFC 6749 §4.3.2: a password of exactly 72 bytes signs in."""
    assert len(LONG_PASSWORD.encode("utf-8")) == 72
    make_user("bob", LONG_PASSWORD)

    assert sign_in(client, oauth_client, "bob", LONG_PASSWORD).status_code == 200


@pytest.mark.parametrize(
    "suffix", ["x", "x" * 1000, "\t", "\N{GRINNING FACE}"], ids=repr
)
def test_password_grant_rejects_72_byte_prefix_match(
    client, oauth_client, make_user, suffix
):
    """RFC 6749 §4.3.2: a longer password sharing bcrypt's 72 bytes fails."""
    make_user("bob", LONG_PASSWORD)

    response = sign_in(client, oauth_client, "bob", LONG_PASSWORD + suffix)

    assert_rejected(response)


# The password policy of the admin commands


POLICY_VIOLATIONS = {
    "too-short": "short",
    "over-72-bytes": LONG_PASSWORD + "x",
    "nul": PASSWORD + "\x00",
}


@pytest.mark.parametrize("password", POLICY_VIOLATIONS.values(), ids=POLICY_VIOLATIONS)
def test_users_create_rejects_policy_violation(app, runner, password):
    """RFC 9700 §2.4: the admin commands refuse passwords bcrypt mishandles."""
    result = runner.invoke(
        args=["users", "create", "bob", "--password-stdin"], input=password + "\n"
    )

    assert result.exit_code == 1
    assert "password" in result.output
    with app.app_context():
        assert get_session().scalar(select(User.id)) is None


@pytest.mark.parametrize("password", POLICY_VIOLATIONS.values(), ids=POLICY_VIOLATIONS)
def test_users_set_password_rejects_policy_violation(app, runner, user, password):
    """RFC 9700 §2.4: a password change follows the same policy."""
    before = get_password_hash(app, user)

    result = runner.invoke(
        args=["users", "set-password", user, "--password-stdin"],
        input=password + "\n",
    )

    assert result.exit_code == 1
    assert "password" in result.output
    assert get_password_hash(app, user) == before
