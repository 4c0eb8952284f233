"""Run the real server and the real ``authserver`` command in subprocesses.

Servers bind to 127.0.0.1 on a free port and are stopped by process id.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 30


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(config: Mapping[str, Any]) -> dict[str, str]:
    """Return an environment that passes ``config`` as AUTHSERVER_* variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AUTHSERVER_")
    }
    for name, value in config.items():
        if isinstance(value, dict):
            env[name] = "\n".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
        elif isinstance(value, bool):
            env[name] = "true" if value else "false"
        else:
            env[name] = str(value)
    return env


def run_cli(
    config: Mapping[str, Any], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``authserver ARGS`` with ``config`` and return the finished process."""
    return subprocess.run(
        [str(BIN / "authserver"), *args],
        env=server_env(config),
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def live_server(
    config: Mapping[str, Any],
    *,
    workers: int = 2,
    threads: int = 1,
    port: int | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Serve authserver with gunicorn; yield its base URL.

    :param workers: worker processes; several exercise cross-process rules.
    :param threads: threads per worker; above 1 selects gthread workers.
    """
    port = port or free_port()
    command = [
        str(BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "60",
        # Parallel test servers would share gunicorn's default socket path.
        "--no-control-socket",
        "authserver.wsgi:app",
    ]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        command,
        env=server_env(config),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url)
        yield base_url
    finally:
        stop_process(process)
        if log_path:
            log.close()  # type: ignore[union-attr]


def wait_until_up(process: subprocess.Popen[bytes], base_url: str) -> None:
    """Wait until ``base_url``/healthz answers 200, or raise RuntimeError."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The process exited with status {process.returncode}.")
        try:
            if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        # Workers that are still booting let the connection open but time
        # out the read; keep polling until the deadline.
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"The server at {base_url} did not start in time.")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session, with all its children."""
    if process.poll() is not None:
        return
    # gunicorn runs in its own session, so its workers stop with it.
    # SIGINT is gunicorn's quick shutdown; SIGTERM would wait for workers.
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
