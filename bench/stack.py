"""The stack under test: a database, the admin command and a gunicorn server.

Every server binds to 127.0.0.1 on a free port, runs in its own session
and is stopped by its process id together with its workers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN_CONFIG = REPO / "config" / "gunicorn.conf.py"

POSTGRES_SERVER_URL = os.environ.get(
    "AUTHSERVER_BENCH_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
)
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20

USERNAME = "bench-user"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Variant:
    """A gunicorn worker setup: the worker class and threads per worker."""

    name: str
    worker_class: str
    threads: int


@dataclass(frozen=True)
class Seed:
    """The client and user that the seed step registered."""

    client_id: str
    client_secret: str
    client_row_id: int
    user_row_id: int


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(settings: Mapping[str, str]) -> dict[str, str]:
    """Return this process's environment with only ``settings`` as AUTHSERVER_*."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AUTHSERVER_")
    }
    env.update(settings)
    return env


def run_cli(settings: Mapping[str, str], *args: str, input: str | None = None) -> str:
    """Run ``authserver ARGS`` and return its output.

    :raises RuntimeError: the command failed; the message has its output.
    """
    result = subprocess.run(
        [str(BIN / "authserver"), *args],
        check=False,
        env=server_env(settings),
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"'authserver {' '.join(args)}' failed with status"
            f" {result.returncode}: {result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout


@contextmanager
def create_database(backend: str, directory: Path) -> Iterator[str]:
    """Create an empty database for one benchmark run; yield its URL.

    A PostgreSQL database gets a unique name and is dropped afterwards; a
    SQLite file goes into ``directory``.
    """
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'bench.db'}"
        return

    name = f"authserver_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_SERVER_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )
        admin.dispose()


def migrate_and_seed(settings: Mapping[str, str], database_url: str) -> Seed:
    """Migrate with ``authserver db upgrade``; register a client and a user."""
    run_cli(settings, "db", "upgrade")
    output = run_cli(
        settings,
        "clients",
        "create",
        "--name",
        "bench",
        "--grant-type",
        "password",
        "--grant-type",
        "refresh_token",
        "--scope",
        "profile",
        "--introspect",
        "--json",
    )
    client = json.loads(output)
    run_cli(settings, "users", "create", USERNAME, "--password-stdin", input=PASSWORD)

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        client_row_id = connection.scalar(
            sa.text("SELECT id FROM clients WHERE client_id = :id"),
            {"id": client["client_id"]},
        )
        user_row_id = connection.scalar(
            sa.text("SELECT id FROM users WHERE username = :name"),
            {"name": USERNAME},
        )
    engine.dispose()
    return Seed(
        client["client_id"], client["client_secret"], client_row_id, user_row_id
    )


@dataclass
class Server:
    """A running gunicorn master and the URL it serves."""

    process: subprocess.Popen[bytes]
    base_url: str

    def get_worker_pids(self) -> list[int]:
        """Return the process ids of the master's worker processes."""
        return get_child_pids(self.process.pid)


@contextmanager
def run_server(
    settings: Mapping[str, str], variant: Variant, workers: int, log_path: Path
) -> Iterator[Server]:
    """Serve authserver with gunicorn and config/gunicorn.conf.py."""
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "--config",
        str(GUNICORN_CONFIG),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        variant.worker_class,
        "--threads",
        str(variant.threads),
        "--timeout",
        "120",
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            env=server_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            _wait_until_up(server, workers, log_path)
            yield server
        finally:
            _stop(process)


def _wait_until_up(server: Server, workers: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with status {server.process.returncode};"
                f" see {log_path}."
            )
        try:
            response = requests.get(server.base_url + "/healthz", timeout=2)
            if response.status_code == 200 and len(server.get_worker_pids()) == workers:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start in time; see {log_path}.")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # gunicorn runs in its own session whose id is its process id, so this
    # stops the master and its workers and nothing else.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def get_child_pids(parent_pid: int) -> list[int]:
    """Return the ids of the processes whose parent is ``parent_pid``."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in brackets may contain spaces, so the fields
        # are counted from the closing bracket.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent_pid:
            children.append(int(entry.name))
    return sorted(children)


def get_peak_rss_kib(pid: int) -> int | None:
    """Return the peak resident set size (VmHWM) of ``pid`` in KiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def make_work_directory() -> Path:
    """Create a directory for the run's SQLite files, token files and logs."""
    return Path(tempfile.mkdtemp(prefix="authserver-bench-"))
