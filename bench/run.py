"""Benchmark authserver under gunicorn and compare each figure to a baseline.

Usage::

    .venv/bin/python bench/run.py [--quick] [--duration S]
        [--backends sqlite,postgresql] [--profile DIR]

For each database backend the script creates a database, migrates it with
``authserver db upgrade``, registers a client and a user with the admin
command and starts gunicorn with ``config/gunicorn.conf.py``, once with
sync workers and once with threaded (gthread) workers. wrk, a separate
process, loads the server on 127.0.0.1 with the Lua scripts in bench/.
Every figure is divided by a baseline measured in the same run on the
same stack, so that the ratios describe the code rather than the
machine. bench/README.md lists the cases and their targets.

wrk must be installed (``sudo apt-get install -y wrk`` on Debian).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path

import requests
import sqlalchemy as sa

import load
import profiles
import stack
import table_growth

BACKENDS = ("sqlite", "postgresql")
VARIANTS = (
    stack.Variant("sync", "sync", 1),
    stack.Variant("gthread", "gthread", 4),
)
WORKERS = 2
BCRYPT_ROUNDS = 12
BCRYPT_SAMPLES = 5
SMALL_TABLE = 1_000
LARGE_TABLE = 1_000_000
QUICK_LARGE_TABLE = 100_000

#: Targets: each ratio must be at least (or, for lookup, at most) this.
TARGETS = {
    "password": 0.95,
    "me_opaque": 0.7,
    "me_jwt": 0.7,
    "me_unknown": 0.6,
    "introspect": 0.6,
    "refresh.sqlite": 0.2,
    "refresh.postgresql": 0.15,
    "lookup": 1.1,
}

# Measures one bcrypt check in a fresh process, with nothing else running
# in it: the time a worker cannot go below for one password grant.
BCRYPT_PROBE = """
import statistics, sys, time
import bcrypt
rounds, samples = int(sys.argv[1]), int(sys.argv[2])
password = b"correct horse battery staple"
hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds))
times = []
for _ in range(samples):
    start = time.perf_counter()
    bcrypt.checkpw(password, hashed)
    times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


@dataclass
class Measurement:
    """One benchmark row: a figure, its baseline and their ratio."""

    backend: str
    variant: str
    case: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    target: float | None = None
    comparison: str = ">="
    requests: int = 0
    unexpected: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    details: dict[str, object] = field(default_factory=dict)
    error: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets its target with no unexpected response."""
        if self.error:
            return False
        if self.target is None or self.ratio is None:
            return None
        if self.unexpected:
            return False
        if self.comparison == "<=":
            return self.ratio <= self.target
        return self.ratio >= self.target


@dataclass
class Context:
    """The settings, seed and results shared by the cases of one backend."""

    options: argparse.Namespace
    backend: str
    settings: dict[str, str]
    seed: stack.Seed
    work: Path
    results: list[Measurement]


def main() -> int:
    """Run the benchmark; return the exit status."""
    options = parse_arguments()
    # A SIGTERM becomes an exception, so that every server started so far is
    # stopped and every database dropped on the way out.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        load.check_wrk()
    except load.WrkError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2

    machine = describe_machine()
    log(f"Machine: {json.dumps(machine)}")
    results: list[Measurement] = []
    work = stack.make_work_directory()
    log(f"Logs and token files: {work}")
    for backend in options.backends:
        run_backend(options, backend, work, results)

    machine["load_average_end"] = os.getloadavg()
    print_report(results, machine)
    if options.output:
        write_json_lines(Path(options.output), results, machine)
    return 0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark authserver with gunicorn and wrk on 127.0.0.1."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A short smoke run: 2 seconds per wrk run and a table of"
        f" {QUICK_LARGE_TABLE:,} tokens instead of {LARGE_TABLE:,}.",
    )
    parser.add_argument(
        "--duration",
        type=int,
        help="Seconds per wrk run (default: 5, or 2 with --quick).",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="Comma-separated database backends (default: sqlite,postgresql).",
    )
    parser.add_argument(
        "--large-table",
        type=int,
        help=f"Tokens stored for the lookup case (default: {LARGE_TABLE:,}).",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="Sample one worker with py-spy during every case and write the"
        " collapsed stacks and a summary to DIR. Profiled figures are lower.",
    )
    parser.add_argument("--output", help="Also write the JSON lines to this file.")
    options = parser.parse_args()

    options.backends = [name.strip() for name in options.backends.split(",")]
    unknown = set(options.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend {min(unknown)!r}; use sqlite or postgresql")
    if options.duration is None:
        options.duration = 2 if options.quick else 5
    if options.large_table is None:
        options.large_table = QUICK_LARGE_TABLE if options.quick else LARGE_TABLE
    if options.profile:
        try:
            profiles.find_py_spy()
        except RuntimeError as e:
            parser.error(str(e))
        Path(options.profile).mkdir(parents=True, exist_ok=True)
    return options


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_backend(
    options: argparse.Namespace,
    backend: str,
    work: Path,
    results: list[Measurement],
) -> None:
    """Run every case on one database backend."""
    directory = work / backend
    directory.mkdir()
    with stack.create_database(backend, directory) as database_url:
        settings = {
            "AUTHSERVER_DATABASE_URL": database_url,
            "AUTHSERVER_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTHSERVER_BCRYPT_ROUNDS": str(BCRYPT_ROUNDS),
            "AUTHSERVER_RATELIMIT_ENABLED": "false",
            "AUTHSERVER_LOG_LEVEL": "WARNING",
            # wrk sends up to 16 concurrent password grants for one user,
            # and the lockout counts attempts in flight, so the default
            # threshold of 5 would lock the username during the case.
            "AUTHSERVER_LOCKOUT_THRESHOLD": "1000",
        }
        log(f"{backend}: migrating and seeding")
        seed = stack.migrate_and_seed(settings, database_url)
        context = Context(options, backend, settings, seed, directory, results)
        for variant in VARIANTS:
            run_group(context, variant, run_opaque_cases)
            run_group(context, variant, run_jwt_cases)
        run_group(context, VARIANTS[1], run_lookup_cases)


def run_group(
    context: Context,
    variant: stack.Variant,
    cases: Callable[[Context, stack.Variant], None],
) -> None:
    """Run a group of cases; record a failure as a row and go on."""
    try:
        cases(context, variant)
    except (
        RuntimeError,
        OSError,
        subprocess.SubprocessError,
        requests.RequestException,
        sa.exc.SQLAlchemyError,
        load.WrkError,
    ) as e:
        name = cases.__name__.removeprefix("run_").removesuffix("_cases")
        log(f"{context.backend} {variant.name} {name}: failed: {e}")
        context.results.append(
            Measurement(
                context.backend,
                variant.name,
                name,
                0.0,
                "",
                error=f"{type(e).__name__}: {e}; logs in {context.work}",
            )
        )


@contextmanager
def serve(
    context: Context, variant: stack.Variant, name: str, **extra: str
) -> Iterator[stack.Server]:
    """Run a server for a group of cases and record its workers' peak memory."""
    settings = {**context.settings, **extra}
    log_path = context.work / f"gunicorn-{variant.name}-{name}.log"
    with stack.run_server(settings, variant, WORKERS, log_path) as server:
        yield server
        peaks = [stack.get_peak_rss_kib(pid) for pid in server.get_worker_pids()]
        known = [peak for peak in peaks if peak is not None]
        if known:
            context.results.append(
                Measurement(
                    context.backend,
                    variant.name,
                    f"peak_rss_{name}",
                    max(known) / 1024,
                    "MiB per worker (max)",
                    details={"workers_kib": known},
                )
            )


def get_connections(variant: stack.Variant) -> int:
    """Return wrk's connections: twice the requests the server can serve at once."""
    return 2 * WORKERS * variant.threads


def run_opaque_cases(context: Context, variant: stack.Variant) -> None:
    """Measure /api/me, introspection and both grants with opaque tokens."""
    connections = get_connections(variant)
    with serve(context, variant, "opaque") as server:
        # One access token for the GET cases, then one token family per
        # wrk connection for each of the two refresh runs.
        pairs = issue_tokens(server.base_url, context.seed, 1 + 2 * connections)
        access_token = pairs[0][0]
        refresh_sets = [
            [refresh for _, refresh in pairs[1 : 1 + connections]],
            [refresh for _, refresh in pairs[1 + connections :]],
        ]
        unknown_token = secrets.token_urlsafe(32)

        def run_me() -> Measurement:
            env = {"BENCH_TOKEN": access_token}
            return measure_get(context, server, variant, "me_opaque", "/api/me", env)

        def run_unknown() -> Measurement:
            env = {"BENCH_TOKEN": unknown_token}
            return measure_get(
                context, server, variant, "me_unknown", "/api/me", env, (401,)
            )

        def run_introspect() -> Measurement:
            return measure_introspect(context, server, variant, access_token)

        def run_refresh() -> Measurement:
            return measure_refresh(context, server, variant, refresh_sets.pop(0))

        for run_case in (run_me, run_unknown, run_introspect, run_refresh):
            row = measure_against_healthz(context, server, variant, run_case)
            context.results.append(row)

        context.results.append(measure_password(context, server, variant))


def run_jwt_cases(context: Context, variant: stack.Variant) -> None:
    """Measure /api/me with a JWT access token against /healthz."""
    with serve(context, variant, "jwt", AUTHSERVER_ACCESS_TOKEN_FORMAT="jwt") as server:
        access_token = issue_tokens(server.base_url, context.seed, 1)[0][0]

        def run_me() -> Measurement:
            env = {"BENCH_TOKEN": access_token}
            return measure_get(context, server, variant, "me_jwt", "/api/me", env)

        row = measure_against_healthz(context, server, variant, run_me)
        context.results.append(row)


def measure_against_healthz(
    context: Context,
    server: stack.Server,
    variant: stack.Variant,
    run_case: Callable[[], Measurement],
) -> Measurement:
    """Measure a case twice between two /healthz runs; return their ratio.

    The order baseline, case, case, baseline gives the case and its
    baseline the same mean time, so a load that other programs put on the
    machine, if it rises or falls steadily, changes both alike.
    """
    first_baseline = measure_healthz(context, server, variant)
    first = run_case()
    second = run_case()
    second_baseline = measure_healthz(context, server, variant)

    row = combine_runs(first, second)
    baseline = (first_baseline.value + second_baseline.value) / 2
    set_ratio(row, "healthz", baseline, context)
    row.details["runs_req_per_s"] = {
        "healthz": [first_baseline.value, second_baseline.value],
        row.case: [first.value, second.value],
    }
    log(f"  {row.case}: ratio {row.ratio:.2f} to healthz {baseline:.1f} req/s")
    return row


def measure_healthz(
    context: Context, server: stack.Server, variant: stack.Variant
) -> Measurement:
    return measure_get(context, server, variant, "healthz", "/healthz", {})


def combine_runs(first: Measurement, second: Measurement) -> Measurement:
    """Return one row with the mean rate and the summed counts of two runs."""
    statuses: dict[int, int] = {}
    for run in (first, second):
        for status, count in run.details["statuses"].items():  # type: ignore[attr-defined]
            statuses[status] = statuses.get(status, 0) + count
    return Measurement(
        first.backend,
        first.variant,
        first.case,
        (first.value + second.value) / 2,
        first.unit,
        requests=first.requests + second.requests,
        unexpected=first.unexpected + second.unexpected,
        latency_p50_ms=_mean(first.latency_p50_ms, second.latency_p50_ms),
        latency_p99_ms=max(first.latency_p99_ms or 0.0, second.latency_p99_ms or 0.0),
        details={"statuses": statuses},
    )


def _mean(first: float | None, second: float | None) -> float | None:
    if first is None or second is None:
        return None
    return (first + second) / 2


def run_lookup_cases(context: Context, variant: stack.Variant) -> None:
    """Measure /api/me with a small token table, then with a large one.

    Both measurements cycle through the same tokens, the first
    ``SMALL_TABLE`` inserted.
    """
    large = context.options.large_table
    engine = sa.create_engine(context.settings["AUTHSERVER_DATABASE_URL"])
    owner = table_growth.Owner(context.seed.client_row_id, context.seed.user_row_id)
    secret_key = context.settings["AUTHSERVER_SECRET_KEY"]
    try:
        table_growth.empty_token_tables(engine)
        known = table_growth.insert_tokens(
            engine, secret_key, owner, SMALL_TABLE, SMALL_TABLE
        )
        token_file = context.work / "lookup-tokens.txt"
        token_file.write_text("\n".join(known) + "\n")

        with serve(context, variant, "lookup") as server:
            small = measure_lookup(context, server, variant, token_file, engine)
            log(f"{context.backend}: inserting {large - SMALL_TABLE:,} more tokens")
            started = time.monotonic()
            table_growth.insert_tokens(
                engine, secret_key, owner, large - SMALL_TABLE, 0
            )
            log(f"{context.backend}: inserted in {time.monotonic() - started:.0f} s")
            big = measure_lookup(context, server, variant, token_file, engine)
    finally:
        engine.dispose()

    context.results.extend([small, big])
    context.results.append(lookup_measurement(context, variant, small, big))


def measure_lookup(
    context: Context,
    server: stack.Server,
    variant: stack.Variant,
    token_file: Path,
    engine: sa.Engine,
) -> Measurement:
    """Measure /api/me cycling through the tokens in the file, against /healthz."""
    rows = table_growth.count_tokens(engine)
    env = {"BENCH_TOKEN_FILE": str(token_file)}
    # One unrecorded pass reads the pages of the token table into the
    # caches, so that both sizes are measured warm.
    load.run_wrk(
        server.base_url + "/api/me",
        "tokens.lua",
        connections=get_connections(variant),
        threads=1,
        duration_seconds=2,
        env=env,
    )

    def run_me() -> Measurement:
        return measure_load(
            context,
            server,
            variant,
            f"me_{rows}_tokens",
            "/api/me",
            "tokens.lua",
            env,
            (200,),
        )

    row = measure_against_healthz(context, server, variant, run_me)
    # A table size has no target of its own; the lookup row compares two.
    row.target = None
    return row


def lookup_measurement(
    context: Context,
    variant: stack.Variant,
    small: Measurement,
    big: Measurement,
) -> Measurement:
    """Compare /api/me with the large table to /api/me with the small one.

    The ratio is the small table's throughput over the large one's, each
    first divided by the /healthz throughput measured around it, which
    removes changes in machine load between the two. Above 1 means that
    lookups got slower as the table grew.
    """
    ratio = (small.ratio or 0.0) / big.ratio if big.ratio else float("inf")
    return Measurement(
        context.backend,
        variant.name,
        "lookup",
        big.value,
        f"req/s with {context.options.large_table:,} tokens",
        baseline=f"req/s with {SMALL_TABLE:,} tokens",
        baseline_value=small.value,
        ratio=ratio,
        target=TARGETS["lookup"],
        comparison="<=",
        requests=big.requests,
        unexpected=small.unexpected + big.unexpected,
        latency_p50_ms=big.latency_p50_ms,
        latency_p99_ms=big.latency_p99_ms,
        details={
            "ratio_raw_throughput": small.value / big.value if big.value else None,
            "latency_p50_ratio": (big.latency_p50_ms or 0.0)
            / (small.latency_p50_ms or 1.0),
        },
    )


def measure_get(
    context: Context,
    server: stack.Server,
    variant: stack.Variant,
    case: str,
    path: str,
    env: dict[str, str],
    expected: tuple[int, ...] = (200,),
) -> Measurement:
    """Measure GET ``path`` with bench/get.lua."""
    return measure_load(context, server, variant, case, path, "get.lua", env, expected)


def measure_introspect(
    context: Context, server: stack.Server, variant: stack.Variant, token: str
) -> Measurement:
    """Measure POST /oauth/introspect of a valid access token."""
    env = {
        "BENCH_BODY": f"token={token}&token_type_hint=access_token",
        "BENCH_AUTHORIZATION": basic_authorization(context.seed),
    }
    row = measure_load(
        context, server, variant, "introspect", "/oauth/introspect", "post.lua", env
    )
    return row


def measure_refresh(
    context: Context,
    server: stack.Server,
    variant: stack.Variant,
    refresh_tokens: list[str],
) -> Measurement:
    """Measure refresh grants, one token family per wrk connection."""
    token_file = context.work / f"refresh-{variant.name}.txt"
    token_file.write_text("\n".join(refresh_tokens) + "\n")
    env = {
        "BENCH_TOKEN_FILE": str(token_file),
        "BENCH_AUTHORIZATION": basic_authorization(context.seed),
    }
    return measure_load(
        context,
        server,
        variant,
        "refresh",
        "/oauth/token",
        "refresh.lua",
        env,
        (200,),
        threads=len(refresh_tokens),
    )


def measure_password(
    context: Context, server: stack.Server, variant: stack.Variant
) -> Measurement:
    """Measure password grants against the bcrypt bound of the workers.

    The bound is ``WORKERS`` checks at a time, each taking as long as one
    bcrypt check in an otherwise idle process: the mean of a measurement
    just before the case and one just after.
    """
    before = measure_bcrypt_seconds()
    form = (
        f"grant_type=password&username={stack.USERNAME}"
        f"&password={stack.PASSWORD.replace(' ', '+')}&scope=profile"
    )
    env = {
        "BENCH_BODY": form,
        "BENCH_AUTHORIZATION": basic_authorization(context.seed),
    }
    row = measure_load(
        context,
        server,
        variant,
        "password",
        "/oauth/token",
        "post.lua",
        env,
        duration=3 * context.options.duration,
    )
    bcrypt_seconds = (before + measure_bcrypt_seconds()) / 2
    bound = WORKERS / bcrypt_seconds
    row.baseline = f"bcrypt bound ({WORKERS} workers / check time)"
    row.baseline_value = bound
    row.ratio = row.value / bound
    row.target = TARGETS["password"]
    row.details["bcrypt_check_ms"] = bcrypt_seconds * 1000
    log(f"  bcrypt check {bcrypt_seconds * 1000:.0f} ms, ratio {row.ratio:.2f}")
    return row


def measure_load(
    context: Context,
    server: stack.Server,
    variant: stack.Variant,
    case: str,
    path: str,
    script: str,
    env: dict[str, str],
    expected: tuple[int, ...] = (200,),
    *,
    threads: int = 1,
    duration: int | None = None,
) -> Measurement:
    """Run wrk against ``path`` and return the rate of expected responses."""
    seconds = duration or context.options.duration
    connections = threads if threads > 1 else get_connections(variant)
    profiler = start_profiler(context, server, variant, case, seconds)
    result = load.run_wrk(
        server.base_url + path,
        script,
        connections=connections,
        threads=threads,
        duration_seconds=seconds,
        env=env,
    )
    finish_profiler(profiler)
    row = Measurement(
        context.backend,
        variant.name,
        case,
        result.rate(expected),
        "req/s",
        requests=result.requests,
        unexpected=result.unexpected(expected),
        latency_p50_ms=result.latency_us["p50"] / 1000,
        latency_p99_ms=result.latency_us["p99"] / 1000,
        details={"statuses": result.statuses, "socket_errors": result.socket_errors},
    )
    log(
        f"{context.backend} {variant.name} {case}: {row.value:.1f} req/s,"
        f" p50 {row.latency_p50_ms:.1f} ms, statuses {result.statuses}"
    )
    return row


@dataclass
class _Profiler:
    process: subprocess.Popen[bytes]
    output: Path


def start_profiler(
    context: Context,
    server: stack.Server,
    variant: stack.Variant,
    case: str,
    seconds: int,
) -> _Profiler | None:
    if not context.options.profile:
        return None
    pid = server.get_worker_pids()[0]
    name = f"{context.backend}-{variant.name}-{case}"
    output = Path(context.options.profile) / f"{name}.txt"
    return _Profiler(profiles.start_profiler(pid, seconds, output), output)


def finish_profiler(profiler: _Profiler | None) -> None:
    if profiler is None:
        return
    try:
        profiler.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.process.terminate()
        profiler.process.wait(timeout=10)
    if not profiler.output.exists():
        log(f"  py-spy wrote no profile to {profiler.output}")
        return
    whole = profiles.format_shares(profiles.summarise(profiler.output))
    application = profiles.format_shares(
        profiles.summarise(profiler.output, limit=40, within=profiles.APPLICATION_FRAME)
    )
    summary = (
        f"All samples of the worker:\n{whole}\n\n"
        f"Samples inside the application (Flask.wsgi_app):\n{application}\n"
    )
    profiler.output.with_suffix(".summary.txt").write_text(summary)
    log(f"  profile: {profiler.output.with_suffix('.summary.txt')}")


def set_ratio(
    row: Measurement, baseline: str, baseline_value: float, context: Context
) -> None:
    """Divide ``row`` by its baseline and attach the case's target."""
    row.baseline = f"{baseline} req/s"
    row.baseline_value = baseline_value
    row.ratio = row.value / baseline_value if baseline_value else 0.0
    key = f"{row.case}.{context.backend}"
    row.target = TARGETS.get(key, TARGETS.get(row.case))


def issue_tokens(base_url: str, seed: stack.Seed, count: int) -> list[tuple[str, str]]:
    """Obtain ``count`` token pairs with the password grant; each is a family."""

    def issue(_: int) -> tuple[str, str]:
        response = requests.post(
            base_url + "/oauth/token",
            data={
                "grant_type": "password",
                "username": stack.USERNAME,
                "password": stack.PASSWORD,
                "scope": "profile",
            },
            auth=(seed.client_id, seed.client_secret),
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        return body["access_token"], body["refresh_token"]

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(issue, range(count)))


def basic_authorization(seed: stack.Seed) -> str:
    raw = f"{seed.client_id}:{seed.client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def measure_bcrypt_seconds() -> float:
    """Return the median time of one bcrypt check, measured in a new process."""
    result = subprocess.run(
        [sys.executable, "-c", BCRYPT_PROBE, str(BCRYPT_ROUNDS), str(BCRYPT_SAMPLES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(result.stdout.strip())


def describe_machine() -> dict[str, object]:
    """Return the CPU, memory, software versions, date and load average."""
    from importlib.metadata import version

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    packages = [
        "authlib",
        "flask",
        "werkzeug",
        "sqlalchemy",
        "psycopg",
        "bcrypt",
        "gunicorn",
        "joserfc",
    ]
    wrk_version = subprocess.run(
        ["wrk", "--version"], check=False, capture_output=True, text=True
    ).stdout.split(" [")[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in packages},
        "wrk": wrk_version.strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_start": os.getloadavg(),
    }


def print_report(results: list[Measurement], machine: dict[str, object]) -> None:
    """Print the table, then one JSON object per line."""
    header = (
        f"{'backend':10} {'server':7} {'case':18} {'value':>10} {'baseline':>10}"
        f" {'ratio':>6} {'target':>8} {'met':>4} {'p50 ms':>7} {'bad':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(format_row(row))
    print()
    print(json.dumps({"kind": "machine", **machine}))
    for row in results:
        print(json.dumps(to_json(row)))


def format_row(row: Measurement) -> str:
    baseline = f"{row.baseline_value:10.1f}" if row.baseline_value else " " * 10
    ratio = f"{row.ratio:6.2f}" if row.ratio is not None else " " * 6
    target = f"{row.comparison}{row.target:.2f}" if row.target is not None else ""
    met = {True: "yes", False: "NO", None: ""}[row.met]
    p50 = f"{row.latency_p50_ms:7.1f}" if row.latency_p50_ms is not None else " " * 7
    line = (
        f"{row.backend:10} {row.variant:7} {row.case:18} {row.value:10.1f}"
        f" {baseline} {ratio} {target:>8} {met:>4} {p50} {row.unexpected:5}"
    )
    return f"{line}  FAILED: {row.error}" if row.error else line


def to_json(row: Measurement) -> dict[str, object]:
    data = asdict(row)
    data["met"] = row.met
    return data


def write_json_lines(
    path: Path, results: list[Measurement], machine: dict[str, object]
) -> None:
    lines = [json.dumps({"kind": "machine", **machine})]
    lines += [json.dumps(to_json(row)) for row in results]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
