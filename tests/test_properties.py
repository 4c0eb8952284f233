"""Property tests: any request gets a success or an RFC error, never a 5xx.

Hypothesis sends arbitrary forms, headers and raw bodies to the OAuth
endpoints and ``/api/me`` through the Flask test client, on SQLite and on
PostgreSQL. ``TEST_FUZZ_EXAMPLES`` sets the number of examples per test
(default 30). The name has no ``AUTHSERVER_`` prefix because the server
rejects unknown settings with that prefix. The count of examples run is
printed and recorded as the ``generated_cases`` property of each test.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from authserver import create_app
from tests.conftest import BACKENDS
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.conftest import base_config
from tests.conftest import create_database
from tests.conftest import register_client
from tests.conftest import register_user

EXAMPLES = int(os.environ.get("TEST_FUZZ_EXAMPLES", "30"))
CLIENT_ENDPOINTS = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/json",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "text/plain",
    "",
]
PARAMETER_NAMES = [
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
]
GRANT_TYPES = ["password", "refresh_token", "client_credentials"]

# The examples of one test share a module-scoped application, so the only
# function-scoped fixtures are the environment cleaner and record_property,
# which stay valid across examples.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

generated_cases: Counter[str] = Counter()


@dataclass
class Target:
    """An application with a registered client, a user and a live token."""

    app: Flask
    client: RegisteredClient
    username: str
    access_token: str


@pytest.fixture(scope="module", params=BACKENDS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp("properties")
    with create_database(request.param, directory) as database_url:
        config = base_config(database_url)
        registered = register_client(config, "password", "client_credentials")
        username = register_user(config)
        app = create_app(config)
        app.testing = True
        token = get_access_token(app, registered, username)
        yield Target(app, registered, username, token)
        app.extensions["authserver.engine"].dispose()


@pytest.fixture
def count_cases(request: pytest.FixtureRequest, record_property: Any) -> Iterator[str]:
    """Record how many examples the test ran; yield its counter key."""
    key = request.node.nodeid
    generated_cases[key] = 0
    yield key
    record_property("generated_cases", generated_cases[key])
    print(f"{key}: {generated_cases[key]} generated cases")


def get_access_token(app: Flask, client: RegisteredClient, username: str) -> str:
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    response = app.test_client().post("/oauth/token", data=form, headers=client.basic)
    assert response.status_code == 200, response.get_data()
    token: str = response.get_json()["access_token"]
    return token


def assert_rfc_answer(response: Any) -> None:
    """Check for a JSON success or an RFC 6749 or RFC 6750 error response."""
    assert response.status_code < 500, response.get_data()
    assert response.mimetype == "application/json", response.get_data()
    body = response.get_json()
    assert isinstance(body, dict)
    if response.status_code < 400:
        return
    if response.status_code == 401 and "WWW-Authenticate" in response.headers:
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith(("Basic ", 'Bearer realm="authserver"'))
    # RFC 6750 section 3.1: a request without a token gets no error code.
    if response.status_code == 401 and body.get("error") is None:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="authserver"'
        return
    assert isinstance(body["error"], str) and body["error"], body


# Strategies

texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", "\x00", "a\x00b", "\ufeff", "\u202e", "%00", "%FF"]),
    st.text(max_size=4).map(lambda value: value * 5000),
)
# HTTP has no way to put CR or LF in a header value.
latin1_texts = st.text(
    st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=60
)
forms = st.dictionaries(
    st.one_of(st.sampled_from(PARAMETER_NAMES), st.text(max_size=10)),
    st.one_of(texts, st.sampled_from(GRANT_TYPES)),
    max_size=8,
)


def basic_headers(target: Target) -> st.SearchStrategy[str]:
    """Return Basic headers of every shape, valid credentials included."""
    valid = target.client.basic["Authorization"]
    encoded = st.binary(max_size=60).map(lambda raw: base64.b64encode(raw).decode())
    return st.one_of(
        st.just(valid),
        encoded.map(lambda value: "Basic " + value),
        latin1_texts.map(lambda value: "Basic " + value),
        st.tuples(texts, texts).map(
            lambda pair: (
                "Basic "
                + base64.b64encode(
                    f"{pair[0]}:{pair[1]}".encode("utf-8", "surrogatepass")
                ).decode()
            )
        ),
    )


def authorization_headers(target: Target) -> st.SearchStrategy[str | None]:
    """Return Authorization values of any shape, or None for no header."""
    return st.one_of(
        st.none(),
        basic_headers(target),
        st.just("Bearer " + target.access_token),
        latin1_texts.map(lambda value: "Bearer " + value),
        latin1_texts,
    )


def post(
    target: Target, path: str, data: Any, authorization: str | None, **kw: Any
) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    headers.update(kw.pop("headers", {}))
    return target.app.test_client().post(path, data=data, headers=headers, **kw)


# Properties


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
@FUZZ_SETTINGS
@given(data=st.data())
def test_properties_any_form_gets_rfc_answer(target, count_cases, path, data):
    form = data.draw(forms, label="form")
    authorization = data.draw(authorization_headers(target), label="authorization")
    generated_cases[count_cases] += 1

    response = post(target, path, form, authorization)

    assert_rfc_answer(response)


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
@FUZZ_SETTINGS
@given(data=st.data())
def test_properties_any_form_with_valid_client_gets_rfc_answer(
    target, count_cases, path, data
):
    form = data.draw(forms, label="form")
    form.pop("client_secret", None)
    generated_cases[count_cases] += 1

    response = post(target, path, form, target.client.basic["Authorization"])

    assert_rfc_answer(response)


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
@FUZZ_SETTINGS
@given(body=st.binary(max_size=2000), content_type=st.sampled_from(CONTENT_TYPES))
def test_properties_any_raw_body_gets_rfc_answer(
    target, count_cases, path, body, content_type
):
    generated_cases[count_cases] += 1

    response = post(
        target,
        path,
        body,
        target.client.basic["Authorization"],
        headers={"Content-Type": content_type} if content_type else {},
    )

    assert_rfc_answer(response)


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
@FUZZ_SETTINGS
@given(
    fields=st.dictionaries(
        st.sampled_from(PARAMETER_NAMES), st.binary(max_size=40), max_size=6
    )
)
def test_properties_percent_encoded_bytes_get_rfc_answer(
    target, count_cases, path, fields
):
    # Percent-encoding every byte lets lone surrogates, overlong forms and
    # other invalid UTF-8 reach the form parser.
    body = "&".join(
        name + "=" + "".join(f"%{byte:02X}" for byte in value)
        for name, value in fields.items()
    )
    generated_cases[count_cases] += 1

    response = post(
        target,
        path,
        body,
        target.client.basic["Authorization"],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert_rfc_answer(response)


@FUZZ_SETTINGS
@given(data=st.data())
def test_properties_password_grant_with_any_credentials(target, count_cases, data):
    username = data.draw(
        st.one_of(texts, st.just(target.username.upper())), label="username"
    )
    password = data.draw(st.one_of(texts, st.just(PASSWORD)), label="password")
    generated_cases[count_cases] += 1
    form = {"grant_type": "password", "username": username, "password": password}

    response = post(target, "/oauth/token", form, target.client.basic["Authorization"])

    assert_rfc_answer(response)


@FUZZ_SETTINGS
@given(data=st.data())
def test_properties_api_any_authorization_gets_rfc_answer(target, count_cases, data):
    authorization = data.draw(authorization_headers(target), label="authorization")
    generated_cases[count_cases] += 1
    headers = {} if authorization is None else {"Authorization": authorization}

    response = target.app.test_client().get("/api/me", headers=headers)

    assert_rfc_answer(response)
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
