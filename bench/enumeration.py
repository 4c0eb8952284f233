"""Compare the response time of a wrong password and of an unknown username.

A password grant for an unknown username must take as long as one with a
wrong password, or the timing reveals which accounts exist. The
script builds an application on a temporary SQLite database, registers a
client and a user, then sends the two kinds of failing request in
alternation through Flask's test client and prints the median of each.

Run from the repository root::

    python bench/enumeration.py --requests 30 --rounds 12
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from alembic import command
from flask import Flask
from flask.testing import FlaskClient

from authserver import create_app
from authserver.migrations import get_alembic_config

USERNAME = "alice"
UNKNOWN_USERNAME = "nobody"
PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "wrong horse battery staple"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=30,
        help="requests per side (default: 30)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=12,
        help="AUTHSERVER_BCRYPT_ROUNDS, the bcrypt cost (default: 12)",
    )
    return parser.parse_args()


def create_bench_app(database: Path, rounds: int, requests: int) -> Flask:
    """Create an application on a migrated, empty SQLite database."""
    app = create_app(
        {
            "AUTHSERVER_DATABASE_URL": f"sqlite:///{database}",
            "AUTHSERVER_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTHSERVER_BCRYPT_ROUNDS": rounds,
            "AUTHSERVER_RATELIMIT_ENABLED": False,
            # The server rejects a locked username without a bcrypt check, so the
            # lock must not start during the measurement.
            "AUTHSERVER_LOCKOUT_THRESHOLD": 2 * requests + 10,
            "AUTHSERVER_LOG_LEVEL": "ERROR",
        }
    )
    with app.app_context():
        command.upgrade(get_alembic_config(app), "head")
    return app


def register(app: Flask) -> tuple[str, str]:
    """Create the user and a client; return the client's id and secret."""
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", USERNAME, "--password-stdin"], input=PASSWORD + "\n"
    )
    if result.exit_code != 0:
        raise RuntimeError(f"Creating the user failed: {result.output}")

    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "bench",
            "--scope",
            "profile",
            "--grant-type",
            "password",
            "--json",
        ]
    )
    if result.exit_code != 0:
        raise RuntimeError(f"Creating the client failed: {result.output}")
    data = json.loads(result.output)
    return data["client_id"], data["client_secret"]


def time_sign_in(
    client: FlaskClient, credentials: tuple[str, str], username: str
) -> float:
    """Send one failing password grant; return its duration in seconds."""
    data = {
        "grant_type": "password",
        "username": username,
        "password": WRONG_PASSWORD,
        "client_id": credentials[0],
        "client_secret": credentials[1],
    }
    start = time.perf_counter()
    response = client.post("/oauth/token", data=data)
    elapsed = time.perf_counter() - start
    if response.status_code != 400:
        raise RuntimeError(f"Expected 400, got {response.status_code}.")
    return elapsed


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as directory:
        app = create_bench_app(Path(directory) / "bench.db", args.rounds, args.requests)
        credentials = register(app)
        client = app.test_client()

        # The first unknown username creates the dummy hash; keep that
        # one-time cost out of the figures.
        time_sign_in(client, credentials, USERNAME)
        time_sign_in(client, credentials, UNKNOWN_USERNAME)

        wrong: list[float] = []
        unknown: list[float] = []
        for _ in range(args.requests):
            wrong.append(time_sign_in(client, credentials, USERNAME))
            unknown.append(time_sign_in(client, credentials, UNKNOWN_USERNAME))
        app.extensions["authserver.engine"].dispose()

    wrong_ms = statistics.median(wrong) * 1000
    unknown_ms = statistics.median(unknown) * 1000
    print(f"bcrypt cost {args.rounds}, {args.requests} requests per side")
    print(f"{'wrong password':<16} {'unknown user':<16} ratio unknown/wrong")
    print(f"{wrong_ms:>11.1f} ms {unknown_ms:>13.1f} ms  {unknown_ms / wrong_ms:.3f}")


if __name__ == "__main__":
    main()
