"""A live authserver with a user and clients, for tests that talk HTTP.

Starting gunicorn costs seconds, so test modules share one server through
a module-scoped fixture built on :func:`start_authserver`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.conftest import base_config
from tests.live import free_port
from tests.live import live_server
from tests.live import run_cli

USERNAME = "alice"


@dataclass
class LiveAuthserver:
    """A running authserver: its URL, settings and a user who can sign in."""

    url: str
    config: dict[str, Any]
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    @property
    def revocation_url(self) -> str:
        return self.url + "/oauth/revoke"

    @property
    def introspection_url(self) -> str:
        return self.url + "/oauth/introspect"

    @property
    def jwks_url(self) -> str:
        return self.url + "/oauth/jwks"

    def create_client(
        self,
        *args: str,
        grant_types: tuple[str, ...] = ("password", "refresh_token"),
        scope: str = "profile email",
    ) -> RegisteredClient:
        """Register a client with ``authserver clients create``."""
        command = ["clients", "create", "--name", "live", "--scope", scope, "--json"]
        for grant_type in grant_types:
            command += ["--grant-type", grant_type]
        result = run_cli(self.config, *command, *args)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        return RegisteredClient(data["client_id"], data["client_secret"])

    def run(self, *args: str) -> str:
        """Run an ``authserver`` command and return its output."""
        result = run_cli(self.config, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout


@contextmanager
def start_authserver(
    template: Path, directory: Path, **settings: Any
) -> Iterator[LiveAuthserver]:
    """Serve authserver on a copy of the migrated SQLite ``template``.

    The issuer is the server's own URL, so that JWT validators can check
    ``iss`` against it.
    """
    database = directory / "authserver.db"
    shutil.copy(template, database)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = base_config(f"sqlite:///{database}")
    config["AUTHSERVER_ISSUER"] = url
    config.update(settings)

    result = run_cli(
        config, "users", "create", USERNAME, "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.returncode == 0, result.stderr
    with live_server(config, workers=1, threads=4, port=port) as base_url:
        yield LiveAuthserver(base_url, config)
