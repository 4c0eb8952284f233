"""Request hygiene: body limits, form rules, hostile headers and values.

The Flask test client covers the rules on both database backends. Cases
that the test client cannot send, such as a chunked body, a header with
raw non-UTF-8 bytes or several ``Authorization`` headers, go through a
socket to a live gunicorn server.
"""

from __future__ import annotations

import base64
import http.client
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from authserver import create_app
from tests.conftest import BACKENDS
from tests.conftest import PASSWORD
from tests.conftest import RegisteredClient
from tests.conftest import base_config
from tests.conftest import create_database
from tests.conftest import register_client
from tests.conftest import register_user
from tests.live import live_server

MAX_CONTENT_LENGTH = 16 * 1024
FORM = "application/x-www-form-urlencoded"
TIMEOUT_SECONDS = 10

#: Every route and method, with a body that the route reads or ignores.
ENDPOINTS = [
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/oauth/introspect"),
    ("GET", "/oauth/jwks"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/api/me"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]
CLIENT_ENDPOINTS = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]

#: RFC 6749 section 5.2 codes, plus the one for unknown tokens at /api/me.
ERROR_CODES = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_token",
}


# Databases and live servers


@dataclass
class LiveServer:
    """A gunicorn server on its own database, with a client and a user."""

    base_url: str
    client: RegisteredClient
    username: str

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        assert parts.hostname is not None and parts.port is not None
        return parts.hostname, parts.port


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("hygiene")
    with create_database(request.param, directory) as database_url:
        config = base_config(database_url)
        client = register_client(config)
        username = register_user(config)
        with live_server(config, workers=1) as base_url:
            yield LiveServer(base_url, client, username)


def send_raw(live: LiveServer, data: bytes) -> http.client.HTTPResponse:
    """Send ``data`` as the whole request and return the parsed response.

    The socket stays open for writing, so a response proves that the
    server responded without waiting for the rest of the body.
    """
    sock = socket.create_connection(live.address, timeout=TIMEOUT_SECONDS)
    sock.sendall(data)
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    sock.close()
    return response


def send_with_headers(
    live: LiveServer,
    path: str,
    headers: list[tuple[str, bytes]],
    body: bytes = b"",
) -> http.client.HTTPResponse:
    """POST ``body`` with ``headers`` exactly as given, repeats included."""
    connection = http.client.HTTPConnection(*live.address, timeout=TIMEOUT_SECONDS)
    try:
        connection.putrequest("POST", path)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Type", FORM)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


# Helpers for the test client


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    raw = f"{client_id}:{client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def basic_bytes(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def assert_oauth_error(response: Any, *statuses: int) -> str:
    """Check an RFC 6749 section 5.2 error response and return its code."""
    assert response.status_code in statuses, response.get_data()
    assert response.mimetype == "application/json"
    error: str = response.get_json()["error"]
    assert error in ERROR_CODES, error
    return error


def assert_clean_answer(response: Any) -> None:
    """Check for a success or a JSON error with a code, never a 5xx."""
    assert response.status_code < 500, response.get_data()
    assert response.mimetype == "application/json"
    body = response.get_json()
    if response.status_code >= 400:
        assert body["error"] in ERROR_CODES, body


def token_form(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


# Body length


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_hygiene_oversized_body_answers_413(client, method, path):
    body = "token=" + "x" * MAX_CONTENT_LENGTH

    response = client.open(
        path, method=method, data=body, headers={"Content-Type": FORM}
    )

    assert response.status_code == 413
    assert response.get_json()["error"] == "request_too_large"


def test_hygiene_body_at_limit_is_read(client, oauth_client):
    padding = "x" * (MAX_CONTENT_LENGTH - 200)
    body = f"grant_type=password&username=nobody&password=x&pad={padding}"
    assert len(body) <= MAX_CONTENT_LENGTH

    response = client.post(
        "/oauth/token",
        data=body,
        headers={"Content-Type": FORM, **oauth_client.basic},
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_hygiene_limit_follows_setting(config):
    config["AUTHSERVER_MAX_CONTENT_LENGTH"] = 100
    small = create_app(config)

    response = small.test_client().post("/oauth/token", data={"grant_type": "x" * 200})
    small.extensions["authserver.engine"].dispose()

    assert response.status_code == 413
    assert response.get_json()["error"] == "request_too_large"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/oauth/token"), ("GET", "/healthz")]
)
def test_hygiene_oversized_body_is_not_read(live, method, path):
    # Only a sliver of the announced 10 MB is sent; a server that read the
    # body would wait for the rest until the socket timeout.
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: 10000000\r\n\r\n"
    )
    started = time.monotonic()

    response = send_raw(live, head.encode("ascii") + b"grant_type=password")

    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"
    assert time.monotonic() - started < TIMEOUT_SECONDS / 2


def test_hygiene_chunked_oversized_body_answers_413(live):
    chunk = b"x" * 4096
    chunks = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 8
    head = (
        "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    # The final zero-length chunk is never sent.
    response = send_raw(live, head.encode("ascii") + b"3\r\npad\r\n" + chunks)

    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"


def test_hygiene_chunked_small_body_is_read(live):
    body = f"grant_type=password&username={live.username}&password={quote(PASSWORD)}"
    encoded = body.encode("ascii")
    credentials = f"{live.client.client_id}:{live.client.client_secret}"
    authorization = base64.b64encode(credentials.encode()).decode()
    head = (
        "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Basic {authorization}\r\n"
        f"Content-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunked = b"%x\r\n" % len(encoded) + encoded + b"\r\n0\r\n\r\n"

    response = send_raw(live, head.encode("ascii") + chunked)

    assert response.status == 200


# Form rules of RFC 6749 section 3.2


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_hygiene_repeated_parameter_is_invalid_request(client, oauth_client, path):
    """RFC 6749 §3.2: request parameters must not be included more than once."""
    body = "grant_type=password&token=a&token=b&scope=profile&scope=email"

    response = client.post(
        path, data=body, headers={"Content-Type": FORM, **oauth_client.basic}
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_hygiene_repeated_client_id_is_invalid_request(client, oauth_client, path):
    """RFC 6749 §3.2: a repeat is rejected even for client_id."""
    client_id = oauth_client.client_id
    body = f"token=a&client_id={client_id}&client_id={client_id}"

    response = client.post(path, data=body, headers={"Content-Type": FORM})

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_hygiene_grant_in_query_is_ignored(client, oauth_client, user):
    """RFC 6749 §3.2: token endpoint parameters travel in the body only."""
    query = f"grant_type=password&username={user}&password={quote(PASSWORD)}"

    response = client.post(
        "/oauth/token?" + query,
        data="",
        headers={"Content-Type": FORM, **oauth_client.basic},
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_hygiene_credentials_in_query_are_ignored(client, oauth_client, user):
    """RFC 6749 §3.2: a body grant does not borrow the query's password."""
    response = client.post(
        f"/oauth/token?username={user}&password={quote(PASSWORD)}",
        data={"grant_type": "password"},
        headers=oauth_client.basic,
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_hygiene_grant_in_body_works(client, oauth_client, user):
    response = client.post(
        "/oauth/token", data=token_form(user), headers=oauth_client.basic
    )

    assert response.status_code == 200
    assert response.get_json()["token_type"] == "Bearer"


WRONG_BODIES = {
    "json": ("application/json", b'{"grant_type": "password", "token": "x"}'),
    "text": ("text/plain", b"grant_type=password&token=x"),
    "multipart": (
        "multipart/form-data; boundary=b",
        b'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\nx\r\n--b--\r\n',
    ),
    "none": (None, b"grant_type=password&token=x"),
    "suffixed": (FORM + "-x", b"grant_type=password&token=x"),
    "garbage": ("\x01;;=", b"grant_type=password&token=x"),
}


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
@pytest.mark.parametrize(
    ("content_type", "body"), WRONG_BODIES.values(), ids=WRONG_BODIES
)
def test_hygiene_wrong_content_type_is_invalid_request(
    client, oauth_client, path, content_type, body
):
    """RFC 6749 §3.2: the body must be application/x-www-form-urlencoded."""
    headers = dict(oauth_client.basic)
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = client.post(path, data=body, headers=headers)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_hygiene_form_with_charset_is_accepted(client, oauth_client, user):
    body = f"grant_type=password&username={user}&password={quote(PASSWORD)}"

    response = client.post(
        "/oauth/token",
        data=body,
        headers={"Content-Type": FORM + "; charset=UTF-8", **oauth_client.basic},
    )

    assert response.status_code == 200


# Authorization headers


MALFORMED_BASIC = {
    "scheme-only": "Basic",
    "scheme-space": "Basic ",
    "not-base64": "Basic !!!not base64!!!",
    "bad-padding": "Basic YWJj=",
    "no-colon": "Basic " + base64.b64encode(b"client-and-secret").decode(),
    "empty-id": "Basic " + base64.b64encode(b":secret").decode(),
    "empty-secret": "Basic " + base64.b64encode(b"client:").decode(),
    "both-empty": "Basic " + base64.b64encode(b":").decode(),
    "not-utf8": "Basic " + base64.b64encode(b"\xff\xfe:\xc3\x28").decode(),
    "nul-in-id": "Basic " + base64.b64encode(b"cli\x00ent:secret").decode(),
    "nul-percent": "Basic " + base64.b64encode(b"client%00:secret").decode(),
    "bad-percent": "Basic " + base64.b64encode(b"%ZZ%:%FF").decode(),
    "bearer": "Bearer abc",
    "digest": 'Digest username="client"',
    "unknown-scheme": "Token abc",
    "no-scheme": base64.b64encode(b"client:secret").decode(),
    "two-credentials": "Basic YTpi, Basic YzpkZA==",
    "long": "Basic " + "A" * 8000,
    "unicode": "Basic \u00e9\u00e9\u00e9\u00e9",
}


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
@pytest.mark.parametrize("header", MALFORMED_BASIC.values(), ids=MALFORMED_BASIC)
def test_hygiene_malformed_basic_is_rejected(client, path, header):
    """RFC 6749 §5.2: failed client authentication is a 400 or 401 error."""
    response = client.post(
        path,
        data={"grant_type": "client_credentials", "token": "x"},
        headers={"Authorization": header},
    )

    assert_oauth_error(response, 400, 401)


@pytest.mark.parametrize("header", MALFORMED_BASIC.values(), ids=MALFORMED_BASIC)
def test_hygiene_malformed_basic_does_not_authenticate(client, oauth_client, header):
    # The client's own id in the form must not rescue a bad header.
    response = client.post(
        "/oauth/introspect",
        data={"token": "x", "client_id": oauth_client.client_id},
        headers={"Authorization": header},
    )

    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_client", "invalid_request")


MALFORMED_BEARER = {
    "scheme-only": "Bearer",
    "scheme-space": "Bearer ",
    "two-tokens": "Bearer abc def",
    "illegal-characters": "Bearer abc$%^",
    "nul": "Bearer abc\x00def",
    "control": "Bearer abc\x01\x7f",
    "long": "Bearer " + "a" * 10000,
    "unicode": "Bearer \u00e9\u00e9",
    "padding-only": "Bearer ===",
    "basic": "Basic " + base64.b64encode(b"a:b").decode(),
    "two-headers": "Bearer abc, Bearer def",
}


@pytest.mark.parametrize("header", MALFORMED_BEARER.values(), ids=MALFORMED_BEARER)
def test_hygiene_malformed_bearer_is_rejected(client, header):
    """RFC 6750 §3.1: a bad or missing token is a 401 with a challenge."""
    response = client.get("/api/me", headers={"Authorization": header})

    assert response.status_code in (400, 401)
    assert response.mimetype == "application/json"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="authserver"')


RAW_AUTHORIZATION = {
    "latin1-bytes": [("Authorization", b"Basic \xff\xfe\xfd")],
    "utf8-bytes": [("Authorization", "Basic \u00e9t\u00e9".encode())],
    "control-bytes": [("Authorization", b"Basic \x01\x02\x7f")],
    "two-basic": [
        ("Authorization", b"Basic YTpi"),
        ("Authorization", b"Basic YzpkZA=="),
    ],
    "basic-and-bearer": [
        ("Authorization", b"Basic YTpi"),
        ("Authorization", b"Bearer abc"),
    ],
    "empty": [("Authorization", b"")],
    "folded": [("Authorization", b"Basic\r\n YTpi")],
}


@pytest.mark.parametrize("headers", RAW_AUTHORIZATION.values(), ids=RAW_AUTHORIZATION)
@pytest.mark.parametrize("path", [*CLIENT_ENDPOINTS, "/api/me"])
def test_hygiene_raw_authorization_is_rejected(live, path, headers):
    body = b"grant_type=client_credentials&token=x"

    response = send_with_headers(live, path, headers, body)

    # /api/me accepts GET only; what matters is no 5xx before routing.
    assert response.status in (400, 401, 405)


@pytest.mark.parametrize("headers", RAW_AUTHORIZATION.values(), ids=RAW_AUTHORIZATION)
def test_hygiene_raw_authorization_is_rejected_at_api(live, headers):
    connection = http.client.HTTPConnection(*live.address, timeout=TIMEOUT_SECONDS)
    try:
        connection.putrequest("GET", "/api/me")
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    assert response.status in (400, 401)


def test_hygiene_two_authorization_headers_do_not_authenticate(live):
    credentials = f"{live.client.client_id}:{live.client.client_secret}"
    valid = b"Basic " + base64.b64encode(credentials.encode())
    body = f"grant_type=password&username={live.username}"
    body += f"&password={quote(PASSWORD)}"

    response = send_with_headers(
        live,
        "/oauth/token",
        [("Authorization", valid), ("Authorization", valid)],
        body.encode(),
    )

    assert response.status in (400, 401)


def test_hygiene_basic_credentials_are_form_url_decoded(client, oauth_client, user):
    """RFC 6749 §2.3.1: id and secret are form-url-encoded before base64."""

    def encode_all(value: str) -> str:
        return "".join(f"%{byte:02X}" for byte in value.encode("utf-8"))

    headers = basic(
        encode_all(oauth_client.client_id), encode_all(oauth_client.client_secret)
    )

    response = client.post("/oauth/token", data=token_form(user), headers=headers)

    assert response.status_code == 200


def test_hygiene_basic_plus_is_a_space(client, oauth_client):
    """RFC 6749 §2.3.1: '+' in a form-url-encoded secret decodes to a space."""
    secret = oauth_client.client_secret + "+"

    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(oauth_client.client_id, secret),
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


# Hostile values in every field


HOSTILE_VALUES = {
    "nul": "a\x00b",
    "control": "a\x01\x08\x1b[31m\x7fb",
    "newlines": "a\r\nSet-Cookie: x=y",
    "long": "x" * 8000,
    "rtl-override": "\u202eadmin",
    "combining": "a\u0301\u0301\u0301\u0301",
    "emoji": "\N{GRINNING FACE}\N{ZERO WIDTH JOINER}\N{PILE OF POO}",
    "noncharacter": "\ufffe\uffff\U0010ffff",
    "bom": "\ufeffalice",
    "full-width": "\uff41\uff4c\uff49\uff43\uff45",
    "sql": "' OR '1'='1' --",
    "percent": "%00%FF%",
}
TOKEN_FIELDS = [
    "grant_type",
    "username",
    "password",
    "scope",
    "refresh_token",
    "client_id",
    "client_secret",
]
TOKEN_FIELDS_BY_PATH = {
    "/oauth/token": TOKEN_FIELDS,
    "/oauth/revoke": ["token", "token_type_hint", "client_id", "client_secret"],
    "/oauth/introspect": ["token", "token_type_hint", "client_id", "client_secret"],
}


def make_form(path: str, user: str) -> dict[str, str]:
    if path == "/oauth/token":
        return token_form(user)
    return {"token": "unknown-token", "token_type_hint": "access_token"}


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES)
@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_hygiene_hostile_value_gets_clean_answer(
    client, oauth_client, user, path, value
):
    for field in TOKEN_FIELDS_BY_PATH[path]:
        form = make_form(path, user) | {field: value}
        # Client credentials in the form and in the header are exclusive.
        headers = {} if field.startswith("client_") else oauth_client.basic

        response = client.post(path, data=form, headers=headers)

        assert_clean_answer(response)


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_hygiene_nul_is_invalid_request(client, oauth_client, path):
    for field in TOKEN_FIELDS_BY_PATH[path]:
        form = make_form(path, "alice") | {field: "a\x00b"}
        headers = {} if field.startswith("client_") else oauth_client.basic

        response = client.post(path, data=form, headers=headers)

        assert response.status_code == 400, field
        assert response.get_json()["error"] == "invalid_request", field


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_hygiene_nul_in_parameter_name_is_invalid_request(client, oauth_client, path):
    body = "grant_type=password&token=x&na%00me=value"

    response = client.post(
        path, data=body, headers={"Content-Type": FORM, **oauth_client.basic}
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


INVALID_UTF8 = {
    "ff": "%FF",
    "overlong": "%C0%AF",
    "surrogate": "%ED%A0%80",
    "truncated": "%E2%82",
    "raw-byte": "\udcff",
}


@pytest.mark.parametrize("encoded", INVALID_UTF8.values(), ids=INVALID_UTF8)
@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_hygiene_invalid_utf8_gets_clean_answer(
    client, oauth_client, user, path, encoded
):
    raw = encoded.encode("utf-8", "surrogateescape")
    for field in TOKEN_FIELDS_BY_PATH[path]:
        form = make_form(path, user)
        form.pop(field, None)
        body = "&".join(f"{key}={quote(value)}" for key, value in form.items())
        data = body.encode("ascii") + b"&" + field.encode() + b"=a" + raw + b"b"
        headers = {} if field.startswith("client_") else oauth_client.basic

        response = client.post(
            path, data=data, headers={"Content-Type": FORM, **headers}
        )

        assert_clean_answer(response)


def test_hygiene_invalid_utf8_password_fails_sign_in(client, oauth_client, user):
    body = f"grant_type=password&username={user}&password=%FF"

    response = client.post(
        "/oauth/token",
        data=body,
        headers={"Content-Type": FORM, **oauth_client.basic},
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_hygiene_hostile_bearer_token_gets_401(client):
    for value in HOSTILE_VALUES.values():
        if "\r" in value or "\n" in value:
            continue
        response = client.get("/api/me", headers={"Authorization": "Bearer " + value})

        assert response.status_code == 401, value
        assert response.get_json()["error"] == "invalid_token", value


# Usernames: NFKC and case folding


def test_hygiene_username_variant_is_existing_user(runner, make_user):
    make_user("Alice")

    result = runner.invoke(
        args=["users", "create", "\uff21\uff2c\uff29\uff23\uff25", "--password-stdin"],
        input=PASSWORD + "\n",
    )

    assert result.exit_code == 1
    assert "already exists" in result.output


@pytest.mark.parametrize(
    "spelling", ["Alice", "alice", "ALICE", "\uff21\uff2c\uff29\uff23\uff25", " Alice "]
)
def test_hygiene_username_variant_signs_in(client, oauth_client, make_user, spelling):
    make_user("Alice")

    response = client.post(
        "/oauth/token", data=token_form(spelling), headers=oauth_client.basic
    )

    assert response.status_code == 200


def test_hygiene_username_variants_share_one_account(client, oauth_client, make_user):
    make_user("Alice")
    tokens = []
    for spelling in ("Alice", "\uff21\uff2c\uff29\uff23\uff25"):
        response = client.post(
            "/oauth/token", data=token_form(spelling), headers=oauth_client.basic
        )
        tokens.append(response.get_json()["access_token"])

    identities = [
        client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).get_json()
        for token in tokens
    ]

    assert identities[0] == identities[1]
    assert identities[0]["username"] == "alice"


def test_hygiene_different_username_is_another_user(client, oauth_client, make_user):
    make_user("Alice")

    # U+0391 is the Greek capital alpha, which NFKC keeps apart from "A".
    response = client.post(
        "/oauth/token",
        data=token_form("\u0391lice"),
        headers=oauth_client.basic,
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_hygiene_database_keeps_one_row_per_user(app, runner, make_user):
    make_user("Alice")
    runner.invoke(
        args=["users", "create", "ALICE", "--password-stdin"],
        input=PASSWORD + "\n",
    )

    engine = app.extensions["authserver.engine"]
    with engine.connect() as connection:
        usernames = connection.execute(sa.text("SELECT username FROM users")).all()

    assert [row[0] for row in usernames] == ["alice"]
