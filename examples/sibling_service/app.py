"""An example sibling service that accepts authserver's access tokens.

It shows how another Flask service protects its endpoints with
:mod:`authserver.resource`. Settings come from environment variables:

``EXAMPLE_AUTHSERVER_URL``
    Base URL of authserver, such as ``http://127.0.0.1:5000``. Required.
``EXAMPLE_MODE``
    ``introspection`` (the default) asks authserver about every token;
    ``jwt`` checks JWT access tokens locally with authserver's public keys.
``EXAMPLE_CLIENT_ID``, ``EXAMPLE_CLIENT_SECRET``
    This service's own client, registered with ``--introspect``. Required
    in introspection mode.
``EXAMPLE_ISSUER``
    The ``iss`` that JWTs must carry (default: ``EXAMPLE_AUTHSERVER_URL``).
``EXAMPLE_AUDIENCE``
    The ``aud`` that JWTs must name (default: the issuer, which is also
    authserver's default audience).

Run it with ``flask --app examples/sibling_service/app.py run``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from authlib.integrations.flask_oauth2 import current_token
from flask import Flask

from authserver.resource import IntrospectionValidator
from authserver.resource import JWTValidator
from authserver.resource import ResourceProtector

PREFIX = "EXAMPLE_"
MODES = ("introspection", "jwt")


class SettingsError(Exception):
    """An ``EXAMPLE_*`` environment variable is missing or invalid."""


def load_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Read the ``EXAMPLE_*`` variables, apply defaults and check them.

    :raises SettingsError: a required variable is missing or the mode is
        unknown.
    """
    settings = {
        name[len(PREFIX) :]: value
        for name, value in environ.items()
        if name.startswith(PREFIX)
    }
    url = settings.get("AUTHSERVER_URL", "").rstrip("/")
    if not url:
        raise SettingsError(
            "EXAMPLE_AUTHSERVER_URL is missing; set it to authserver's base"
            " URL, such as http://127.0.0.1:5000."
        )
    settings["AUTHSERVER_URL"] = url
    settings.setdefault("MODE", "introspection")
    settings.setdefault("ISSUER", url)
    settings.setdefault("AUDIENCE", settings["ISSUER"])

    if settings["MODE"] not in MODES:
        raise SettingsError(
            f"EXAMPLE_MODE has an invalid value {settings['MODE']!r};"
            " use 'introspection' or 'jwt'."
        )
    if settings["MODE"] == "introspection":
        for name in ("CLIENT_ID", "CLIENT_SECRET"):
            if not settings.get(name):
                raise SettingsError(
                    f"EXAMPLE_{name} is missing; introspection mode needs a"
                    " client registered with 'authserver clients create"
                    " ... --introspect'."
                )
    return settings


def create_validator(
    settings: Mapping[str, str],
) -> IntrospectionValidator | JWTValidator:
    """Return the token validator for the configured mode."""
    url = settings["AUTHSERVER_URL"]
    if settings["MODE"] == "jwt":
        return JWTValidator(
            url + "/oauth/jwks",
            issuer=settings["ISSUER"],
            audience=settings["AUDIENCE"],
        )
    return IntrospectionValidator(
        url + "/oauth/introspect",
        client_id=settings["CLIENT_ID"],
        client_secret=settings["CLIENT_SECRET"],
    )


def create_app(test_config: Mapping[str, str] | None = None) -> Flask:
    """Create the example service.

    :param test_config: ``EXAMPLE_*`` values used instead of the
        environment.
    """
    settings = load_settings(test_config if test_config is not None else os.environ)
    require_oauth = ResourceProtector(create_validator(settings))
    app = Flask(__name__)
    app.config["EXAMPLE_MODE"] = settings["MODE"]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "mode": settings["MODE"]}

    @app.get("/profile")
    @require_oauth("profile")
    def profile() -> dict[str, Any]:
        """Return who the token speaks for; needs scope ``profile``."""
        return {
            "sub": current_token.subject,
            "client_id": current_token.client_id,
            "scope": current_token.scope,
        }

    @app.get("/email")
    @require_oauth("email")
    def email() -> dict[str, Any]:
        """Return a made-up address for the subject; needs scope ``email``."""
        return {
            "sub": current_token.subject,
            "email": f"user-{current_token.subject}@example.test",
        }

    return app
