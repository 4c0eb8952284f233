"""Sustained mixed load with a worker killed mid-run, then invariant checks.

Starts gunicorn with several workers on a PostgreSQL database of its own,
sends password grants, refreshes, API calls, introspections and
revocations from many concurrent clients, kills one worker with SIGKILL
during the run, and afterwards checks that:

- no request got a 5xx or 4xx response (requests in flight on the killed
  worker lose their connection instead, and are counted apart);
- every token whose issue was answered 200 is in the database;
- every such token is still usable unless it was revoked, rotated out or
  expired: each surviving access token at /api/me, and the newest refresh
  token of each surviving chain at the token endpoint;
- no token family holds two live refresh tokens.

Run it for five minutes with::

    .venv/bin/python bench/load_faults.py --duration 300

It prints one JSON object with the figures and exits 1 when an
invariant fails. The test suite runs it for a few seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

BIN = Path(sys.executable).parent
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "load test password 1"
SECRET_KEY = secrets.token_urlsafe(48)


@dataclass
class Chain:
    """One token family as a client sees it."""

    access_tokens: list[str] = field(default_factory=list)
    refresh_token: str | None = None
    revoked: bool = False
    broken: bool = False


@dataclass
class Totals:
    """Counters shared by the client threads."""

    statuses: Counter[str] = field(default_factory=Counter)
    connection_errors: list[float] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)
    issued_digests: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, status: int) -> None:
        with self.lock:
            self.statuses[f"{operation} {status}"] += 1
            self.statuses[f"all {status // 100}xx"] += 1

    def record_error(self, operation: str) -> None:
        with self.lock:
            self.statuses[f"{operation} connection error"] += 1
            self.connection_errors.append(time.monotonic())

    def record_issue(self, body: dict[str, Any]) -> None:
        with self.lock:
            for key in ("access_token", "refresh_token"):
                if key in body:
                    self.issued_digests.add(digest(body[key]))


def digest(value: str) -> str:
    """Return the keyed digest under which the server stores ``value``."""
    data = value.encode("utf-8")
    return hmac.new(SECRET_KEY.encode("utf-8"), data, hashlib.sha256).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "authserver"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def worker_pids(master_pid: int) -> list[int]:
    """Return the process ids whose parent is ``master_pid``."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The parent id is the second field after the parenthesised name.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == master_pid:
            children.append(int(entry.name))
    return children


class Client(threading.Thread):
    """One client: sign in, then use, refresh, introspect and revoke."""

    def __init__(
        self,
        base_url: str,
        credentials: dict[str, str],
        introspector: dict[str, str],
        username: str,
        deadline: float,
        totals: Totals,
        seed: int,
    ) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.auth = (credentials["client_id"], credentials["client_secret"])
        self.introspector = (introspector["client_id"], introspector["client_secret"])
        self.username = username
        self.deadline = deadline
        self.totals = totals
        self.random = random.Random(seed)
        self.http = requests.Session()

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            chain = self.sign_in()
            if chain is None:
                continue
            for _ in range(self.random.randint(3, 12)):
                if time.monotonic() >= self.deadline or chain.broken:
                    break
                self.step(chain)
            if not chain.broken and self.random.random() < 0.3:
                self.revoke(chain)

    def step(self, chain: Chain) -> None:
        choice = self.random.random()
        if choice < 0.5:
            self.call("api", "GET", "/api/me", headers=self.bearer(chain))
        elif choice < 0.8:
            self.refresh(chain)
        else:
            self.call(
                "introspect",
                "POST",
                "/oauth/introspect",
                data={"token": chain.access_tokens[-1]},
                auth=self.introspector,
            )

    def sign_in(self) -> Chain | None:
        form = {"grant_type": "password", "username": self.username}
        form["password"] = PASSWORD
        response = self.call(
            "password", "POST", "/oauth/token", data=form, auth=self.auth
        )
        if response is None or response.status_code != 200:
            return None
        body = response.json()
        self.totals.record_issue(body)
        chain = Chain([body["access_token"]], body["refresh_token"])
        with self.totals.lock:
            self.totals.chains.append(chain)
        return chain

    def refresh(self, chain: Chain) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": chain.refresh_token}
        response = self.call(
            "refresh", "POST", "/oauth/token", data=form, auth=self.auth
        )
        if response is None:
            # The response was lost, so whether the token rotated is unknown;
            # the chain is left alone from here on.
            chain.broken = True
            return
        if response.status_code == 200:
            body = response.json()
            self.totals.record_issue(body)
            chain.access_tokens.append(body["access_token"])
            chain.refresh_token = body["refresh_token"]
        else:
            chain.broken = True

    def revoke(self, chain: Chain) -> None:
        form = {"token": chain.refresh_token or "", "token_type_hint": "refresh_token"}
        response = self.call(
            "revoke", "POST", "/oauth/revoke", data=form, auth=self.auth
        )
        if response is not None and response.status_code == 200:
            chain.revoked = True
        else:
            chain.broken = True

    def bearer(self, chain: Chain) -> dict[str, str]:
        return {"Authorization": "Bearer " + chain.access_tokens[-1]}

    def call(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(
                method, self.base_url + path, timeout=30, **kwargs
            )
        except requests.RequestException:
            self.totals.record_error(operation)
            return None
        self.totals.record(operation, response.status_code)
        return response


def create_database() -> tuple[str, str]:
    name = f"authserver_load_{secrets.token_hex(4)}"
    admin = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.make_url(SERVER_URL).set(database=name)
    return name, url.render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    admin = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def set_up(env: dict[str, str], users: int) -> tuple[dict[str, str], dict[str, str]]:
    run_cli(env, "db", "upgrade")
    client = json.loads(
        run_cli(
            env,
            *("clients", "create", "--name", "load", "--scope", "profile", "--json"),
            *("--grant-type", "password", "--grant-type", "refresh_token"),
        )
    )
    introspector = json.loads(
        run_cli(
            env,
            *("clients", "create", "--name", "rs", "--scope", "profile", "--json"),
            *("--grant-type", "client_credentials", "--introspect"),
        )
    )
    for index in range(users):
        run_cli(
            env, "users", "create", f"user{index}", "--password-stdin", stdin=PASSWORD
        )
    return client, introspector


def start_server(
    env: dict[str, str], port: int, workers: int
) -> subprocess.Popen[bytes]:
    command = [
        str(BIN / "gunicorn"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        *("--threads", "4", "--timeout", "60", "--no-control-socket"),
        "authserver.wsgi:app",
    ]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("The server did not start within 60 seconds.")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def check_database(url: str, totals: Totals) -> dict[str, Any]:
    engine = sa.create_engine(url)
    digests = list(totals.issued_digests)
    found: set[str] = set()
    with engine.connect() as connection:
        for start in range(0, len(digests), 1000):
            batch = digests[start : start + 1000]
            rows = connection.execute(
                sa.text(
                    "SELECT access_token_digest, refresh_token_digest FROM tokens"
                    " WHERE access_token_digest = ANY(:d)"
                    " OR refresh_token_digest = ANY(:d)"
                ),
                {"d": batch},
            )
            for access_digest, refresh_digest in rows:
                found.update({access_digest, refresh_digest})
        double_live = connection.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT family_id FROM tokens"
                " WHERE refresh_token_digest IS NOT NULL AND rotated_at IS NULL"
                " AND revoked_at IS NULL GROUP BY family_id"
                " HAVING count(*) > 1) AS doubled"
            )
        ).scalar_one()
    engine.dispose()
    missing = len(set(digests) - found)
    return {
        "tokens_issued": len(digests),
        "tokens_missing_from_database": missing,
        "families_with_two_live_refresh_tokens": int(double_live),
    }


def check_usable(
    base_url: str, auth: tuple[str, str], totals: Totals
) -> dict[str, Any]:
    """Use every surviving access token and the newest refresh token of each chain."""
    http = requests.Session()
    counts: Counter[str] = Counter()
    for chain in totals.chains:
        if chain.revoked or chain.broken:
            continue
        for token in chain.access_tokens:
            headers = {"Authorization": "Bearer " + token}
            status = http.get(
                base_url + "/api/me", headers=headers, timeout=30
            ).status_code
            counts["access_ok" if status == 200 else "access_failed"] += 1
        form = {"grant_type": "refresh_token", "refresh_token": chain.refresh_token}
        response = http.post(
            base_url + "/oauth/token", data=form, auth=auth, timeout=30
        )
        counts["refresh_ok" if response.status_code == 200 else "refresh_failed"] += 1
    return dict(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="Seconds of load.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent clients.")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers.")
    parser.add_argument("--users", type=int, default=8, help="Users to sign in as.")
    parser.add_argument(
        "--bcrypt-rounds",
        type=int,
        default=4,
        help="bcrypt cost; the default keeps password grants from dominating.",
    )
    arguments = parser.parse_args()

    name, url = create_database()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(
        AUTHSERVER_DATABASE_URL=url,
        AUTHSERVER_SECRET_KEY=SECRET_KEY,
        AUTHSERVER_BCRYPT_ROUNDS=str(arguments.bcrypt_rounds),
        AUTHSERVER_RATELIMIT_ENABLED="false",
        AUTHSERVER_LOCKOUT_THRESHOLD="1000000",
        AUTHSERVER_LOG_LEVEL="WARNING",
    )
    server = None
    try:
        client, introspector = set_up(env, arguments.users)
        server = start_server(env, port, arguments.workers)
        report = run_load(server, port, client, introspector, arguments)
        report.update(check_database(url, report.pop("totals")))
    finally:
        if server is not None:
            stop_server(server)
        drop_database(name)

    report["invariants_held"] = (
        report["five_hundreds"] == 0
        and report["four_hundreds"] == 0
        and report["connection_errors_outside_kill_window"] == 0
        and report["tokens_missing_from_database"] == 0
        and report["families_with_two_live_refresh_tokens"] == 0
        and report["usable"].get("access_failed", 0) == 0
        and report["usable"].get("refresh_failed", 0) == 0
    )
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["invariants_held"] else 1


def run_load(
    server: subprocess.Popen[bytes],
    port: int,
    client: dict[str, str],
    introspector: dict[str, str],
    arguments: argparse.Namespace,
) -> dict[str, Any]:
    base_url = f"http://127.0.0.1:{port}"
    totals = Totals()
    started = time.monotonic()
    deadline = started + arguments.duration
    threads = [
        Client(
            base_url,
            client,
            introspector,
            f"user{index % arguments.users}",
            deadline,
            totals,
            seed=index,
        )
        for index in range(arguments.clients)
    ]
    for thread in threads:
        thread.start()

    time.sleep(arguments.duration / 2)
    victim = worker_pids(server.pid)[0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    for thread in threads:
        thread.join(timeout=arguments.duration + 120)
    elapsed = time.monotonic() - started

    # Requests in flight on the killed worker lose their connection; any
    # other connection error would be a failure of the server.
    window = 5.0
    outside = [t for t in totals.connection_errors if abs(t - killed_at) > window]
    auth = (client["client_id"], client["client_secret"])
    usable = check_usable(base_url, auth, totals)
    sent = sum(v for k, v in totals.statuses.items() if not k.startswith("all "))
    return {
        "duration_seconds": round(elapsed, 1),
        "clients": arguments.clients,
        "workers": arguments.workers,
        "killed_worker_pid": victim,
        "requests_sent": sent,
        "requests_per_second": round(sent / elapsed, 1),
        "answers": dict(sorted(totals.statuses.items())),
        "five_hundreds": totals.statuses.get("all 5xx", 0),
        # Every request of the mix is valid, so any 4xx is a failure too.
        "four_hundreds": totals.statuses.get("all 4xx", 0),
        "connection_errors": len(totals.connection_errors),
        "connection_errors_outside_kill_window": len(outside),
        "chains": len(totals.chains),
        "usable": usable,
        "totals": totals,
    }


if __name__ == "__main__":
    sys.exit(main())
