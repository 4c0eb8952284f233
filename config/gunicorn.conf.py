"""gunicorn settings for production: gunicorn -c config/gunicorn.conf.py.

Every value can be overridden on the command line or in the
GUNICORN_CMD_ARGS environment variable, for example
GUNICORN_CMD_ARGS="--bind 127.0.0.1:9000 --workers 8". Put a
TLS-terminating proxy in front of it.

Metrics from several workers: set PROMETHEUS_MULTIPROC_DIR to a directory
that only this server uses. The hooks below empty it at start, mark
stopped workers in it and, when AUTHSERVER_METRICS_ADDRESS is set, serve
the summed metrics on that address from the master process.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

wsgi_app = "authserver.wsgi:app"
bind = "127.0.0.1:8000"
# WEB_CONCURRENCY is the variable that gunicorn itself reads for workers.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# Password grants spend about a quarter of a second in bcrypt, so a few
# threads per worker keep cheap requests from queueing behind them.
threads = 4
timeout = 30
graceful_timeout = 30
accesslog = None

MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# The file names that prometheus_client gives to the values of each
# process, such as counter_1234.db.
METRIC_FILE_PATTERNS = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def on_starting(server: Any) -> None:
    """Empty the metrics directory, so that no earlier run is counted."""
    directory = os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE)
    address = _get_metrics_address()
    if address and not directory:
        raise RuntimeError(
            f"AUTHSERVER_METRICS_ADDRESS is {address!r} but"
            f" {MULTIPROCESS_DIRECTORY_VARIABLE} is not set, so the master"
            " would serve no worker's metrics. Set it to an empty directory."
        )
    if not directory:
        return

    removed = 0
    for pattern in METRIC_FILE_PATTERNS:
        for path in Path(directory).glob(pattern):
            path.unlink()
            removed += 1
    server.log.info("Removed %s metric files from %s", removed, directory)


def when_ready(server: Any) -> None:
    """Serve the metrics of every worker on AUTHSERVER_METRICS_ADDRESS."""
    address = _get_metrics_address()
    if not address:
        return

    from prometheus_client import CollectorRegistry
    from prometheus_client import start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    server.log.info("Serving metrics at http://%s/metrics", address)


def child_exit(server: Any, worker: Any) -> None:
    """Mark a stopped worker's metric files, so its live gauges are dropped."""
    if not os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE):
        return

    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _get_metrics_address() -> str:
    # Read through authserver's own settings, so that a value from the
    # AUTHSERVER_CONFIG file counts and a bad one stops the start.
    from authserver.config import load_settings

    settings = load_settings()
    if not settings["AUTHSERVER_METRICS_ENABLED"]:
        return ""
    address: str = settings["AUTHSERVER_METRICS_ADDRESS"]
    return address


# gunicorn's control socket has one default path per user, which several
# instances on one machine would share; authserver does not use it.
control_socket_disable = True
