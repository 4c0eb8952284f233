"""Settings: defaults, loading order and validation.

Settings are read in this order, later sources overriding earlier ones:

1. the defaults in :data:`SETTINGS`;
2. a TOML file named by the ``AUTHSERVER_CONFIG`` environment variable;
3. ``AUTHSERVER_*`` environment variables;
4. the mapping passed to :func:`authserver.create_app`.

Every value is converted to its declared type and checked, so a typo or a
bad value stops start-up with a message that names the setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many

PREFIX = "AUTHSERVER_"
CONFIG_FILE_VARIABLE = "AUTHSERVER_CONFIG"


class ConfigError(Exception):
    """A setting is missing, unknown or has an invalid value."""


@dataclass(frozen=True)
class Setting:
    """A setting's type, default and an optional check of its value."""

    kind: type
    default: Any
    check: Callable[[Any], str | None] | None = None
    optional: bool = False


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be a positive integer"


def _lifetime(value: int) -> str | None:
    # Ten years at most: longer is a mistake, and Unix times must stay in
    # range when a lifetime is added to them.
    if 0 < value <= 10 * 365 * 24 * 3600:
        return None
    return "must be between 1 second and 10 years"


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else "must be zero or a positive integer"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return "must be one of " + ", ".join(repr(c) for c in choices)

    return check


def _bcrypt_rounds(value: int) -> str | None:
    return None if 4 <= value <= 31 else "must be between 4 and 31"


def _secret_key(value: str) -> str | None:
    if len(value) >= 32:
        return None
    return "must be at least 32 characters long"


def _issuer(value: str) -> str | None:
    # RFC 8414 section 2: an https URL with no query or fragment. Plain
    # http is accepted for development on a loopback address.
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.query or parts.fragment or value.endswith("/"):
        return "must have no query, no fragment and no trailing slash"
    if parts.path:
        return "must have no path, because metadata is served at the root"
    return None


def _scope_registry(value: Any) -> str | None:
    if not isinstance(value, dict) or not value:
        return "must be a non-empty table of scope names to descriptions"
    for name, description in value.items():
        if not _is_scope_token(name) or not isinstance(description, str):
            return f"has an invalid entry {name!r}"
    return None


def _is_scope_token(name: Any) -> bool:
    # RFC 6749, section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if not isinstance(name, str) or not name:
        return False
    return all(c == "!" or "#" <= c <= "[" or "]" <= c <= "~" for c in name)


def _rate_limit(value: str) -> str | None:
    try:
        items = parse_many(value)
    except ValueError:
        return (
            "must be a rate limit such as '600 per minute', or several"
            " separated by ';' such as '10 per second; 600 per minute'"
        )
    if any(item.amount < 1 for item in items):
        return "must allow at least one request in each window"
    return None


def _key_prefix(value: str) -> str | None:
    allowed = set("-_.:")
    if value and all(c.isascii() and (c.isalnum() or c in allowed) for c in value):
        return None
    return "must be ASCII letters, digits, '-', '_', '.' or ':'"


def _listen_address(value: str) -> str | None:
    # An empty value serves /metrics on the application itself.
    if not value:
        return None
    host, separator, port = value.rpartition(":")
    if separator and host.strip("[]") and port.isdigit() and 0 < int(port) < 65536:
        return None
    return "must be empty or a host and port such as '127.0.0.1:9100'"


DEFAULT_SCOPES = {
    "profile": "Read the user's id and username.",
}

SETTINGS: dict[str, Setting] = {
    "AUTHSERVER_SECRET_KEY": Setting(str, None, _secret_key, optional=True),
    "AUTHSERVER_DATABASE_URL": Setting(str, None, optional=True),
    "AUTHSERVER_DATABASE_TIMEOUT_SECONDS": Setting(int, 5, _positive),
    "AUTHSERVER_ISSUER": Setting(str, "http://127.0.0.1:5000", _issuer),
    "AUTHSERVER_SCOPES": Setting(dict, DEFAULT_SCOPES, _scope_registry),
    "AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS": Setting(int, 3600, _lifetime),
    "AUTHSERVER_ACCESS_TOKEN_FORMAT": Setting(str, "opaque", _one_of("opaque", "jwt")),
    "AUTHSERVER_ACCESS_TOKEN_AUDIENCE": Setting(str, ""),
    "AUTHSERVER_JWT_ALGORITHM": Setting(str, "RS256", _one_of("RS256", "ES256")),
    "AUTHSERVER_REFRESH_TOKEN_LIFETIME_SECONDS": Setting(
        int, 30 * 24 * 3600, _lifetime
    ),
    "AUTHSERVER_REFRESH_TOKEN_IDLE_SECONDS": Setting(int, 14 * 24 * 3600, _lifetime),
    "AUTHSERVER_REFRESH_GRACE_SECONDS": Setting(int, 0, _non_negative),
    "AUTHSERVER_BCRYPT_ROUNDS": Setting(int, 12, _bcrypt_rounds),
    "AUTHSERVER_PASSWORD_MIN_LENGTH": Setting(int, 12, _positive),
    "AUTHSERVER_LOCKOUT_THRESHOLD": Setting(int, 5, _positive),
    "AUTHSERVER_LOCKOUT_BASE_SECONDS": Setting(int, 30, _lifetime),
    "AUTHSERVER_LOCKOUT_MAX_SECONDS": Setting(int, 900, _lifetime),
    "AUTHSERVER_RATELIMIT_ENABLED": Setting(bool, True),
    "AUTHSERVER_RATELIMIT_STORAGE_URL": Setting(str, "memory://"),
    "AUTHSERVER_RATELIMIT_PER_CLIENT": Setting(str, "600 per minute", _rate_limit),
    "AUTHSERVER_RATELIMIT_PER_ADDRESS": Setting(str, "300 per minute", _rate_limit),
    "AUTHSERVER_RATELIMIT_KEY_PREFIX": Setting(str, "authserver", _key_prefix),
    "AUTHSERVER_MAX_CONTENT_LENGTH": Setting(int, 16 * 1024, _positive),
    "AUTHSERVER_PROXY_COUNT": Setting(int, 0, _non_negative),
    "AUTHSERVER_HTTPS_REQUIRED": Setting(bool, True),
    "AUTHSERVER_LOG_FORMAT": Setting(str, "text", _one_of("text", "json")),
    "AUTHSERVER_LOG_LEVEL": Setting(
        str, "INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR")
    ),
    "AUTHSERVER_METRICS_ENABLED": Setting(bool, True),
    "AUTHSERVER_METRICS_ADDRESS": Setting(str, "", _listen_address),
}


def load_settings(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load every setting from its sources and return the validated values.

    :param overrides: values that take precedence over every other source,
        usually the mapping passed to ``create_app``.
    :raises ConfigError: a setting is unknown or its value is invalid.
    """
    raw: dict[str, Any] = {name: s.default for name, s in SETTINGS.items()}

    path = os.environ.get(CONFIG_FILE_VARIABLE)
    if path:
        raw.update(_read_file(path))

    raw.update(_read_environment(os.environ))

    if overrides:
        _reject_unknown(overrides, "the configuration mapping")
        raw.update(overrides)

    return {name: _convert(name, raw[name]) for name in SETTINGS}


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as e:
        raise ConfigError(
            f"{CONFIG_FILE_VARIABLE}: cannot read {path!r}: {e.strerror}."
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{CONFIG_FILE_VARIABLE}: {path!r} is not valid TOML: {e}."
        ) from None

    _reject_unknown(data, repr(path))
    return data


def _read_environment(environ: Mapping[str, str]) -> dict[str, str]:
    values = {
        name: value
        for name, value in environ.items()
        if name.startswith(PREFIX) and name != CONFIG_FILE_VARIABLE
    }
    _reject_unknown(values, "the environment")
    return values


def _reject_unknown(values: Mapping[str, Any], source: str) -> None:
    for name in values:
        if name not in SETTINGS:
            raise ConfigError(
                f"Unknown setting {name!r} in {source}. Check the spelling"
                " against the configuration table in README.md."
            )


def _convert(name: str, value: Any) -> Any:
    setting = SETTINGS[name]
    if value is None or (setting.optional and value == ""):
        if setting.optional:
            return None
        raise ConfigError(f"{name} is missing.")

    try:
        converted = _coerce(setting.kind, value)
    except (TypeError, ValueError, tomllib.TOMLDecodeError):
        raise ConfigError(
            f"{name} has an invalid value {value!r}: expected"
            f" {_describe(setting.kind)}."
        ) from None

    problem = setting.check(converted) if setting.check else None
    if problem:
        shown = "(hidden)" if name == "AUTHSERVER_SECRET_KEY" else repr(value)
        raise ConfigError(f"{name} {problem}; got {shown}.")
    return converted


def _coerce(kind: type, value: Any) -> Any:
    if kind is bool:
        return _coerce_bool(value)
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, str):
            return int(value.strip(), 10)
        if isinstance(value, int):
            return value
        raise TypeError(value)
    if kind is dict:
        if isinstance(value, str):
            return tomllib.loads(value)
        if isinstance(value, Mapping):
            return dict(value)
        raise TypeError(value)
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise ValueError(value)


def _describe(kind: type) -> str:
    return {
        bool: "true or false",
        int: "an integer",
        dict: "a TOML table such as 'profile = \"Read the profile\"'",
        str: "a string",
    }[kind]
