"""Bearer token validation for protected APIs, RFC 6750."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from typing import NoReturn

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oauth2.rfc6750 import InsufficientScopeError as _InsufficientScopeError
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import Response
from flask import abort
from flask import json
from sqlalchemy import select

from authserver.db import get_session
from authserver.models import Client
from authserver.models import Token
from authserver.models import User
from authserver.security import digest_secret
from authserver.security import now

REALM = "authserver"

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" /
# "~" / "+" / "/" ) *"=". Anything else cannot be a token we issued.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class AccessToken:
    """The stored facts about a presented access token."""

    token_id: int
    client_id: str
    user_id: int | None
    username: str | None
    scope: str
    expires_at: int
    revoked_at: int | None

    def is_expired(self) -> bool:
        return self.expires_at <= now()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def get_scope(self) -> str:
        return self.scope


class MissingTokenError(OAuth2Error):
    """The request carries no bearer token at all.

    RFC 6750 section 3.1 asks for a challenge without an error code in
    this case, so the header names only the scheme and realm.
    """

    error = None
    status_code = 401
    description = "The request has no bearer access token."

    def get_body(self) -> list[tuple[str, Any]]:
        return [("error_description", self.description)]

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        headers.append(("WWW-Authenticate", f'Bearer realm="{REALM}"'))
        return headers


class InsufficientScopeError(_InsufficientScopeError):
    """The token lacks a scope; the challenge names the scope needed."""

    def __init__(self, scopes: list[str]) -> None:
        super().__init__()
        self.scopes = scopes

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        challenge = (
            f'Bearer realm="{REALM}", error="{self.error}",'
            f' scope="{" ".join(self.scopes)}"'
        )
        headers.append(("WWW-Authenticate", challenge))
        return headers


class BearerTokenValidator(_BearerTokenValidator):
    """Find access tokens by their digest in the token table."""

    def __init__(self) -> None:
        super().__init__(realm=REALM)

    def validate_token(
        self, token: AccessToken | None, scopes: Any, request: Any
    ) -> None:
        """Check that ``token`` is live and carries ``scopes``."""
        try:
            super().validate_token(token, scopes, request)
        except _InsufficientScopeError:
            raise InsufficientScopeError(list(scopes or [])) from None

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        """Return the stored token for ``token_string``, or None."""
        statement = (
            select(
                Token.id,
                Client.client_id,
                Token.user_id,
                User.username,
                Token.scope,
                Token.access_token_expires_at,
                Token.revoked_at,
                Token.access_token_revoked_at,
            )
            .join(Client, Client.id == Token.client_id)
            .outerjoin(User, User.id == Token.user_id)
            .where(Token.access_token_digest == digest_secret(token_string))
        )
        row = get_session().execute(statement).first()
        if row is None:
            return None
        revoked_at = row[6] or row[7]
        return AccessToken(*row[:6], revoked_at)


class BearerProtector(ResourceProtector):
    """A resource protector whose answers follow RFC 6750 section 3."""

    def __init__(self) -> None:
        super().__init__()
        self.register_token_validator(BearerTokenValidator())

    def parse_request_authorization(self, request: Any) -> tuple[Any, str]:
        """Return the validator and the token of a ``Bearer`` header."""
        header = request.headers.get("Authorization")
        if not header:
            raise MissingTokenError()
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise MissingTokenError()

        token = token.strip()
        if len(token) > MAX_TOKEN_LENGTH or not B64TOKEN.fullmatch(token):
            raise InvalidTokenError(realm=REALM)
        return self.get_token_validator("bearer"), token

    def raise_error_response(self, error: OAuth2Error) -> NoReturn:
        """Abort the request with the RFC 6750 answer for ``error``."""
        status, body, headers = error()
        response = Response(json.dumps(body), status=status, headers=headers)
        abort(response)


require_oauth = BearerProtector()
