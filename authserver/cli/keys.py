"""``authserver keys``: the keys that sign JWT access tokens."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from authserver.db import get_session
from authserver.jwt_tokens import ALGORITHMS
from authserver.jwt_tokens import rotate_keys
from authserver.models import SigningKey
from authserver.security import now


@click.group("keys")
def keys_group() -> None:
    """Rotate and list the JWT signing keys."""


@keys_group.command("rotate")
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    help="Signing algorithm of the new key (default: AUTHSERVER_JWT_ALGORITHM).",
)
@with_appcontext
def rotate_command(algorithm: str | None) -> None:
    """Add a new signing key and retire the current one.

    The retired key stays in the JWKS document until the last token it
    signed has expired.
    """
    session = get_session()
    key = rotate_keys(
        session, algorithm or current_app.config["AUTHSERVER_JWT_ALGORITHM"]
    )
    session.commit()
    click.echo(f"Added signing key {key.kid} ({key.algorithm}); older keys retired.")


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List signing keys with their public parts only."""
    rows = get_session().scalars(
        select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid)
    )
    at = now()
    if not as_json:
        click.echo(f"{'KID':18}  {'ALG':5}  {'STATUS':9}  CREATED")
    for row in rows:
        status = _get_status(row, at)
        if as_json:
            data = {
                "kid": row.kid,
                "algorithm": row.algorithm,
                "status": status,
                "created_at": row.created_at,
                "retired_at": row.retired_at,
                "expires_at": row.expires_at,
                "public_jwk": json.loads(row.public_jwk),
            }
            click.echo(json.dumps(data))
        else:
            click.echo(f"{row.kid:18}  {row.algorithm:5}  {status:9}  {row.created_at}")


def _get_status(row: SigningKey, at: int) -> str:
    if row.retired_at is None:
        return "current"
    if row.expires_at is not None and row.expires_at > at:
        return "published"
    return "expired"
