"""Rules shared by the grants: scope, lifetimes and client authentication."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from flask import current_app
from sqlalchemy import Update
from sqlalchemy import or_
from sqlalchemy import update

from authserver.models import Client
from authserver.tokens import Lifetimes

#: Client authentication methods of RFC 6749 section 2.3 and RFC 7591
#: section 2 that the token endpoint accepts; each client narrows this list.
TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def check_client_grant(client: Client, grant_type: str) -> None:
    """Reject a client that did not register ``grant_type``.

    :raises UnauthorizedClientError: RFC 6749 section 5.2.
    """
    if not client.check_grant_type(grant_type):
        raise UnauthorizedClientError(
            f"The client is not allowed the grant type {grant_type!r}."
        )


def guard_client(client: Client) -> Update:
    """Return an UPDATE that matches only while ``client`` is unchanged.

    Run first in the transaction that issues tokens, it takes the row lock
    that ``clients disable`` and ``clients rotate-secret`` need, so either
    they see the new tokens and revoke them, or the tokens are not issued.
    A rotation with an overlap keeps the loaded secret as the previous one
    and still matches.
    """
    loaded = client.secret_digest
    return (
        update(Client)
        .where(
            Client.id == client.id,
            Client.is_active,
            or_(
                Client.secret_digest.is_not_distinct_from(loaded),
                Client.previous_secret_digest.is_not_distinct_from(loaded),
            ),
        )
        .values(is_active=Client.is_active)
    )


def resolve_scope(client: Client, requested: str | None) -> str:
    """Return the scope to grant for a request that is not a refresh.

    A request without a scope gets the client's default scope (RFC 6749
    section 3.3), less any scope that is no longer in ``AUTHSERVER_SCOPES``.
    Every requested scope must exist on the server and be allowed to the
    client.

    :raises InvalidScopeError: a scope is unknown or not allowed, or no
        scope of the default is still registered.
    """
    registry: dict[str, Any] = current_app.config["AUTHSERVER_SCOPES"]
    if requested is None or not requested.strip():
        default = client.default_scope or client.scope
        granted = [scope for scope in default.split() if scope in registry]
        if not granted:
            raise InvalidScopeError(
                "The request names no scope and the client has no default"
                " scope that the server still knows; request a scope."
            )
        return " ".join(granted)

    scopes = _split_scope(requested)
    allowed = set(client.scope.split())
    for scope in scopes:
        if scope not in registry or scope not in allowed:
            raise InvalidScopeError(
                "The requested scope is unknown or not allowed to the client."
            )
    return " ".join(scopes)


def narrow_scope(original: str, requested: str | None) -> str:
    """Return the scope of a refresh: the original grant's or a subset of it.

    :raises InvalidScopeError: the request names a scope outside the
        original grant (RFC 6749 section 6).
    """
    if requested is None or not requested.strip():
        return original

    scopes = _split_scope(requested)
    if not set(scopes) <= set(original.split()):
        raise InvalidScopeError(
            "The requested scope exceeds the scope of the original grant."
        )
    return " ".join(scopes)


def get_lifetimes(client: Client) -> Lifetimes:
    """Return the token lifetimes for ``client``, with its overrides."""
    config = current_app.config
    return Lifetimes(
        access_token=config["AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS"],
        refresh_token=client.refresh_token_lifetime_seconds
        or config["AUTHSERVER_REFRESH_TOKEN_LIFETIME_SECONDS"],
        refresh_idle=client.refresh_token_idle_seconds
        or config["AUTHSERVER_REFRESH_TOKEN_IDLE_SECONDS"],
    )


def _split_scope(scope: str) -> list[str]:
    # Keep the first occurrence of each scope, in the order requested.
    return list(dict.fromkeys(s for s in scope.split(" ") if s))
