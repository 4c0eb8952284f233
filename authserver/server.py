"""The authorization server and the resource protector, bound in ``init_app``."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import unquote

from authlib.common.security import is_secure_transport
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from flask import current_app
from flask import request as flask_request
from sqlalchemy import bindparam
from sqlalchemy import select

from authserver import events
from authserver import sql
from authserver.endpoints.introspection import IntrospectionEndpoint
from authserver.endpoints.revocation import RevocationEndpoint
from authserver.grants.client_credentials import ClientCredentialsGrant
from authserver.grants.password import PasswordGrant
from authserver.grants.refresh import RefreshGrant
from authserver.models import Client

if TYPE_CHECKING:
    from flask import Flask
    from flask import Response
    from werkzeug.datastructures import MultiDict

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

CLIENT_COLUMNS = [column.key for column in Client.__table__.columns]
FIND_CLIENT = sql.Query(
    select(*Client.__table__.columns).where(
        Client.client_id == bindparam("client_id"), Client.is_active
    )
)


class FormPayload(OAuth2Payload):
    """Request parameters taken from the form body only.

    RFC 6749 section 3.2 sends token endpoint parameters in the request
    body; Authlib's Flask payload also reads the query string, which would
    let credentials leak into URLs and logs.
    """

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    @property
    def data(self) -> MultiDict[str, str]:
        return self._form

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {key: self._form.getlist(key) for key in self._form}


class FormRequest(OAuth2Request):
    """An OAuth request whose parameters come from the form body only."""

    def __init__(self) -> None:
        # Authlib's constructor raises InsecureTransportError, which no
        # handler turns into an OAuth error; validate_form_request checks
        # the transport instead. The constructor sets these fields too.
        self.method = flask_request.method
        self.uri = flask_request.url
        self.headers = flask_request.headers
        self._body = None
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self.payload = FormPayload(flask_request.form)
        self.scope: str = ""

    @property
    def args(self) -> MultiDict[str, str]:
        return flask_request.args

    @property
    def form(self) -> MultiDict[str, str]:
        return flask_request.form


class Server(AuthorizationServer):
    """Authlib's authorization server with the request rules of RFC 6749."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return FormRequest()

    def authenticate_client(
        self, request: OAuth2Request, methods: list[str], endpoint: str = "token"
    ) -> Client:
        """Authenticate the client, with one error for every failure.

        RFC 6749 section 5.2 allows 401 for any failed client
        authentication; one message for an unknown client and a wrong
        secret gives an attacker nothing.
        """
        try:
            client: Client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            raise InvalidClientError(
                "Client authentication failed.", status_code=401
            ) from error
        return client

    def create_token_response(self, request: Any = None) -> Response:
        """Check the request's form, then let the grant build the response."""
        try:
            validate_form_request()
            # RFC 6749 section 5.2 makes a missing grant_type invalid_request,
            # where Authlib would return unsupported_grant_type.
            if not flask_request.form.get("grant_type"):
                raise InvalidRequestError("The request has no 'grant_type' parameter.")
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        response: Response = super().create_token_response(request)
        return response

    def create_endpoint_response(self, name: str, request: Any = None) -> Response:
        """Check the request's form, then let the endpoint ``name`` respond."""
        try:
            validate_form_request()
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        response: Response = super().create_endpoint_response(name, request)
        return response

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Response:
        if isinstance(error, InvalidClientError):
            events.log_event(
                "client_authentication_failed",
                logging.WARNING,
                client_id=_claimed_client_id(),
            )
        response: Response = super().handle_error_response(request, error)
        return response


def validate_form_request() -> None:
    """Reject a request that RFC 6749 section 3.2 does not allow.

    :raises InvalidRequestError: the body is not form-encoded, a
        parameter appears more than once, or a name or value contains a
        NUL character.
    """
    if current_app.config["AUTHSERVER_HTTPS_REQUIRED"] and not is_secure_transport(
        flask_request.url
    ):
        # RFC 6749 sections 2.3.1 and 3.2 require TLS at these endpoints.
        raise InvalidRequestError(
            "The request must use HTTPS. Behind a TLS-terminating proxy,"
            " set AUTHSERVER_PROXY_COUNT so that its X-Forwarded-Proto counts."
        )
    if flask_request.mimetype != FORM_CONTENT_TYPE:
        raise InvalidRequestError(
            f"The request body must be of type {FORM_CONTENT_TYPE}."
        )
    form = flask_request.form
    # Werkzeug stops reading a body sent without Content-Length (chunked)
    # at MAX_CONTENT_LENGTH and parses the part it read. One more read
    # raises RequestEntityTooLarge (413) if the body went on past the limit.
    if flask_request.content_length is None:
        flask_request.stream.read(1)
    header = flask_request.headers.get("Authorization")
    if header and "client_secret" in form:
        raise InvalidRequestError(
            "The request uses more than one client authentication method."
        )
    basic = parse_basic_authorization(header)
    if basic and "client_id" in form and form["client_id"] != basic[0]:
        raise InvalidRequestError(
            "The client_id parameter names another client than the"
            " Authorization header."
        )
    for key in form:
        if len(form.getlist(key)) > 1:
            raise InvalidRequestError(
                "A parameter is included more than once in the request."
            )
    # No parameter may contain NUL: PostgreSQL rejects it in text values,
    # and C code such as bcrypt would read it as the end of the string.
    for key, value in form.items(multi=True):
        if "\x00" in key or "\x00" in value:
            raise InvalidRequestError("A parameter contains a NUL character.")


def query_client(client_id: str) -> Client | None:
    """Return the active client with ``client_id``, for Authlib.

    The client is read with a precompiled statement, because every token
    request needs it, and returned as a detached object.
    """
    row = sql.fetch_one(FIND_CLIENT, {"client_id": client_id})
    if row is None:
        return None
    return Client(**dict(zip(CLIENT_COLUMNS, row, strict=True)))


def authenticate_client_secret_basic(
    query: Any, request: OAuth2Request
) -> Client | None:
    """Authenticate a client with HTTP Basic, RFC 6749 section 2.3.1.

    Unlike Authlib's version, this one form-url-decodes both parts after
    base64 decoding, as the RFC requires, and treats a header that is not
    valid base64 or UTF-8 as a failed authentication instead of an error.
    """
    header = request.headers.get("Authorization")
    if not header:
        return None

    # A client that tried the Authorization header gets 401 at once, as
    # RFC 6749 section 5.2 requires, instead of falling through to other methods.
    credentials = parse_basic_authorization(header)
    if credentials is None:
        raise InvalidClientError(
            "The Authorization header is not valid Basic credentials.",
            status_code=401,
        )
    client_id, client_secret = credentials
    client = query(client_id)
    if client is None or not client.check_client_secret(client_secret):
        raise InvalidClientError("Client authentication failed.", status_code=401)
    if not client.check_endpoint_auth_method("client_secret_basic", "token"):
        raise InvalidClientError(
            "The client may not authenticate with HTTP Basic.", status_code=401
        )
    return client  # type: ignore[no-any-return]


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """Return the client id and secret of a Basic header, or None."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:
        # binascii.Error and UnicodeDecodeError are ValueErrors, and so is
        # the error for a header with characters outside ASCII.
        return None
    client_id, separator, client_secret = decoded.partition(":")
    if not separator or not client_id or not client_secret:
        return None
    client_id = unquote(client_id.replace("+", " "))
    client_secret = unquote(client_secret.replace("+", " "))
    # A NUL character names no client and would fail in PostgreSQL.
    if "\x00" in client_id or "\x00" in client_secret:
        return None
    return client_id, client_secret


def _claimed_client_id() -> str | None:
    # Only the id of a registered client is logged: the claimed value is
    # attacker-chosen text, and a client that swapped its id and secret
    # would otherwise write its secret to the log.
    credentials = parse_basic_authorization(flask_request.headers.get("Authorization"))
    claimed = credentials[0] if credentials else flask_request.form.get("client_id")
    if not claimed or len(claimed) > 64:
        return None
    if sql.fetch_one(FIND_CLIENT, {"client_id": claimed}) is None:
        return None
    return claimed


def init_app(app: Flask) -> None:
    """Create the authorization server of ``app`` and register its grants."""
    server = Server()
    server.init_app(app, query_client=query_client)
    server.register_client_auth_method(
        "client_secret_basic", authenticate_client_secret_basic
    )
    server.register_grant(PasswordGrant)
    server.register_grant(RefreshGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    app.extensions["authserver.authorization"] = server


def get_authorization_server() -> Server:
    """Return the authorization server of the current application."""
    server: Server = current_app.extensions["authserver.authorization"]
    return server
