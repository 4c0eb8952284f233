"""Request logs: one line per request with a request id."""

from __future__ import annotations

import json
import logging
import re

import pytest

from authserver.logs import HANDLER_NAME

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def get_request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "authserver.request"]


def format_with_app_handler(record: logging.LogRecord) -> str:
    """Format ``record`` as the application's log handler does."""
    logger = logging.getLogger("authserver")
    handler = next(h for h in logger.handlers if h.name == HANDLER_NAME)
    return handler.format(record)


def test_requestlog_logs_one_line_per_request(client, caplog):
    caplog.set_level(logging.INFO, logger="authserver.request")

    client.get("/healthz")
    client.get("/readyz")

    records = get_request_records(caplog)
    assert len(records) == 2


def test_requestlog_line_has_every_field(client, caplog):
    caplog.set_level(logging.INFO, logger="authserver.request")

    response = client.get("/healthz")

    (record,) = get_request_records(caplog)
    details = record.event  # type: ignore[attr-defined]
    assert details["method"] == "GET"
    assert details["path"] == "/healthz"
    assert details["status"] == 200
    assert isinstance(details["duration_ms"], float)
    assert details["duration_ms"] >= 0
    assert details["request_id"] == response.headers["X-Request-ID"]


def test_requestlog_logs_error_status(client, caplog):
    caplog.set_level(logging.INFO, logger="authserver.request")

    client.post("/oauth/token", data={"grant_type": "password"})

    (record,) = get_request_records(caplog)
    assert record.event["status"] == 401  # type: ignore[attr-defined]
    assert record.event["path"] == "/oauth/token"  # type: ignore[attr-defined]


def test_requestlog_path_omits_query_string(client, caplog):
    """Query strings can carry secrets, so they are never logged."""
    caplog.set_level(logging.INFO, logger="authserver.request")

    client.get("/healthz?password=hunter2&token=s3cr3t")

    (record,) = get_request_records(caplog)
    assert record.event["path"] == "/healthz"  # type: ignore[attr-defined]
    line = format_with_app_handler(record)
    assert "hunter2" not in line
    assert "s3cr3t" not in line


def test_requestlog_path_quotes_control_characters(client, caplog):
    caplog.set_level(logging.INFO, logger="authserver.request")

    client.get("/no%0Astatus=200%20such")

    (record,) = get_request_records(caplog)
    assert record.event["path"] == "/no%0Astatus=200%20such"  # type: ignore[attr-defined]
    assert "\n" not in format_with_app_handler(record)


def test_requestlog_echoes_supplied_request_id(client):
    response = client.get("/healthz", headers={"X-Request-ID": "req-42:abc/DEF"})

    assert response.headers["X-Request-ID"] == "req-42:abc/DEF"


def test_requestlog_logs_supplied_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="authserver.request")

    client.get("/healthz", headers={"X-Request-ID": "req-42"})

    (record,) = get_request_records(caplog)
    assert record.event["request_id"] == "req-42"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "supplied",
    ["", "two words", "a\tb", "x" * 129, "caf\u00e9"],
    ids=["empty", "space", "tab", "too-long", "non-ascii"],
)
def test_requestlog_replaces_invalid_request_id(client, supplied):
    response = client.get("/healthz", headers={"X-Request-ID": supplied})

    request_id = response.headers["X-Request-ID"]
    assert request_id != supplied
    assert GENERATED_ID.fullmatch(request_id)


def test_requestlog_generates_distinct_request_ids(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}

    assert len(ids) == 5
    assert all(GENERATED_ID.fullmatch(i) for i in ids)


def test_requestlog_sets_request_id_on_404(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_requestlog_text_format_has_key_value_pairs(client, caplog):
    caplog.set_level(logging.INFO, logger="authserver.request")

    client.get("/healthz", headers={"X-Request-ID": "req-7"})

    (record,) = get_request_records(caplog)
    line = format_with_app_handler(record)
    assert "authserver.request: request " in line
    assert "method=GET path=/healthz status=200 duration_ms=" in line
    assert "request_id=req-7" in line


def test_requestlog_json_format_has_fields(config, caplog):
    from authserver import create_app

    config["AUTHSERVER_LOG_FORMAT"] = "json"
    app = create_app(config)
    caplog.set_level(logging.INFO, logger="authserver.request")

    app.test_client().get("/healthz?code=abc", headers={"X-Request-ID": "req-8"})
    app.extensions["authserver.engine"].dispose()

    (record,) = get_request_records(caplog)
    entry = json.loads(format_with_app_handler(record))
    assert entry["logger"] == "authserver.request"
    assert entry["method"] == "GET"
    assert entry["path"] == "/healthz"
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)
    assert entry["request_id"] == "req-8"


def test_requestlog_silent_above_info(config, caplog):
    from authserver import create_app

    config["AUTHSERVER_LOG_LEVEL"] = "WARNING"
    app = create_app(config)

    response = app.test_client().get("/healthz")
    app.extensions["authserver.engine"].dispose()

    assert get_request_records(caplog) == []
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
