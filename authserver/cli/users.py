"""``authserver users``: manage resource owners."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from authserver import throttle
from authserver import tokens
from authserver.db import get_session
from authserver.models import User
from authserver.passwords import PasswordPolicyError
from authserver.passwords import UsernameError
from authserver.passwords import hash_password
from authserver.passwords import normalize_username
from authserver.passwords import validate_password
from authserver.security import now

password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)


@click.group("users")
def users_group() -> None:
    """Create, list and manage users."""


@users_group.command("create")
@click.argument("username")
@password_stdin_option
@with_appcontext
def create_command(username: str, password_stdin: bool) -> None:
    """Create a user; the password is prompted for or read from stdin."""
    session = get_session()
    key = _normalize(username)
    if session.scalar(select(User.id).where(User.username == key)) is not None:
        raise click.ClickException(f"User {key!r} already exists.")

    password = _read_password(password_stdin)
    at = now()
    user = User(
        username=key,
        password_hash=hash_password(password),
        is_active=True,
        created_at=at,
        updated_at=at,
    )
    session.add(user)
    session.commit()
    click.echo(f"Created user {key!r} with id {user.id}.")


@users_group.command("list")
@with_appcontext
def list_command() -> None:
    """List users with their id and status."""
    users = get_session().scalars(select(User).order_by(User.id)).all()
    click.echo(f"{'ID':>6}  {'STATUS':8}  USERNAME")
    for user in users:
        status = "active" if user.is_active else "disabled"
        click.echo(f"{user.id:>6}  {status:8}  {user.username}")


@users_group.command("disable")
@click.argument("username")
@with_appcontext
def disable_command(username: str) -> None:
    """Disable a user and revoke every token issued to them."""
    session = get_session()
    user = _get_user(username)
    user.is_active = False
    user.updated_at = now()
    count = tokens.revoke_families_where(session, now(), user_id=user.id)
    session.commit()
    click.echo(f"Disabled user {user.username!r}; revoked {count} token families.")


@users_group.command("enable")
@click.argument("username")
@with_appcontext
def enable_command(username: str) -> None:
    """Enable a disabled user."""
    session = get_session()
    user = _get_user(username)
    user.is_active = True
    user.updated_at = now()
    session.commit()
    click.echo(f"Enabled user {user.username!r}.")


@users_group.command("set-password")
@click.argument("username")
@password_stdin_option
@with_appcontext
def set_password_command(username: str, password_stdin: bool) -> None:
    """Set a user's password and revoke every token issued to them."""
    session = get_session()
    user = _get_user(username)
    password = _read_password(password_stdin)
    user.password_hash = hash_password(password)
    user.updated_at = now()
    count = tokens.revoke_families_where(session, now(), user_id=user.id)
    session.commit()
    click.echo(
        f"Set the password of {user.username!r}; revoked {count} token families."
    )


@users_group.command("delete")
@click.argument("username")
@with_appcontext
def delete_command(username: str) -> None:
    """Delete a user and every token issued to them."""
    session = get_session()
    user = _get_user(username)
    session.delete(user)
    session.commit()
    click.echo(f"Deleted user {user.username!r}.")


@users_group.command("unlock")
@click.argument("username")
@with_appcontext
def unlock_command(username: str) -> None:
    """Clear the failed sign-in count and lock of a username."""
    session = get_session()
    key = _normalize(username)
    cleared = throttle.clear(session, throttle.get_username_digest(key))
    session.commit()
    if cleared:
        click.echo(f"Unlocked {key!r}.")
    else:
        click.echo(f"{key!r} had no failed sign-ins to clear.")


def _normalize(username: str) -> str:
    try:
        return normalize_username(username)
    except UsernameError as e:
        raise click.BadParameter(str(e), param_hint="USERNAME") from None


def _get_user(username: str) -> User:
    key = _normalize(username)
    user = get_session().scalar(select(User).where(User.username == key))
    if user is None:
        raise click.ClickException(f"User {key!r} not found.")
    return user


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        validate_password(password)
    except PasswordPolicyError as e:
        raise click.ClickException(str(e)) from None
    return password
