"""Run wrk with one of the Lua scripts in bench/ and read its result line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LUA_DIRECTORY = Path(__file__).resolve().parent
RESULT_PREFIX = "BENCH_RESULT "

#: How long wrk waits for one response before it counts a timeout. Password
#: grants queue behind bcrypt, so this is far above wrk's 2 s default.
WRK_TIMEOUT_SECONDS = 30

INSTALL_HINT = (
    "wrk is not installed or not on PATH. Install it with"
    " 'sudo apt-get install -y wrk' on Debian or Ubuntu, 'sudo dnf install wrk'"
    " on Fedora or 'brew install wrk' on macOS, then run the benchmark again."
)


class WrkError(Exception):
    """wrk failed or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    """The counts and latencies of one wrk run."""

    requests: int
    duration_seconds: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    latency_us: dict[str, float]

    def count(self, expected: Iterable[int]) -> int:
        """Return the number of responses with one of the ``expected`` statuses."""
        return sum(self.statuses.get(status, 0) for status in expected)

    def rate(self, expected: Iterable[int]) -> float:
        """Return the ``expected`` responses per second."""
        return self.count(expected) / self.duration_seconds

    def unexpected(self, expected: Iterable[int]) -> int:
        """Return the responses with another status, and socket errors."""
        answered = sum(self.statuses.values())
        others = answered - self.count(expected)
        failed_sockets = sum(
            count for name, count in self.socket_errors.items() if name != "timeout"
        )
        return others + failed_sockets


def check_wrk() -> str:
    """Return the path of wrk.

    :raises WrkError: wrk is not installed; the message gives the install
        commands.
    """
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(INSTALL_HINT)
    return path


def run_wrk(
    url: str,
    script: str,
    *,
    connections: int,
    threads: int,
    duration_seconds: int,
    env: Mapping[str, str],
) -> WrkResult:
    """Load ``url`` with wrk and ``bench/SCRIPT`` and return the result.

    :param env: variables the Lua script reads, such as ``BENCH_TOKEN``.
    :raises WrkError: wrk failed or printed no result.
    """
    command = [
        check_wrk(),
        "--threads",
        str(threads),
        "--connections",
        str(connections),
        "--duration",
        f"{duration_seconds}s",
        "--timeout",
        f"{WRK_TIMEOUT_SECONDS}s",
        "--script",
        str(LUA_DIRECTORY / script),
        url,
    ]
    full_env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIRECTORY), **env}
    result = subprocess.run(
        command,
        check=False,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=duration_seconds + WRK_TIMEOUT_SECONDS + 30,
    )
    if result.returncode != 0:
        raise WrkError(f"wrk failed with status {result.returncode}: {result.stderr}")
    return parse_result(result.stdout)


def parse_result(output: str) -> WrkResult:
    """Read the JSON line that bench/common.lua prints when wrk is done."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line[len(RESULT_PREFIX) :])
            return WrkResult(
                requests=data["requests"],
                duration_seconds=data["duration_us"] / 1e6,
                statuses={int(k): v for k, v in data["statuses"].items()},
                socket_errors=data["socket_errors"],
                latency_us=data["latency_us"],
            )
    raise WrkError(f"wrk printed no {RESULT_PREFIX.strip()} line:\n{output}")
