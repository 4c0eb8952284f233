"""A slow or unreachable database: 503 within seconds, then recovery.

A small TCP proxy sits between a live server and PostgreSQL. The test
cuts it (open connections are closed and new ones reset), stalls it
(connections are accepted but no byte is forwarded either way) and
restores it, and checks that the server responds with 503 with a JSON error
within a few seconds meanwhile and recovers by itself afterwards.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.conftest import base_config
from tests.conftest import create_database
from tests.conftest import register_client
from tests.conftest import register_user
from tests.live import live_server

POSTGRES_ADDRESS = ("127.0.0.1", 5432)
DATABASE_TIMEOUT_SECONDS = 2
#: The maximum time a request may take while the database is away: the
#: watchdog limit of authserver.db (twice the database timeout plus one
#: second), one reconnect attempt (the database timeout) and a second of slack.
MAX_FAULT_SECONDS = 3 * DATABASE_TIMEOUT_SECONDS + 2
CLIENT_TIMEOUT_SECONDS = 30
RECOVERY_SECONDS = 20
POLL_SECONDS = 0.05

FORWARD = "forward"
STALL = "stall"
CUT = "cut"


class TcpProxy:
    """Forward 127.0.0.1:port to ``target``, with faults on demand.

    Each connection gets one thread that copies bytes both ways. In stall
    mode the threads stop reading, so bytes wait in the kernel buffers
    and both ends see a peer that is alive but silent.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = FORWARD
        self._lock = threading.Lock()
        self._connections: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self.port = self._listen(0)

    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        listener.settimeout(POLL_SECONDS * 4)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        bound: int = listener.getsockname()[1]
        return bound

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                downstream, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == CUT:
                _reset(downstream)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._connections.append((downstream, upstream))
            threading.Thread(
                target=self._pump, args=(downstream, upstream), daemon=True
            ).start()

    def _pump(self, downstream: socket.socket, upstream: socket.socket) -> None:
        peers = {downstream: upstream, upstream: downstream}
        try:
            while not self._stopped.is_set():
                if self.mode == STALL:
                    time.sleep(POLL_SECONDS)
                    continue
                readable, _, _ = select.select(list(peers), [], [], POLL_SECONDS)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        except OSError:
            return
        finally:
            downstream.close()
            upstream.close()

    def _close_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for downstream, upstream in connections:
            for sock in (downstream, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def cut(self) -> None:
        """Close every connection and reset new ones at once."""
        self.mode = CUT
        self._close_connections()

    def stall(self) -> None:
        """Keep connections open but forward nothing, old or new."""
        self.mode = STALL

    def restore(self) -> None:
        """Forward again; stalled connections resume."""
        self.mode = FORWARD

    def close(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._close_connections()


def _reset(sock: socket.socket) -> None:
    # A zero linger time makes close() send RST, as a refused port would.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass
class Target:
    """A live server whose database connections pass through ``proxy``."""

    base_url: str
    proxy: TcpProxy
    client: RegisteredClient
    username: str

    def post_token(self) -> requests.Response:
        form = {"grant_type": "password", "username": self.username}
        form["password"] = PASSWORD
        return requests.post(
            self.base_url + "/oauth/token",
            data=form,
            headers=self.client.basic,
            timeout=CLIENT_TIMEOUT_SECONDS,
        )

    def get_me(self, access_token: str) -> requests.Response:
        return requests.get(
            self.base_url + "/api/me",
            headers={"Authorization": "Bearer " + access_token},
            timeout=CLIENT_TIMEOUT_SECONDS,
        )


@pytest.fixture
def target(tmp_path) -> Iterator[Target]:
    with create_database("postgresql", tmp_path) as database_url:
        config = base_config(database_url)
        registered = register_client(config)
        username = register_user(config)

        proxy = TcpProxy(POSTGRES_ADDRESS)
        url = sa.make_url(database_url).set(host="127.0.0.1", port=proxy.port)
        config["AUTHSERVER_DATABASE_URL"] = url.render_as_string(hide_password=False)
        config["AUTHSERVER_DATABASE_TIMEOUT_SECONDS"] = DATABASE_TIMEOUT_SECONDS
        try:
            with live_server(config, workers=1, threads=2) as base_url:
                yield Target(base_url, proxy, registered, username)
        finally:
            proxy.close()


def timed(call: Any, *args: Any) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = call(*args)
    return response, time.monotonic() - started


def assert_unavailable(response: requests.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "temporarily_unavailable"
    assert seconds < MAX_FAULT_SECONDS, seconds


def wait_for_recovery(target: Target) -> requests.Response:
    """Return the first successful token response after a fault."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    response = target.post_token()
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        response = target.post_token()
    return response


def get_access_token(target: Target) -> str:
    response = target.post_token()
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_database_faults_cut_token_answers_503(target):
    get_access_token(target)
    target.proxy.cut()

    response, seconds = timed(target.post_token)

    assert_unavailable(response, seconds)


def test_database_faults_cut_api_answers_503(target):
    token = get_access_token(target)
    target.proxy.cut()

    response, seconds = timed(target.get_me, token)

    assert_unavailable(response, seconds)


def test_database_faults_cut_readyz_answers_503(target):
    get_access_token(target)
    target.proxy.cut()

    started = time.monotonic()
    response = requests.get(target.base_url + "/readyz", timeout=30)

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert time.monotonic() - started < MAX_FAULT_SECONDS


def test_database_faults_stall_token_answers_503(target):
    get_access_token(target)
    target.proxy.stall()

    response, seconds = timed(target.post_token)

    assert_unavailable(response, seconds)


def test_database_faults_stall_api_answers_503(target):
    token = get_access_token(target)
    target.proxy.stall()

    response, seconds = timed(target.get_me, token)

    assert_unavailable(response, seconds)


def test_database_faults_stall_of_new_connections_answers_503(target):
    get_access_token(target)
    # Cutting first empties the pool, so the next request must connect
    # anew, and the stalled proxy then never completes the handshake.
    target.proxy.cut()
    target.proxy.stall()

    response, seconds = timed(target.post_token)

    assert_unavailable(response, seconds)


def test_database_faults_recover_after_cut(target):
    token = get_access_token(target)
    target.proxy.cut()
    assert target.post_token().status_code == 503
    assert target.get_me(token).status_code == 503

    target.proxy.restore()

    assert wait_for_recovery(target).status_code == 200
    assert target.get_me(token).status_code == 200


def test_database_faults_recover_after_stall(target):
    token = get_access_token(target)
    target.proxy.stall()
    assert target.post_token().status_code == 503
    assert target.get_me(token).status_code == 503

    target.proxy.restore()

    assert wait_for_recovery(target).status_code == 200
    assert target.get_me(token).status_code == 200
