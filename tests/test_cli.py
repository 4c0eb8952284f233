"""The admin commands, through Flask's runner and the real console script."""

from __future__ import annotations

import base64
import json
import secrets
import shutil

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from authserver.db import get_session
from authserver.migrations import get_head_revision
from authserver.models import Client
from authserver.models import User
from tests.conftest import PASSWORD
from tests.conftest import base_config
from tests.live import run_cli

TOKEN_URL = "/oauth/token"
NEW_PASSWORD = "a different long password"

POLICY_VIOLATIONS = [
    pytest.param("short", "at least 12 characters", id="too-short"),
    pytest.param("a" * 73, "longer than 72 bytes", id="over-72-ascii-bytes"),
    pytest.param("é" * 37, "longer than 72 bytes", id="over-72-utf8-bytes"),
    pytest.param("long password\x00tail", "NUL", id="nul"),
]


def invoke(runner, *args: str, input: str | None = None):
    return runner.invoke(args=list(args), input=input)


def invoke_ok(runner, *args: str, input: str | None = None):
    """Run a command that a test needs to succeed before it checks anything."""
    result = invoke(runner, *args, input=input)
    assert result.exit_code == 0, result.output
    return result


def create_client_json(runner, *extra: str) -> dict:
    result = invoke(
        runner,
        "clients",
        "create",
        "--name",
        "billing",
        "--grant-type",
        "password",
        "--grant-type",
        "refresh_token",
        "--scope",
        "profile",
        "--json",
        *extra,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    raw = f"{client_id}:{client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def request_token(
    client, client_id, client_secret, username="alice", password=PASSWORD
):
    form = {"grant_type": "password", "username": username, "password": password}
    return client.post(TOKEN_URL, data=form, headers=basic(client_id, client_secret))


def get_client_row(app, client_id: str) -> Client | None:
    with app.app_context():
        return get_session().scalar(select(Client).where(Client.client_id == client_id))


def get_user_row(app, username: str) -> User | None:
    with app.app_context():
        return get_session().scalar(select(User).where(User.username == username))


# authserver db


def test_db_current_shows_head(app, runner):
    result = invoke(runner, "db", "current")

    assert result.exit_code == 0, result.output
    assert f"{get_head_revision(app)} (head)" in result.stdout


def test_db_upgrade_at_head_succeeds(runner):
    result = invoke(runner, "db", "upgrade")

    assert result.exit_code == 0, result.output
    assert "upgraded to head" in result.stdout


def table_names(app) -> set[str]:
    return set(sa.inspect(app.extensions["authserver.engine"]).get_table_names())


def test_db_downgrade_base_drops_tables(app, runner):
    try:
        result = invoke(runner, "db", "downgrade", "base")

        assert result.exit_code == 0, result.output
        assert table_names(app) <= {"alembic_version"}
    finally:
        invoke(runner, "db", "upgrade")


def test_db_downgrade_base_clears_revision(runner):
    try:
        invoke_ok(runner, "db", "downgrade", "base")

        result = invoke(runner, "db", "current")

        assert result.exit_code == 0, result.output
        assert "(head)" not in result.stdout
    finally:
        invoke(runner, "db", "upgrade")


def test_db_upgrade_after_downgrade_restores_tables(app, runner):
    expected = table_names(app)
    try:
        invoke_ok(runner, "db", "downgrade", "base")

        result = invoke(runner, "db", "upgrade")

        assert result.exit_code == 0, result.output
        assert table_names(app) == expected
    finally:
        invoke(runner, "db", "upgrade")


# authserver clients


def test_clients_create_prints_id_and_secret(runner):
    result = invoke(
        runner,
        "clients",
        "create",
        "--name",
        "billing",
        "--grant-type",
        "password",
        "--scope",
        "profile",
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("client_id: ")
    assert lines[1].startswith("client_secret: ")
    assert "cannot be shown again" in lines[2]


def test_clients_create_json_has_registration(runner):
    data = create_client_json(runner)

    assert data["client_id"]
    assert data["client_secret"]
    assert data["name"] == "billing"
    assert data["grant_types"] == ["password", "refresh_token"]
    assert data["scope"] == "profile"
    assert data["active"] is True
    assert data["public"] is False


def test_clients_create_public_has_no_secret(runner):
    data = create_client_json(runner, "--public")

    assert data["client_secret"] is None
    assert data["public"] is True
    assert data["token_endpoint_auth_methods"] == ["none"]


def test_clients_create_auth_method_restricts_client(runner):
    data = create_client_json(runner, "--auth-method", "client_secret_post")

    assert data["token_endpoint_auth_methods"] == ["client_secret_post"]


def test_clients_create_id_never_starts_with_dash(monkeypatch, runner):
    real_token_urlsafe = secrets.token_urlsafe

    def token_urlsafe(nbytes: int) -> str:
        value = real_token_urlsafe(nbytes)
        return "-" + value[1:] if nbytes == 16 else value

    monkeypatch.setattr(secrets, "token_urlsafe", token_urlsafe)
    data = create_client_json(runner)

    assert not data["client_id"].startswith("-")
    assert invoke(runner, "clients", "show", data["client_id"]).exit_code == 0


def test_clients_create_client_can_get_token(client, runner, user):
    data = create_client_json(runner)

    response = request_token(client, data["client_id"], data["client_secret"])

    assert response.status_code == 200


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--scope", "unknown"], id="unknown-scope"),
        pytest.param(["--scope", "  "], id="empty-scope"),
        pytest.param(
            ["--public", "--auth-method", "client_secret_post"], id="public-auth"
        ),
        pytest.param(
            ["--public", "--grant-type", "client_credentials"],
            id="public-client-credentials",
        ),
        pytest.param(["--default-scope", "email"], id="default-not-subset"),
        pytest.param(["--grant-type", "implicit"], id="unknown-grant"),
        pytest.param(["--auth-method", "private_key_jwt"], id="unknown-auth-method"),
        pytest.param(["--refresh-lifetime", "0"], id="zero-lifetime"),
    ],
)
def test_clients_create_rejects_bad_options(runner, extra):
    args = ["clients", "create", "--name", "x", "--grant-type", "password"]
    if "--scope" not in extra:
        args += ["--scope", "profile"]

    result = invoke(runner, *args, *extra)

    assert result.exit_code == 2
    assert "Error" in result.stderr


def test_clients_list_shows_clients(runner):
    first = create_client_json(runner)
    second = create_client_json(runner)

    result = invoke(runner, "clients", "list")

    assert result.exit_code == 0, result.output
    assert first["client_id"] in result.stdout
    assert second["client_id"] in result.stdout


def test_clients_list_json_has_one_line_per_client(runner):
    first = create_client_json(runner)
    second = create_client_json(runner)

    result = invoke(runner, "clients", "list", "--json")

    ids = [json.loads(line)["client_id"] for line in result.stdout.splitlines()]
    assert ids == [first["client_id"], second["client_id"]]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["clients", "list"], id="list"),
        pytest.param(["clients", "list", "--json"], id="list-json"),
        pytest.param(["clients", "show"], id="show"),
    ],
)
def test_clients_listing_hides_secret(app, runner, command):
    """RFC 6819 section 5.1.4.1.3: a secret kept only as a digest is never listed."""
    data = create_client_json(runner)
    digest = get_client_row(app, data["client_id"]).secret_digest
    if command[-1] == "show":
        command = [*command, data["client_id"]]

    result = invoke(runner, *command)

    assert result.exit_code == 0, result.output
    assert data["client_secret"] not in result.output
    assert digest not in result.output


def test_clients_show_describes_client(runner):
    data = create_client_json(runner)

    result = invoke(runner, "clients", "show", data["client_id"])

    assert result.exit_code == 0, result.output
    assert f"client_id: {data['client_id']}" in result.stdout
    assert "name: billing" in result.stdout
    assert "active: True" in result.stdout


@pytest.mark.parametrize(
    "command", ["show", "disable", "enable", "delete", "rotate-secret"]
)
def test_clients_unknown_client_fails(runner, command):
    result = invoke(runner, "clients", command, "no-such-client")

    assert result.exit_code == 1
    assert "'no-such-client' not found" in result.stderr


def test_clients_disable_marks_client_disabled(runner):
    data = create_client_json(runner)

    result = invoke(runner, "clients", "disable", data["client_id"])

    assert result.exit_code == 0, result.output
    description = invoke(runner, "clients", "show", data["client_id"])
    assert "active: False" in description.stdout


def test_clients_disable_revokes_tokens(client, runner, user):
    data = create_client_json(runner)
    request_token(client, data["client_id"], data["client_secret"])

    result = invoke(runner, "clients", "disable", data["client_id"])

    assert "revoked 1 token families" in result.stdout


def test_clients_disable_rejects_client(client, runner, user):
    data = create_client_json(runner)

    invoke_ok(runner, "clients", "disable", data["client_id"])

    response = request_token(client, data["client_id"], data["client_secret"])
    assert response.status_code == 401


def test_clients_enable_restores_client(client, runner, user):
    data = create_client_json(runner)
    invoke_ok(runner, "clients", "disable", data["client_id"])

    result = invoke(runner, "clients", "enable", data["client_id"])

    assert result.exit_code == 0, result.output
    response = request_token(client, data["client_id"], data["client_secret"])
    assert response.status_code == 200


def test_clients_delete_removes_client(app, runner):
    data = create_client_json(runner)

    result = invoke(runner, "clients", "delete", data["client_id"])

    assert result.exit_code == 0, result.output
    assert get_client_row(app, data["client_id"]) is None


def test_clients_delete_with_tokens_succeeds(app, client, runner, user):
    data = create_client_json(runner)
    request_token(client, data["client_id"], data["client_secret"])

    result = invoke(runner, "clients", "delete", data["client_id"])

    assert result.exit_code == 0, result.output
    assert get_client_row(app, data["client_id"]) is None


def rotate(runner, client_id: str, *extra: str) -> str:
    result = invoke(runner, "clients", "rotate-secret", client_id, "--json", *extra)
    assert result.exit_code == 0, result.output
    secret: str = json.loads(result.stdout)["client_secret"]
    return secret


def test_clients_rotate_secret_prints_new_secret(runner):
    data = create_client_json(runner)

    secret = rotate(runner, data["client_id"])

    assert secret
    assert secret != data["client_secret"]


def test_clients_rotate_secret_new_secret_works(client, runner, user):
    data = create_client_json(runner)

    secret = rotate(runner, data["client_id"])

    assert request_token(client, data["client_id"], secret).status_code == 200


def test_clients_rotate_secret_old_secret_rejected(client, runner, user):
    data = create_client_json(runner)

    rotate(runner, data["client_id"])

    response = request_token(client, data["client_id"], data["client_secret"])
    assert response.status_code == 401


def test_clients_rotate_secret_overlap_keeps_old_secret(client, runner, user):
    data = create_client_json(runner)

    rotate(runner, data["client_id"], "--overlap", "600")

    response = request_token(client, data["client_id"], data["client_secret"])
    assert response.status_code == 200


def test_clients_rotate_secret_of_public_client_fails(runner):
    data = create_client_json(runner, "--public")

    result = invoke(runner, "clients", "rotate-secret", data["client_id"])

    assert result.exit_code == 1
    assert "public" in result.stderr


# authserver users


def test_users_create_reads_password_stdin(client, oauth_client, runner):
    result = invoke(
        runner, "users", "create", "bob", "--password-stdin", input=PASSWORD + "\n"
    )

    assert result.exit_code == 0, result.output
    assert "Created user 'bob'" in result.stdout
    response = request_token(
        client, oauth_client.client_id, oauth_client.client_secret, "bob"
    )
    assert response.status_code == 200


def test_users_create_prompts_for_password(client, oauth_client, runner):
    result = invoke(runner, "users", "create", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    response = request_token(
        client, oauth_client.client_id, oauth_client.client_secret, "bob"
    )
    assert response.status_code == 200


def test_users_create_prompt_does_not_echo_password(runner):
    result = invoke(runner, "users", "create", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")

    assert PASSWORD not in result.output


def test_users_create_has_no_password_option(app, runner):
    """A password given as an argument would show in the process list."""
    result = invoke(runner, "users", "create", "bob", "--password", PASSWORD)

    assert result.exit_code == 2
    assert "No such option" in result.stderr
    assert get_user_row(app, "bob") is None


def test_users_create_normalizes_username(app, runner):
    invoke_ok(runner, "users", "create", " BOB ", "--password-stdin", input=PASSWORD)

    assert get_user_row(app, "bob") is not None


def test_users_create_existing_user_fails(runner, user):
    result = invoke(
        runner, "users", "create", "ALICE", "--password-stdin", input=PASSWORD
    )

    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_users_create_rejects_control_character(runner):
    result = invoke(
        runner, "users", "create", "bo\x01b", "--password-stdin", input=PASSWORD
    )

    assert result.exit_code == 2
    assert "U+0001" in result.stderr


@pytest.mark.parametrize(("password", "message"), POLICY_VIOLATIONS)
def test_users_create_enforces_password_policy(runner, password, message):
    result = invoke(
        runner, "users", "create", "bob", "--password-stdin", input=password + "\n"
    )

    assert result.exit_code == 1
    assert message in result.stderr


@pytest.mark.parametrize(("password", "message"), POLICY_VIOLATIONS)
def test_users_create_policy_violation_creates_no_user(app, runner, password, message):
    invoke(runner, "users", "create", "bob", "--password-stdin", input=password)

    assert get_user_row(app, "bob") is None


def test_users_create_accepts_72_byte_password(runner):
    password = "é" * 36

    result = invoke(
        runner, "users", "create", "bob", "--password-stdin", input=password
    )

    assert result.exit_code == 0, result.output


def test_users_list_shows_users(runner, make_user):
    make_user("alice")
    make_user("bob")

    result = invoke(runner, "users", "list")

    assert result.exit_code == 0, result.output
    assert "alice" in result.stdout
    assert "bob" in result.stdout


def test_users_list_hides_password(app, runner, user):
    password_hash = get_user_row(app, user).password_hash

    result = invoke(runner, "users", "list")

    assert PASSWORD not in result.output
    assert password_hash not in result.output
    assert "$2" not in result.output


@pytest.mark.parametrize("command", ["disable", "enable", "set-password", "delete"])
def test_users_unknown_user_fails(runner, command):
    result = invoke(runner, "users", command, "nobody", input=PASSWORD)

    assert result.exit_code == 1
    assert "'nobody' not found" in result.stderr


def test_users_disable_marks_user_disabled(app, runner, user):
    result = invoke(runner, "users", "disable", user)

    assert result.exit_code == 0, result.output
    assert get_user_row(app, user).is_active is False


def test_users_disable_revokes_tokens(runner, get_token, user):
    get_token()

    result = invoke(runner, "users", "disable", user)

    assert "revoked 1 token families" in result.stdout


def test_users_enable_restores_user(client, oauth_client, runner, user):
    invoke_ok(runner, "users", "disable", user)

    result = invoke(runner, "users", "enable", user)

    assert result.exit_code == 0, result.output
    response = request_token(client, oauth_client.client_id, oauth_client.client_secret)
    assert response.status_code == 200


def test_users_set_password_accepts_new_password(client, oauth_client, runner, user):
    result = invoke(
        runner, "users", "set-password", user, "--password-stdin", input=NEW_PASSWORD
    )

    assert result.exit_code == 0, result.output
    response = request_token(
        client,
        oauth_client.client_id,
        oauth_client.client_secret,
        password=NEW_PASSWORD,
    )
    assert response.status_code == 200


def test_users_set_password_rejects_old_password(client, oauth_client, runner, user):
    invoke_ok(
        runner, "users", "set-password", user, "--password-stdin", input=NEW_PASSWORD
    )

    response = request_token(client, oauth_client.client_id, oauth_client.client_secret)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_users_set_password_revokes_tokens(runner, get_token, user):
    get_token()

    result = invoke(
        runner, "users", "set-password", user, "--password-stdin", input=NEW_PASSWORD
    )

    assert "revoked 1 token families" in result.stdout


@pytest.mark.parametrize(("password", "message"), POLICY_VIOLATIONS)
def test_users_set_password_enforces_password_policy(runner, user, password, message):
    result = invoke(
        runner, "users", "set-password", user, "--password-stdin", input=password
    )

    assert result.exit_code == 1
    assert message in result.stderr


def test_users_delete_removes_user(app, runner, get_token, user):
    get_token()

    result = invoke(runner, "users", "delete", user)

    assert result.exit_code == 0, result.output
    assert get_user_row(app, user) is None


def lock_out(client, oauth_client, user: str) -> None:
    # The test settings keep the default threshold of five failures.
    for _ in range(5):
        request_token(
            client,
            oauth_client.client_id,
            oauth_client.client_secret,
            user,
            "wrong password",
        )


def test_users_locked_username_rejects_right_password(client, oauth_client, user):
    lock_out(client, oauth_client, user)

    response = request_token(client, oauth_client.client_id, oauth_client.client_secret)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_users_unlock_clears_lock(client, oauth_client, runner, user):
    lock_out(client, oauth_client, user)

    result = invoke(runner, "users", "unlock", user)

    assert result.exit_code == 0, result.output
    assert f"Unlocked '{user}'" in result.stdout
    response = request_token(client, oauth_client.client_id, oauth_client.client_secret)
    assert response.status_code == 200


def test_users_unlock_without_failures_reports_nothing_to_clear(runner, user):
    result = invoke(runner, "users", "unlock", user)

    assert result.exit_code == 0, result.output
    assert "no failed sign-ins" in result.stdout


# The real ``authserver`` console script.


@pytest.fixture
def script_config(tmp_path, sqlite_template) -> dict:
    """Settings for the console script on a migrated SQLite file.

    Argument errors are found before the database is touched, so one
    backend is enough for them.
    """
    path = tmp_path / "script.db"
    shutil.copy(sqlite_template, path)
    return base_config(f"sqlite:///{path}")


def test_script_db_current_shows_head(app, config):
    result = run_cli(config, "db", "current")

    assert result.returncode == 0, result.stderr
    assert f"{get_head_revision(app)} (head)" in result.stdout


def test_script_clients_list_hides_secret(script_config):
    """RFC 6819 section 5.1.4.1.3: a secret kept only as a digest is never listed."""
    created = run_cli(
        script_config,
        "clients",
        "create",
        "--name",
        "billing",
        "--grant-type",
        "password",
        "--scope",
        "profile",
        "--json",
    )
    data = json.loads(created.stdout)

    result = run_cli(script_config, "clients", "list")

    assert result.returncode == 0, result.stderr
    assert data["client_id"] in result.stdout
    assert data["client_secret"] not in result.stdout


def test_script_users_create_reads_password_stdin(app, config):
    result = run_cli(
        config, "users", "create", "bob", "--password-stdin", input=PASSWORD + "\n"
    )

    assert result.returncode == 0, result.stderr
    assert get_user_row(app, "bob") is not None


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["no-such-command"], id="unknown-command"),
        pytest.param(["users", "create", "bob", "--password", "x"], id="password-arg"),
        pytest.param(["clients", "create", "--name", "x"], id="missing-option"),
        pytest.param(
            [
                "clients",
                "create",
                "--name",
                "x",
                "--scope",
                "profile",
                "--grant-type",
                "magic",
            ],
            id="bad-choice",
        ),
        pytest.param(["clients", "show", "no-such-client"], id="unknown-client"),
    ],
)
def test_script_bad_arguments_print_one_line(script_config, args):
    result = run_cli(script_config, *args)

    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: ")


@pytest.mark.parametrize(("password", "message"), POLICY_VIOLATIONS)
def test_script_password_policy_prints_one_line(script_config, password, message):
    result = run_cli(
        script_config,
        "users",
        "create",
        "bob",
        "--password-stdin",
        input=password + "\n",
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert message in result.stderr
