"""Password hashing with bcrypt, the password policy and usernames."""

from __future__ import annotations

import secrets
import unicodedata

import bcrypt
from flask import current_app

#: bcrypt reads at most 72 bytes of a password and ignores the rest.
BCRYPT_MAX_BYTES = 72
USERNAME_MAX_LENGTH = 150


class PasswordPolicyError(ValueError):
    """A password set by an operator breaks the password policy."""


class UsernameError(ValueError):
    """A username is empty, too long or contains control characters."""


def normalize_username(username: str) -> str:
    """Return the stored form of ``username``.

    Usernames are compared in Unicode normalisation form NFKC after case
    folding and trimming of surrounding white space, so "Alice", "ALICE"
    and "Ａｌｉｃｅ" (full-width letters) are one user.

    :raises UsernameError: the result is empty, longer than 150 characters
        or contains a control or unassigned character.
    """
    normalized = unicodedata.normalize("NFKC", username).casefold().strip()
    normalized = unicodedata.normalize("NFKC", normalized)
    if not normalized:
        raise UsernameError("The username is empty.")
    if len(normalized) > USERNAME_MAX_LENGTH:
        raise UsernameError(
            f"The username is longer than {USERNAME_MAX_LENGTH} characters."
        )
    for char in normalized:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise UsernameError(
                f"The username contains the disallowed character U+{ord(char):04X}."
            )
    return normalized


def validate_password(password: str) -> None:
    """Check a new password against the policy.

    :raises PasswordPolicyError: the password is shorter than
        ``AUTHSERVER_PASSWORD_MIN_LENGTH`` characters, longer than bcrypt's
        72 bytes in UTF-8, or contains a NUL character, which bcrypt's C
        implementation would treat as the end of the password.
    """
    min_length = current_app.config["AUTHSERVER_PASSWORD_MIN_LENGTH"]
    if len(password) < min_length:
        raise PasswordPolicyError(
            f"The password must be at least {min_length} characters long."
        )
    if "\x00" in password:
        raise PasswordPolicyError("The password must not contain a NUL character.")
    if not _is_encodable(password):
        raise PasswordPolicyError("The password is not valid Unicode text.")
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise PasswordPolicyError(
            f"The password is longer than {BCRYPT_MAX_BYTES} bytes in UTF-8;"
            " bcrypt would ignore the rest, so choose a shorter one."
        )


def hash_password(password: str) -> str:
    """Hash ``password`` with bcrypt at the configured cost."""
    rounds = current_app.config["AUTHSERVER_BCRYPT_ROUNDS"]
    salt = bcrypt.gensalt(rounds)
    return bcrypt.hashpw(password.encode("utf-8"), salt).decode("ascii")


def check_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash``.

    A password that the policy could never have accepted (too long for
    bcrypt, or containing NUL) still costs one bcrypt check, so its response
    takes as long as any other, and then fails.
    """
    candidate = _to_bcrypt_input(password)
    expected = password_hash.encode("ascii")
    try:
        matches = bcrypt.checkpw(candidate or b"-", expected)
    except ValueError:
        return False
    return candidate is not None and matches


def check_dummy_password(password: str) -> None:
    """Spend one bcrypt check at the configured cost, for unknown users.

    Without it, an unknown username would get a faster response than a wrong
    password and reveal which accounts exist.
    """
    check_password(password, get_dummy_hash())


def get_dummy_hash() -> str:
    """Return a hash at the configured cost that no password matches."""
    cached: str | None = current_app.extensions.get("authserver.dummy_hash")
    if cached is None:
        cached = hash_password(secrets.token_urlsafe(32))
        current_app.extensions["authserver.dummy_hash"] = cached
    return cached


def get_hash_rounds(password_hash: str) -> int:
    """Return the cost factor recorded in a bcrypt hash."""
    try:
        return int(password_hash.split("$")[2])
    except (IndexError, ValueError):
        return 0


def _to_bcrypt_input(password: str) -> bytes | None:
    if "\x00" in password or not _is_encodable(password):
        return None
    encoded = password.encode("utf-8")
    if len(encoded) > BCRYPT_MAX_BYTES:
        return None
    return encoded


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
