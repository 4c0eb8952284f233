"""Sample a worker with py-spy under load and list where its time goes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# py-spy writes a frame as "function (path:line)"; the line is dropped so
# that samples from different lines of one function add up.
REPO_PREFIX = str(Path(__file__).resolve().parent.parent) + "/"
FRAME_PATTERN = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")

PY_SPY_HINT = (
    "py-spy is not installed in this environment. Install it with"
    " '.venv/bin/pip install py-spy', or run without --profile."
)


@dataclass(frozen=True)
class Share:
    """The share of samples in which a function was on the stack."""

    function: str
    inclusive: float
    own: float


def find_py_spy() -> str:
    """Return the path of py-spy, preferring this virtual environment's.

    :raises RuntimeError: py-spy is not installed; the message gives the
        install command.
    """
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise RuntimeError(PY_SPY_HINT)
    return found


def start_profiler(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``output`` (collapsed stacks).

    Sampling is non-blocking, so the worker is never paused. A profiled
    run still measures lower figures than a plain one, because py-spy
    takes CPU time from the same cores.
    """
    command = [
        find_py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "200",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


#: The frame of every request in the application. Samples without it are
#: gunicorn's own work: accepting, parsing, writing and closing.
APPLICATION_FRAME = "Flask.wsgi_app "


def summarise(path: Path, limit: int = 25, within: str = "") -> list[Share]:
    """Return the functions with the largest inclusive share of samples.

    :param within: count only samples with a frame starting with this, so
        that the shares are of that function's time.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(frame) for frame in stack.split(";")]
        if within and not any(frame.startswith(within) for frame in frames):
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if total == 0:
        return []
    return [
        Share(name, samples / total, own[name] / total)
        for name, samples in inclusive.most_common(limit)
    ]


def format_shares(shares: list[Share]) -> str:
    """Return a table of ``shares`` for the terminal or RESULTS.md."""
    lines = [f"{'inclusive':>9}  {'own':>6}  function"]
    for share in shares:
        lines.append(f"{share.inclusive:9.1%}  {share.own:6.1%}  {share.function}")
    return "\n".join(lines)


def _name(frame: str) -> str:
    match = FRAME_PATTERN.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match.group("path")
    # Keep the path from the package on, so that lines stay short.
    for marker in ("site-packages/", REPO_PREFIX, "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('function')} ({path})"
