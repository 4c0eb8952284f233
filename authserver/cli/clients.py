"""``authserver clients``: register and manage OAuth clients."""

from __future__ import annotations

import json
import secrets
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from authserver import tokens
from authserver.db import get_session
from authserver.models import Client
from authserver.models.client import CONFIDENTIAL_AUTH_METHODS
from authserver.models.client import PUBLIC_AUTH_METHOD
from authserver.security import digest_secret
from authserver.security import generate_secret
from authserver.security import now

GRANT_TYPES = ("password", "refresh_token", "client_credentials")
#: Ten years: longer lifetimes are mistakes, and would not fit the columns.
MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600
MAX_NAME_LENGTH = 200


@click.group("clients")
def clients_group() -> None:
    """Register, list and manage OAuth clients."""


@clients_group.command("create")
@click.option(
    "--name",
    required=True,
    type=click.STRING,
    callback=lambda _ctx, _param, value: _validate_name(value),
    help="A name for operators to recognise, 1 to 200 characters.",
)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    required=True,
    type=click.Choice(GRANT_TYPES),
    help="A grant type the client may use; repeat for several.",
)
@click.option(
    "--scope",
    required=True,
    help='Space-separated scopes the client may request, such as "profile".',
)
@click.option(
    "--default-scope",
    help="Space-separated scopes granted when a request names none"
    " (default: every allowed scope).",
)
@click.option("--public", is_flag=True, help="A public client, with no secret.")
@click.option(
    "--auth-method",
    type=click.Choice(CONFIDENTIAL_AUTH_METHODS),
    help="Restrict a confidential client to one authentication method.",
)
@click.option(
    "--introspect",
    is_flag=True,
    help="Let the client introspect any access token, as a resource server.",
)
@click.option(
    "--refresh-lifetime",
    type=click.IntRange(min=1, max=MAX_LIFETIME_SECONDS),
    help="Absolute refresh token lifetime in seconds for this client.",
)
@click.option(
    "--refresh-idle",
    type=click.IntRange(min=1, max=MAX_LIFETIME_SECONDS),
    help="Refresh token idle timeout in seconds for this client.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@with_appcontext
def create_command(
    name: str,
    grant_types: tuple[str, ...],
    scope: str,
    default_scope: str | None,
    public: bool,
    auth_method: str | None,
    introspect: bool,
    refresh_lifetime: int | None,
    refresh_idle: int | None,
    as_json: bool,
) -> None:
    """Register a client and print its id and secret, shown only this once."""
    if public and auth_method:
        raise click.UsageError("--public and --auth-method cannot be combined.")
    if public and "client_credentials" in grant_types:
        raise click.UsageError(
            "A public client cannot use the client_credentials grant."
        )
    scopes = _validate_scopes(scope, "--scope")
    defaults = (
        _validate_scopes(default_scope, "--default-scope") if default_scope else None
    )
    if defaults and not set(defaults.split()) <= set(scopes.split()):
        raise click.UsageError("--default-scope must be a subset of --scope.")

    secret = None if public else generate_secret()
    if public:
        auth_methods = PUBLIC_AUTH_METHOD
    else:
        auth_methods = auth_method or " ".join(CONFIDENTIAL_AUTH_METHODS)

    client = Client(
        client_id=generate_client_id(),
        name=name,
        secret_digest=digest_secret(secret) if secret else None,
        grant_types=" ".join(dict.fromkeys(grant_types)),
        scope=scopes,
        default_scope=defaults,
        auth_methods=auth_methods,
        can_introspect=introspect,
        refresh_token_lifetime_seconds=refresh_lifetime,
        refresh_token_idle_seconds=refresh_idle,
        is_active=True,
        created_at=now(),
    )
    session = get_session()
    session.add(client)
    session.commit()
    _print_credentials(client, secret, as_json)


@clients_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List clients without their secrets."""
    clients = get_session().scalars(select(Client).order_by(Client.id)).all()
    if as_json:
        for client in clients:
            click.echo(json.dumps(_describe(client)))
        return
    click.echo(f"{'CLIENT ID':24}  {'STATUS':8}  {'GRANT TYPES':34}  NAME")
    for client in clients:
        status = "active" if client.is_active else "disabled"
        click.echo(
            f"{client.client_id:24}  {status:8}  {client.grant_types:34}  {client.name}"
        )


@clients_group.command("show")
@click.argument("client_id")
@with_appcontext
def show_command(client_id: str) -> None:
    """Show one client's registration, without its secret."""
    client = _get_client(client_id)
    for key, value in _describe(client).items():
        click.echo(f"{key}: {value}")


@clients_group.command("disable")
@click.argument("client_id")
@with_appcontext
def disable_command(client_id: str) -> None:
    """Disable a client and revoke every token issued to it."""
    session = get_session()
    client = _get_client(client_id)
    client.is_active = False
    count = tokens.revoke_families_where(session, now(), client_id=client.id)
    session.commit()
    click.echo(f"Disabled client {client.client_id}; revoked {count} token families.")


@clients_group.command("enable")
@click.argument("client_id")
@with_appcontext
def enable_command(client_id: str) -> None:
    """Enable a disabled client."""
    session = get_session()
    client = _get_client(client_id)
    client.is_active = True
    session.commit()
    click.echo(f"Enabled client {client.client_id}.")


@clients_group.command("delete")
@click.argument("client_id")
@with_appcontext
def delete_command(client_id: str) -> None:
    """Delete a client and every token issued to it."""
    session = get_session()
    client = _get_client(client_id)
    session.delete(client)
    session.commit()
    click.echo(f"Deleted client {client_id}.")


@clients_group.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--overlap",
    type=click.IntRange(min=0, max=MAX_LIFETIME_SECONDS),
    default=0,
    show_default=True,
    help="Seconds during which the old secret stays valid. With 0, every"
    " token issued to the client is revoked at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@with_appcontext
def rotate_secret_command(client_id: str, overlap: int, as_json: bool) -> None:
    """Give a confidential client a new secret, shown only this once."""
    session = get_session()
    client = _get_client(client_id)
    if client.is_public:
        raise click.ClickException(f"Client {client_id} is public and has no secret.")

    at = now()
    secret = generate_secret()
    if overlap:
        client.previous_secret_digest = client.secret_digest
        client.previous_secret_expires_at = at + overlap
    else:
        client.previous_secret_digest = None
        client.previous_secret_expires_at = None
        tokens.revoke_families_where(session, at, client_id=client.id)
    client.secret_digest = digest_secret(secret)
    session.commit()
    _print_credentials(client, secret, as_json)


def generate_client_id() -> str:
    """Return a new random client id of 128 bits, URL-safe base64 encoded.

    The id never starts with "-", which the admin commands would read as
    an option rather than as the CLIENT_ID argument.
    """
    client_id = secrets.token_urlsafe(16)
    if client_id.startswith("-"):
        client_id = "_" + client_id[1:]
    return client_id


def _validate_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise click.BadParameter(
            f"must be 1 to {MAX_NAME_LENGTH} printable characters.",
            param_hint="'--name'",
        )
    return name


def _validate_scopes(value: str, option: str) -> str:
    registry = current_app.config["AUTHSERVER_SCOPES"]
    scopes = list(dict.fromkeys(value.split()))
    if not scopes:
        raise click.UsageError(f"{option} needs at least one scope.")
    unknown = [s for s in scopes if s not in registry]
    if unknown:
        raise click.UsageError(
            f"{option} names unknown scopes {' '.join(unknown)!r}; the server"
            f" knows {' '.join(registry)!r} (setting AUTHSERVER_SCOPES)."
        )
    return " ".join(scopes)


def _get_client(client_id: str) -> Client:
    client = get_session().scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise click.ClickException(f"Client {client_id!r} not found.")
    return client


def _describe(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "active": client.is_active,
        "public": client.is_public,
        "grant_types": client.grant_types.split(),
        "scope": client.scope,
        "default_scope": client.default_scope or client.scope,
        "token_endpoint_auth_methods": client.auth_methods.split(),
        "introspect": client.can_introspect,
        "refresh_token_lifetime_seconds": client.refresh_token_lifetime_seconds,
        "refresh_token_idle_seconds": client.refresh_token_idle_seconds,
        "created_at": client.created_at,
    }


def _print_credentials(client: Client, secret: str | None, as_json: bool) -> None:
    if as_json:
        data = {"client_id": client.client_id, "client_secret": secret}
        data.update({k: v for k, v in _describe(client).items() if k != "client_id"})
        click.echo(json.dumps(data))
        return
    click.echo(f"client_id: {client.client_id}")
    if secret is not None:
        click.echo(f"client_secret: {secret}")
        click.echo("Store the secret now; it cannot be shown again.")
