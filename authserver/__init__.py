"""authserver: an OAuth 2.0 authorization server for the password and
refresh token grants, built on Authlib, Flask and SQLAlchemy."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from authserver.config import ConfigError
from authserver.config import load_settings

__all__ = ["ConfigError", "create_app"]

logger = logging.getLogger(__name__)

SECRET_KEY_FILE = "secret_key"


def create_app(
    config: Mapping[str, Any] | None = None, *, development: bool = False
) -> Flask:
    """Create and configure an authserver application.

    :param config: settings that override every other source; see
        :mod:`authserver.config` for the loading order.
    :param development: when ``AUTHSERVER_SECRET_KEY`` is not set, read or
        generate a key in the instance folder instead of refusing to start.
        The admin commands and ``authserver run`` pass True; production
        serving never does.
    :raises ConfigError: a setting is missing or invalid.
    """
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    settings = load_settings(config)
    app.config.update(settings)
    os.makedirs(app.instance_path, exist_ok=True)

    if not app.config["AUTHSERVER_DATABASE_URL"]:
        path = Path(app.instance_path) / "authserver.db"
        app.config["AUTHSERVER_DATABASE_URL"] = f"sqlite:///{path}"
    if not app.config["AUTHSERVER_SECRET_KEY"]:
        app.config["AUTHSERVER_SECRET_KEY"] = _get_development_key(app, development)

    app.config["MAX_CONTENT_LENGTH"] = app.config["AUTHSERVER_MAX_CONTENT_LENGTH"]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    key = app.config["AUTHSERVER_SECRET_KEY"].encode("utf-8")
    app.extensions["authserver.digest_key"] = key

    _init_extensions(app)
    return app


def _init_extensions(app: Flask) -> None:
    from authserver import cli
    from authserver import db
    from authserver import errors
    from authserver import logs
    from authserver import metrics
    from authserver import ratelimit
    from authserver import requestlog
    from authserver import server
    from authserver.api import health
    from authserver.api import me
    from authserver.api import metadata
    from authserver.api import oauth
    from authserver.api import openapi

    logs.init_app(app)
    requestlog.init_app(app)
    metrics.init_app(app)
    db.init_app(app)
    server.init_app(app)
    ratelimit.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(me.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metadata.bp)
    app.register_blueprint(openapi.bp)

    if app.config["AUTHSERVER_PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = app.config["AUTHSERVER_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count
        )


def _get_development_key(app: Flask, development: bool) -> str:
    path = Path(app.instance_path) / SECRET_KEY_FILE
    if not development:
        raise ConfigError(
            "AUTHSERVER_SECRET_KEY is missing. Production serving needs it;"
            " generate one with: python -c 'import secrets;"
            " print(secrets.token_urlsafe(48))'"
        )
    app.extensions["authserver.development_key_path"] = str(path)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()

    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    app.extensions["authserver.generated_key_path"] = str(path)
    return key
