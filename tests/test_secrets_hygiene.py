"""No token, password or client secret in logs or in the database.

Every test runs a whole flow (password grants with both client
authentication methods, failed attempts, a refresh, refresh token reuse
and calls to the protected API), then searches what the flow left behind
for every secret it handled.
"""

from __future__ import annotations

import base64
import io
import logging
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from authserver.logs import HANDLER_NAME
from tests.conftest import PASSWORD
from tests.conftest import SECRET_KEY
from tests.live import live_server

PG_DUMP = Path("/usr/bin/pg_dump")
WRONG_PASSWORD = "not-the-password-Q7x2Zk"
WRONG_SECRET = "not-the-client-secret-Vd83Lp"


LOG_FORMATS = ["text", "json"]


@pytest.fixture
def log_format() -> str:
    """The log format; tests of log output run with each of LOG_FORMATS."""
    return "text"


@pytest.fixture
def config(config, log_format):
    """Log everything, so that no record hides below the log level."""
    config["AUTHSERVER_LOG_LEVEL"] = "DEBUG"
    config["AUTHSERVER_LOG_FORMAT"] = log_format
    return config


@dataclass
class Secrets:
    """Every secret string a flow sent or received."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        for value in values:
            if value:
                self.values.add(value)

    def find_in(self, text: str) -> list[str]:
        """Return the secrets that occur in ``text``, shortened for display."""
        return [value[:8] + "..." for value in self.values if value in text]


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    raw = f"{client_id}:{client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def run_flow(post, get, oauth_client, username: str) -> Secrets:
    """Exercise every code path that handles a secret.

    :param post: ``post(path, data, headers)`` returning ``(status, json)``.
    :param get: ``get(path, headers)`` returning ``(status, json)``.
    """
    found = Secrets()
    client_id = oauth_client.client_id
    client_secret = oauth_client.client_secret
    good_basic = basic(client_id, client_secret)
    wrong_basic = basic(client_id, WRONG_SECRET)
    found.add(PASSWORD, WRONG_PASSWORD, client_secret, WRONG_SECRET, SECRET_KEY)
    found.add(good_basic["Authorization"], wrong_basic["Authorization"])
    form = {"grant_type": "password", "username": username, "password": PASSWORD}

    status, first = post("/oauth/token", form, good_basic)
    assert status == 200, first
    found.add(first["access_token"], first["refresh_token"])

    post_form = {**form, "client_id": client_id, "client_secret": client_secret}
    status, second = post("/oauth/token", post_form, {})
    assert status == 200, second
    found.add(second["access_token"], second["refresh_token"])

    status, _ = post("/oauth/token", {**form, "password": WRONG_PASSWORD}, good_basic)
    assert status == 400
    status, _ = post("/oauth/token", form, wrong_basic)
    assert status == 401
    wrong_post = {**post_form, "client_secret": WRONG_SECRET}
    status, _ = post("/oauth/token", wrong_post, {})
    assert status == 401

    refresh_form = {"grant_type": "refresh_token", "refresh_token": ""}
    refresh_form["refresh_token"] = first["refresh_token"]
    status, third = post("/oauth/token", refresh_form, good_basic)
    assert status == 200, third
    found.add(third["access_token"], third["refresh_token"])

    status, me = get("/api/me", {"Authorization": "Bearer " + third["access_token"]})
    assert status == 200, me

    # Reusing a rotated refresh token revokes the family and logs a warning.
    status, _ = post("/oauth/token", refresh_form, good_basic)
    assert status == 400
    status, _ = get("/api/me", {"Authorization": "Bearer " + third["access_token"]})
    assert status == 401
    return found


def run_flow_in_process(client, oauth_client, username: str) -> Secrets:
    def post(path, data, headers):
        response = client.post(path, data=data, headers=headers)
        return response.status_code, response.get_json()

    def get(path, headers):
        response = client.get(path, headers=headers)
        return response.status_code, response.get_json()

    return run_flow(post, get, oauth_client, username)


@pytest.fixture
def all_loggers_at_debug(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """Capture the records of every logger, the libraries' included, at DEBUG."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def render_record(record: logging.LogRecord) -> str:
    """Return every field of ``record``, the message and its extras included."""
    return " ".join([record.getMessage(), repr(record.args), repr(vars(record))])


@pytest.fixture
def authserver_output() -> Iterator[io.StringIO]:
    """Collect what authserver's own log handler writes."""
    handler = next(
        h for h in logging.getLogger("authserver").handlers if h.name == HANDLER_NAME
    )
    buffer = io.StringIO()
    stream = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(stream)  # type: ignore[attr-defined]


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_logs_records_contain_no_secrets(
    all_loggers_at_debug, client, oauth_client, user
):
    """RFC 6749 sections 10.3 and 10.4: tokens stay confidential, logs included."""
    secrets = run_flow_in_process(client, oauth_client, user)

    records = all_loggers_at_debug.records
    loggers = {record.name.split(".")[0] for record in records}
    assert {"authserver", "sqlalchemy"} <= loggers
    text = all_loggers_at_debug.text + "\n".join(map(render_record, records))
    assert secrets.find_in(text) == []


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_logs_authserver_output_contains_no_secrets(
    authserver_output, client, oauth_client, user
):
    """RFC 6749 sections 10.3 and 10.4: tokens stay confidential, logs included."""
    secrets = run_flow_in_process(client, oauth_client, user)

    output = authserver_output.getvalue()
    assert "token_refreshed" in output
    assert "refresh_token_reused" in output
    assert secrets.find_in(output) == []


def test_logs_server_output_contains_no_secrets(config, tmp_path, oauth_client, user):
    """RFC 6749 sections 10.3 and 10.4: tokens stay confidential, logs included."""
    log_path = tmp_path / "server.log"

    with live_server(config, workers=1, log_path=log_path) as base_url:
        session = requests.Session()

        def post(path, data, headers):
            response = session.post(
                base_url + path, data=data, headers=headers, timeout=10
            )
            return response.status_code, response.json()

        def get(path, headers):
            response = session.get(base_url + path, headers=headers, timeout=10)
            return response.status_code, response.json()

        secrets = run_flow(post, get, oauth_client, user)

    output = log_path.read_text(encoding="utf-8")
    assert "token_refreshed" in output
    assert secrets.find_in(output) == []


def dump_database(database_url: str) -> str:
    """Return an SQL dump of every table and row in the database."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as connection:
            return "\n".join(connection.iterdump())

    plain_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    result = subprocess.run(
        [str(PG_DUMP), "--data-only", "--inserts", plain_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_database_dump_contains_no_secrets(config, client, oauth_client, user):
    """RFC 6819 section 5.1.4.1.3: tokens and secrets are stored as digests."""
    secrets = run_flow_in_process(client, oauth_client, user)

    dump = dump_database(config["AUTHSERVER_DATABASE_URL"])

    assert oauth_client.client_id in dump
    assert user in dump
    assert secrets.find_in(dump) == []
