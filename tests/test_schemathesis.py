"""Schemathesis against a live gunicorn server, driven by /openapi.json.

Every operation of the OpenAPI description is fuzzed on SQLite and on
PostgreSQL. A case fails on a 5xx response, or on a response whose status
code, content type, headers or body the description does not allow.

``TEST_FUZZ_EXAMPLES`` sets the examples of the fuzzing phase per
operation (default 30), and schemathesis adds the cases of its examples
and coverage phases. The name has no ``AUTHSERVER_`` prefix because the
server rejects unknown settings with that prefix. A longer run::

    TEST_FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest \\
        tests/test_schemathesis.py -rP

The number of cases sent is printed and recorded as the
``generated_cases`` property of each test.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import negative_data_rejection
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance
from schemathesis.specs.openapi.checks import unsupported_method

from authserver.api.openapi import get_description
from tests.conftest import BACKENDS
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.conftest import base_config
from tests.conftest import create_database
from tests.conftest import register_client
from tests.conftest import register_user
from tests.live import live_server

EXAMPLES = int(os.environ.get("TEST_FUZZ_EXAMPLES", "30"))
TIMEOUT_SECONDS = 30

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
]

schema = schemathesis.openapi.from_dict(get_description())
generated_cases: Counter[str] = Counter()


@dataclass
class Target:
    """A live server with a registered client and a user's access token."""

    base_url: str
    client: RegisteredClient
    access_token: str


@pytest.fixture(scope="module", params=BACKENDS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp("schemathesis")
    with create_database(request.param, directory) as database_url:
        config = base_config(database_url)
        registered = register_client(config, "password", "client_credentials")
        username = register_user(config)
        with live_server(config, workers=2) as base_url:
            form = {"grant_type": "password", "username": username}
            form["password"] = PASSWORD
            response = requests.post(
                base_url + "/oauth/token",
                data=form,
                headers=registered.basic,
                timeout=TIMEOUT_SECONDS,
            )
            assert response.status_code == 200, response.text
            yield Target(base_url, registered, response.json()["access_token"])


@pytest.fixture
def count_cases(request: pytest.FixtureRequest, record_property: Any) -> Iterator[str]:
    """Record how many cases the test sent; yield its counter key."""
    key = request.node.nodeid
    generated_cases[key] = 0
    yield key
    record_property("generated_cases", generated_cases[key])
    print(f"{key}: {generated_cases[key]} generated cases")


def use_valid_credentials(case: Any, target: Target) -> None:
    """Replace the case's credentials with the registered client's or token."""
    headers = case.headers if case.headers is not None else {}
    if case.path == "/api/me":
        headers["Authorization"] = "Bearer " + target.access_token
    elif case.method.upper() == "POST":
        headers["Authorization"] = target.client.basic["Authorization"]
        # One authentication method per request (RFC 6749 section 2.3).
        if isinstance(case.body, dict):
            case.body.pop("client_secret", None)
    case.headers = headers


# The examples share the module's live server; the only function-scoped
# fixtures are the environment cleaner and the case counter.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_schemathesis_generated_credentials_conform(case, target, count_cases):
    generated_cases[count_cases] += 1

    case.call_and_validate(
        base_url=target.base_url, checks=CHECKS, timeout=TIMEOUT_SECONDS
    )


@schema.parametrize()
@FUZZ_SETTINGS
def test_schemathesis_valid_credentials_conform(case, target, count_cases):
    generated_cases[count_cases] += 1
    use_valid_credentials(case, target)

    case.call_and_validate(
        base_url=target.base_url, checks=CHECKS, timeout=TIMEOUT_SECONDS
    )


def test_schemathesis_live_description_is_package_file(target):
    response = requests.get(target.base_url + "/openapi.json", timeout=10)

    assert response.status_code == 200
    assert response.json() == get_description()
