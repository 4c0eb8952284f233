"""Prometheus metrics at /metrics, in one process and under gunicorn.

prometheus_client keeps one registry per process, so counters without a
per-test label are compared before and after the request under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from authserver import ConfigError
from authserver import create_app
from tests.conftest import PASSWORD
from tests.live import BIN
from tests.live import free_port
from tests.live import live_server
from tests.live import server_env

TOKEN_URL = "/oauth/token"
CONFIG_FILE = Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"


def parse_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return every sample of an exposition, keyed by name and labels."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            samples[key] = sample.value
    return samples


def get_value(text: str, name: str, **labels: str) -> float:
    """Return the value of one sample, or 0 when it was never set."""
    key = (name, frozenset(labels.items()))
    return parse_samples(text).get(key, 0.0)


def scrape(client: Any, name: str, **labels: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    return get_value(response.text, name, **labels)


def password_grant(client: Any, oauth_client: Any, username: str, password: str):  # type: ignore[no-untyped-def]
    data = {"grant_type": "password", "username": username, "password": password}
    return client.post(TOKEN_URL, data=data, headers=oauth_client.basic)


def test_metrics_served_as_prometheus_text(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE authserver_tokens_issued_total counter" in response.text


def test_metrics_counts_password_grant(client, oauth_client, get_token):
    get_token()

    value = scrape(
        client,
        "authserver_tokens_issued_total",
        grant_type="password",
        client_id=oauth_client.client_id,
    )
    assert value == 1


def test_metrics_counts_refresh(client, oauth_client, get_token):
    refresh_token = get_token()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}

    response = client.post(TOKEN_URL, data=data, headers=oauth_client.basic)

    assert response.status_code == 200
    value = scrape(
        client,
        "authserver_tokens_issued_total",
        grant_type="refresh_token",
        client_id=oauth_client.client_id,
    )
    assert value == 1


def test_metrics_counts_token_error_by_code(client, oauth_client, user):
    name = "authserver_token_errors_total"
    before = scrape(client, name, error="invalid_grant")

    response = password_grant(client, oauth_client, user, "wrong password")

    assert response.get_json()["error"] == "invalid_grant"
    assert scrape(client, name, error="invalid_grant") == before + 1


def test_metrics_counts_invalid_client(client, oauth_client, user):
    name = "authserver_token_errors_total"
    before = scrape(client, name, error="invalid_client")

    response = client.post(TOKEN_URL, data={"grant_type": "password"})

    assert response.status_code == 401
    assert scrape(client, name, error="invalid_client") == before + 1


def test_metrics_error_not_counted_for_success(client, oauth_client, get_token):
    before = parse_samples(client.get("/metrics").text)

    get_token()

    after = parse_samples(client.get("/metrics").text)
    errors = {k: v for k, v in after.items() if k[0] == "authserver_token_errors_total"}
    assert errors == {
        k: v for k, v in before.items() if k[0] == "authserver_token_errors_total"
    }


def test_metrics_counts_lockout(config, make_client, make_user):
    config["AUTHSERVER_LOCKOUT_THRESHOLD"] = 2
    app = create_app(config)
    client = app.test_client()
    oauth_client = make_client()
    username = make_user()
    before = scrape(client, "authserver_lockouts_total")

    for _ in range(2):
        password_grant(client, oauth_client, username, "wrong password")

    assert scrape(client, "authserver_lockouts_total") == before + 1
    app.extensions["authserver.engine"].dispose()


def test_metrics_counts_refresh_token_reuse(client, oauth_client, get_token):
    """RFC 9700 section 4.14.2: each detected reuse is counted."""
    refresh_token = get_token()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    before = scrape(client, "authserver_refresh_token_reuse_total")

    first = client.post(TOKEN_URL, data=data, headers=oauth_client.basic)
    second = client.post(TOKEN_URL, data=data, headers=oauth_client.basic)

    assert first.status_code == 200
    assert second.get_json()["error"] == "invalid_grant"
    assert scrape(client, "authserver_refresh_token_reuse_total") == before + 1


def test_metrics_counts_security_events_by_name(client, oauth_client, user):
    name = "authserver_security_events_total"
    before = scrape(client, name, event="password_grant_failed")

    password_grant(client, oauth_client, user, "wrong password")

    assert scrape(client, name, event="password_grant_failed") == before + 1


def test_metrics_latency_labelled_by_endpoint(client):
    name = "authserver_request_duration_seconds_count"
    before = scrape(client, name, endpoint="health.healthz")

    client.get("/healthz?probe=1")

    assert scrape(client, name, endpoint="health.healthz") == before + 1


def test_metrics_latency_never_labelled_by_path(client):
    client.get("/no-such-page/12345")

    text = client.get("/metrics").text
    assert "/no-such-page" not in text
    assert scrape(client, "authserver_requests_total", endpoint="none", status="404")


def test_metrics_disabled_returns_404(config):
    config["AUTHSERVER_METRICS_ENABLED"] = False
    app = create_app(config)

    response = app.test_client().get("/metrics")
    app.extensions["authserver.engine"].dispose()

    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_metrics_address_set_not_served_by_app(config):
    config["AUTHSERVER_METRICS_ADDRESS"] = "127.0.0.1:9100"
    app = create_app(config)

    response = app.test_client().get("/metrics")
    app.extensions["authserver.engine"].dispose()

    assert response.status_code == 404


@pytest.mark.parametrize("address", ["9100", "127.0.0.1", "127.0.0.1:0", ":9100"])
def test_metrics_address_invalid_rejected(config, address):
    config["AUTHSERVER_METRICS_ADDRESS"] = address

    with pytest.raises(ConfigError, match="AUTHSERVER_METRICS_ADDRESS"):
        create_app(config)


def test_metrics_app_created_twice_keeps_counting(config, make_client, make_user):
    first = create_app(config)
    second = create_app(config)
    client = second.test_client()
    oauth_client = make_client()
    username = make_user()

    response = password_grant(client, oauth_client, username, PASSWORD)

    assert response.status_code == 200
    value = scrape(
        client,
        "authserver_tokens_issued_total",
        grant_type="password",
        client_id=oauth_client.client_id,
    )
    assert value == 1
    first.extensions["authserver.engine"].dispose()
    second.extensions["authserver.engine"].dispose()


# Several gunicorn workers, with PROMETHEUS_MULTIPROC_DIR.


def issue_tokens_concurrently(
    base_url: str, oauth_client: Any, username: str, count: int
) -> None:
    """Run ``count`` password grants, eight at a time, across the workers."""
    data = {"grant_type": "password", "username": username, "password": PASSWORD}
    auth = (oauth_client.client_id, oauth_client.client_secret)

    def grant(_: int) -> int:
        url = base_url + TOKEN_URL
        return requests.post(url, data=data, auth=auth, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(grant, range(count)))
    assert statuses == [200] * count


def count_tokens_per_worker(directory: Path, client_id: str) -> dict[str, float]:
    """Return the tokens issued by each worker, read from its own file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        single = directory / "single" / path.stem
        single.mkdir(parents=True)
        shutil.copy(path, single / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(single))
        value = registry.get_sample_value(
            "authserver_tokens_issued_total",
            {"grant_type": "password", "client_id": client_id},
        )
        if value:
            counts[path.stem] = value
    return counts


def test_metrics_multiprocess_sums_workers(config, oauth_client, user, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    config["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    issued = 0

    with live_server(config, workers=2) as url:
        # Requests go to whichever worker accepts first, so bursts are
        # repeated, a bounded number of times, until both served some.
        for _ in range(10):
            issue_tokens_concurrently(url, oauth_client, user, 16)
            issued += 16
            per_worker = count_tokens_per_worker(directory, oauth_client.client_id)
            shutil.rmtree(directory / "single")
            if len(per_worker) == 2:
                break
        scrapes = [requests.get(url + "/metrics", timeout=5).text for _ in range(6)]

    assert len(per_worker) == 2
    assert sum(per_worker.values()) == issued
    for text in scrapes:
        value = get_value(
            text,
            "authserver_tokens_issued_total",
            grant_type="password",
            client_id=oauth_client.client_id,
        )
        assert value == issued


def write_stale_metric_file(directory: Path) -> None:
    """Count a token for client "stale" as an earlier run would have."""
    code = (
        "from authserver.metrics import TOKENS_ISSUED;"
        " TOKENS_ISSUED.labels('password', 'stale').inc()"
    )
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_metrics_gunicorn_hooks_serve_address(config, oauth_client, user, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    write_stale_metric_file(directory)
    metrics_port = free_port()
    config["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    config["AUTHSERVER_METRICS_ADDRESS"] = f"127.0.0.1:{metrics_port}"
    config["GUNICORN_CMD_ARGS"] = f"--config {CONFIG_FILE}"

    with live_server(config, workers=2) as url:
        issue_tokens_concurrently(url, oauth_client, user, 8)
        app_response = requests.get(url + "/metrics", timeout=5)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        text = requests.get(metrics_url, timeout=5).text

    assert app_response.status_code == 404
    value = get_value(
        text,
        "authserver_tokens_issued_total",
        grant_type="password",
        client_id=oauth_client.client_id,
    )
    assert value == 8
    assert 'client_id="stale"' not in text


def test_metrics_gunicorn_address_requires_multiprocess_dir(config):
    config["AUTHSERVER_METRICS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    env = server_env(config)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        str(BIN / "gunicorn"),
        "--config",
        str(CONFIG_FILE),
        "--bind",
        f"127.0.0.1:{free_port()}",
        "--workers",
        "1",
    ]

    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR is not set" in result.stderr
