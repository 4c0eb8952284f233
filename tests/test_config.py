"""Settings: loading order, validation and the secret key rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from authserver import create_app
from authserver.config import ConfigError
from tests.conftest import SECRET_KEY
from tests.live import server_env


def make_app(tmp_path: Path, **settings: Any):  # type: ignore[no-untyped-def]
    config = {
        "AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
        "AUTHSERVER_SECRET_KEY": SECRET_KEY,
    }
    config.update(settings)
    return create_app(config)


def test_config_defaults_apply(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    assert app.config["AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS"] == 3600
    assert app.config["AUTHSERVER_REFRESH_TOKEN_LIFETIME_SECONDS"] == 30 * 24 * 3600
    assert app.config["AUTHSERVER_BCRYPT_ROUNDS"] == 12


def test_config_file_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS = 600\n")
    monkeypatch.setenv("AUTHSERVER_CONFIG", str(path))

    app = make_app(tmp_path)

    assert app.config["AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS"] == 600


def test_config_environment_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS = 600\n")
    monkeypatch.setenv("AUTHSERVER_CONFIG", str(path))
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS", "900")

    app = make_app(tmp_path)

    assert app.config["AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS"] == 900


def test_config_mapping_overrides_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS", "900")

    app = make_app(tmp_path, AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS=120)

    assert app.config["AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS"] == 120


def test_config_scopes_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHSERVER_SCOPES", 'profile = "Profile"\nreports = "Reports"')

    app = make_app(tmp_path)

    assert app.config["AUTHSERVER_SCOPES"] == {
        "profile": "Profile",
        "reports": "Reports",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS", "soon"),
        ("AUTHSERVER_ACCESS_TOKEN_LIFETIME_SECONDS", "0"),
        ("AUTHSERVER_BCRYPT_ROUNDS", "40"),
        ("AUTHSERVER_LOG_FORMAT", "xml"),
        ("AUTHSERVER_RATELIMIT_ENABLED", "maybe"),
        ("AUTHSERVER_ISSUER", "auth.example.com"),
        ("AUTHSERVER_ISSUER", "https://auth.example.com/?x=1"),
        ("AUTHSERVER_SCOPES", "not toml ["),
        ("AUTHSERVER_SECRET_KEY", "short"),
    ],
)
def test_config_malformed_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=name):
        create_app({"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"})


def test_config_unknown_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHSERVER_ACESS_TOKEN_LIFETIME_SECONDS", "60")

    with pytest.raises(ConfigError, match="AUTHSERVER_ACESS_TOKEN_LIFETIME_SECONDS"):
        make_app(tmp_path)


def test_config_unreadable_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHSERVER_CONFIG", str(tmp_path / "missing.toml"))

    with pytest.raises(ConfigError, match="AUTHSERVER_CONFIG"):
        make_app(tmp_path)


def test_config_production_requires_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AUTHSERVER_SECRET_KEY is missing"):
        create_app({"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"})


def test_config_gunicorn_refuses_to_start_without_secret_key(tmp_path: Path) -> None:
    env = server_env({"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"})
    gunicorn = Path(sys.executable).parent / "gunicorn"

    result = subprocess.run(
        [str(gunicorn), "--bind", "127.0.0.1:0", "authserver.wsgi:app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "AUTHSERVER_SECRET_KEY is missing" in result.stderr


def test_config_development_key_is_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(
        {"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"},
        development=True,
    )
    key_path = Path(app.extensions["authserver.development_key_path"])
    again = create_app(
        {"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"},
        development=True,
    )

    assert key_path.read_text().strip() == app.config["AUTHSERVER_SECRET_KEY"]
    assert again.config["AUTHSERVER_SECRET_KEY"] == app.config["AUTHSERVER_SECRET_KEY"]
    assert key_path.stat().st_mode & 0o077 == 0


def test_config_default_database_is_sqlite_in_instance_folder() -> None:
    app = create_app({"AUTHSERVER_SECRET_KEY": SECRET_KEY})

    expected = Path(app.instance_path) / "authserver.db"
    assert app.config["AUTHSERVER_DATABASE_URL"] == f"sqlite:///{expected}"
