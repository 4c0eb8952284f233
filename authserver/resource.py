"""Protect the endpoints of another Flask service with authserver's tokens.

This module needs neither authserver's database nor its configuration, so
a sibling service can import it on its own::

    from authserver.resource import IntrospectionValidator
    from authserver.resource import ResourceProtector

    require_oauth = ResourceProtector(
        IntrospectionValidator(
            "https://auth.example.com/oauth/introspect",
            client_id="reports",
            client_secret=os.environ["REPORTS_CLIENT_SECRET"],
        )
    )

    @app.get("/reports")
    @require_oauth("reports")
    def reports(): ...

Two validators are offered. :class:`IntrospectionValidator` queries the
server about every token (RFC 7662), so a revoked token is refused at
once. :class:`JWTValidator` checks JWT access tokens (RFC 9068) locally
against the server's published keys, so it needs no call per request, but
a revoked token stays valid until it expires.

Errors follow RFC 6750 section 3, as authserver's own API does.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import NoReturn

import requests
from authlib.integrations.flask_oauth2 import ResourceProtector as _ResourceProtector
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc6750 import InsufficientScopeError as _InsufficientScopeError
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import Response
from flask import abort
from flask import g
from flask import json
from flask import request as flask_request
from joserfc import jws
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

__all__ = [
    "IntrospectionValidator",
    "JWTValidator",
    "ResourceProtector",
    "TokenInfo",
]

logger = logging.getLogger(__name__)

REALM = "authserver"
# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" /
# "~" / "+" / "/" ) *"=". Anything else cannot be a token we issued.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_LENGTH = 4096
NO_STORE_HEADERS = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class ValidatorError(OAuth2Error):
    """The authorization server was unreachable or returned an invalid response.

    The protected endpoint returns 503, so clients retry later instead of
    discarding a token that may well be valid.
    """

    error = "temporarily_unavailable"
    status_code = 503


class MissingTokenError(OAuth2Error):
    """The request carries no bearer token at all.

    RFC 6750 section 3.1 requires a challenge without an error code in
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


class ScopedBearerTokenValidator(BearerTokenValidator):
    """A bearer token validator whose scope errors name the scope needed."""

    def __init__(self, realm: str = REALM) -> None:
        super().__init__(realm=realm)

    def validate_token(self, token: Any, scopes: Any, request: Any) -> None:
        """Check that ``token`` is live and carries ``scopes``."""
        try:
            super().validate_token(token, scopes, request)
        except _InsufficientScopeError:
            raise InsufficientScopeError(list(scopes or [])) from None


class ResourceProtector(_ResourceProtector):
    """A resource protector whose error responses follow RFC 6750 section 3.

    :param validator: the bearer token validator to use, such as
        :class:`IntrospectionValidator` or :class:`JWTValidator`.
    """

    def __init__(self, validator: BearerTokenValidator | None = None) -> None:
        super().__init__()
        if validator is not None:
            self.register_token_validator(validator)

    def acquire_token(self, scopes: Any = None, **kwargs: Any) -> Any:
        """Validate the current request's token and store it for the view.

        Authlib builds a full request object with the URL for this. Only
        the headers are needed, so skipping the rest keeps the check of
        every API call cheap.
        """
        if isinstance(scopes, str):
            scopes = [scopes]
        token = self.validate_request(scopes, _HeadersRequest(flask_request.headers))
        g.authlib_server_oauth2_token = token
        return token

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
        """Abort the request with the RFC 6750 response for ``error``."""
        status, body, headers = error()
        response = Response(json.dumps(body), status=status, headers=headers)
        abort(response)


@dataclass(frozen=True)
class _HeadersRequest:
    headers: Any


@dataclass(frozen=True)
class TokenInfo:
    """The claims a validator found for an accepted token."""

    scope: str
    client_id: str | None
    subject: str | None
    username: str | None
    expires_at: int
    claims: dict[str, Any] = field(default_factory=dict)

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        # Introspection answers only for live tokens, and a JWT carries no
        # revocation state; see the module documentation.
        return False

    def get_scope(self) -> str:
        return self.scope


class _TTLCache:
    """A small least-recently-used cache whose entries expire."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._entries: OrderedDict[str, tuple[float, TokenInfo | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, TokenInfo | None]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, entry[1]

    def put(self, key: str, value: TokenInfo | None, seconds: float) -> None:
        if seconds <= 0 or self._max_size <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)


class IntrospectionValidator(ScopedBearerTokenValidator):
    """Validate tokens by asking authserver's introspection endpoint.

    The resource server authenticates with its own client credentials;
    register it with ``authserver clients create ... --introspect``.

    :param introspection_url: the server's ``introspection_endpoint``.
    :param active_cache_seconds: how long an active answer is reused.
        The default, 0, queries the server for every request, so that a
        revoked token is refused at once; a positive value saves calls at
        the cost of accepting a revoked token for up to that long.
    :param inactive_cache_seconds: how long an inactive answer is reused,
        which spares the server from repeated unknown tokens.
    :param cache_size: the maximum number of cached answers.
    :param timeout_seconds: the timeout of each call to the server.
    """

    def __init__(
        self,
        introspection_url: str,
        client_id: str,
        client_secret: str,
        *,
        active_cache_seconds: float = 0.0,
        inactive_cache_seconds: float = 10.0,
        cache_size: int = 1024,
        timeout_seconds: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__()
        self.introspection_url = introspection_url
        self._auth = (client_id, client_secret)
        self._active_seconds = active_cache_seconds
        self._inactive_seconds = inactive_cache_seconds
        self._timeout = timeout_seconds
        self._cache = _TTLCache(cache_size)
        self._http = session or requests.Session()

    def authenticate_token(self, token_string: str) -> TokenInfo | None:
        """Return the introspection claims of an active token, else None."""
        found, cached = self._cache.get(token_string)
        if found:
            return cached

        payload = self._introspect(token_string)
        if not payload.get("active"):
            self._cache.put(token_string, None, self._inactive_seconds)
            return None
        if payload.get("token_type") not in (None, "Bearer", "bearer"):
            # A refresh token is active too, but it is no access token.
            return None

        info = TokenInfo(
            scope=str(payload.get("scope", "")),
            client_id=payload.get("client_id"),
            subject=payload.get("sub"),
            username=payload.get("username"),
            expires_at=int(payload.get("exp", 0)),
            claims=payload,
        )
        seconds = min(self._active_seconds, info.expires_at - time.time())
        self._cache.put(token_string, info, seconds)
        return info

    def _introspect(self, token_string: str) -> dict[str, Any]:
        try:
            response = self._http.post(
                self.introspection_url,
                data={"token": token_string, "token_type_hint": "access_token"},
                auth=self._auth,
                timeout=self._timeout,
            )
        except requests.RequestException as e:
            logger.error("Token introspection failed: %s", type(e).__name__)
            raise ValidatorError("The authorization server is unreachable.") from e

        if response.status_code != 200:
            logger.error(
                "Token introspection returned status %s; check the resource"
                " server's client credentials.",
                response.status_code,
            )
            raise ValidatorError("The authorization server rejected the call.")
        try:
            payload: dict[str, Any] = response.json()
        except ValueError as e:
            raise ValidatorError("The introspection response is not JSON.") from e
        return payload


class JWTValidator(ScopedBearerTokenValidator):
    """Validate JWT access tokens (RFC 9068) with the server's public keys.

    Keys come from the JWKS document and are cached; a token signed with
    an unknown ``kid`` makes the validator fetch the document again, at
    most once every ``min_refresh_seconds``. The validator checks the
    signature, ``typ``, ``iss``, ``aud`` and ``exp``.

    :param audience: the ``aud`` value this service accepts; authserver
        uses ``AUTHSERVER_ACCESS_TOKEN_AUDIENCE``, else its issuer.
    """

    ALGORITHMS = ["RS256", "ES256"]

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        audience: str,
        *,
        jwks_cache_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        leeway_seconds: int = 0,
        timeout_seconds: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__()
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._cache_seconds = jwks_cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._leeway = leeway_seconds
        self._timeout = timeout_seconds
        self._http = session or requests.Session()
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def authenticate_token(self, token_string: str) -> TokenInfo | None:
        """Return the claims of a valid JWT access token, else None."""
        try:
            header = jws.extract_compact(token_string.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            return None
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            return None
        if header.get("alg") not in self.ALGORITHMS:
            return None

        keys = self._get_keys(str(header.get("kid", "")))
        if keys is None:
            return None
        try:
            token = jwt.decode(token_string, keys, algorithms=self.ALGORITHMS)
        except (JoseError, ValueError):
            return None
        return self._check_claims(token.claims)

    def _check_claims(self, claims: dict[str, Any]) -> TokenInfo | None:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        expires_at = claims.get("exp")
        if claims.get("iss") != self.issuer or self.audience not in audiences:
            return None
        if not isinstance(expires_at, int) or expires_at + self._leeway <= time.time():
            return None
        return TokenInfo(
            scope=str(claims.get("scope", "")),
            client_id=claims.get("client_id"),
            subject=claims.get("sub"),
            username=None,
            expires_at=expires_at,
            claims=claims,
        )

    def _get_keys(self, kid: str) -> KeySet | None:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            known = self._keys is not None and any(
                key.kid == kid for key in self._keys.keys
            )
            if known and age < self._cache_seconds:
                return self._keys
            if self._keys is None or age >= self._min_refresh_seconds:
                self._keys = self._fetch_keys()
                self._fetched_at = time.monotonic()
            return self._keys

    def _fetch_keys(self) -> KeySet:
        try:
            response = self._http.get(self.jwks_url, timeout=self._timeout)
            response.raise_for_status()
            return KeySet.import_key_set(response.json())
        except (requests.RequestException, ValueError, JoseError) as e:
            logger.error("Fetching the JWKS document failed: %s", type(e).__name__)
            raise ValidatorError("The signing keys could not be fetched.") from e
