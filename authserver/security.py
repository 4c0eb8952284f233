"""Random tokens, keyed digests and the clock."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask import current_app

#: Bytes of randomness in every access token, refresh token and client
#: secret: 256 bits, as RFC 9700 section 4.14 expects of bearer secrets.
TOKEN_BYTES = 32


def now() -> int:
    """Return the current Unix time in whole seconds."""
    return int(time.time())


def generate_secret() -> str:
    """Return a new random token of 256 bits, URL-safe base64 encoded."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest_secret(value: str) -> str:
    """Return the keyed digest (HMAC-SHA-256) under which ``value`` is stored.

    Tokens and client secrets are looked up by this digest, so a copy of
    the database without ``AUTHSERVER_SECRET_KEY`` contains nothing usable.
    """
    key: bytes = current_app.extensions["authserver.digest_key"]
    data = value.encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()
