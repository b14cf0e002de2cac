"""The EMBEDSCOPE_AUTH_* settings, the [auth] secrets file ui.serve writes from them, and ui.serve
refusing to start (as a plain process) when sign-in is required but not configured."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import BadInputError
from tests.auth.conftest import free_env
from tests.browser.conftest import ROOT
from ui import auth_secrets

METADATA = "https://sso.example.com/realms/team/.well-known/openid-configuration"


def _configured(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    monkeypatch.setenv("EMBEDSCOPE_AUTH_CLIENT_ID", "embedscope")
    monkeypatch.setenv("EMBEDSCOPE_AUTH_CLIENT_SECRET", "client-secret-value")
    monkeypatch.setenv("EMBEDSCOPE_AUTH_SERVER_METADATA_URL", METADATA)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def test_sign_in_is_off_by_default_and_on_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_settings().auth_enabled and not load_settings().auth_required
    _configured(monkeypatch, EMBEDSCOPE_AUTH_REQUIRED="true")
    settings = load_settings()
    assert settings.auth_enabled and settings.auth_required
    assert "client-secret-value" not in f"{settings!r} {settings}"


def test_a_users_own_secrets_toml_auth_section_turns_sign_in_on(tmp_path: Path) -> None:
    (tmp_path / ".streamlit").mkdir()  # tests run in tmp_path (tests/conftest.py)
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[other]\nx = 1\n')
    assert not load_settings().auth_enabled
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[auth]\nredirect_uri = "http://localhost/oauth2callback"\n')
    assert load_settings().auth_enabled


@pytest.mark.parametrize(("name", "value"), [
    ("EMBEDSCOPE_AUTH_REDIRECT_URI", "https://embedscope.example.com/callback"),
    ("EMBEDSCOPE_AUTH_REDIRECT_URI", "embedscope.example.com/oauth2callback"),
    ("EMBEDSCOPE_AUTH_SERVER_METADATA_URL", "ftp://sso.example.com/.well-known/openid-configuration"),
])
def test_bad_auth_urls_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(BadInputError, match=name):
        load_settings()


def test_partial_configuration_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert auth_secrets.problems(load_settings()) == []
    monkeypatch.setenv("EMBEDSCOPE_AUTH_CLIENT_ID", "embedscope")
    assert auth_secrets.problems(load_settings()) == ["EMBEDSCOPE_AUTH_CLIENT_SECRET is not set",
                                                      "EMBEDSCOPE_AUTH_SERVER_METADATA_URL is not set"]


def test_secrets_file_is_private_and_holds_the_auth_section(monkeypatch: pytest.MonkeyPatch) -> None:
    _configured(monkeypatch)
    settings = load_settings()
    path = auth_secrets.write_secrets(settings)
    assert path is not None and path.parent == settings.data_dir / "run"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["client_id"] == "embedscope" and auth["client_secret"] == "client-secret-value"
    assert auth["server_metadata_url"] == METADATA
    assert auth["redirect_uri"] == "http://localhost:{port}/oauth2callback"  # Streamlit fills in the port
    # No cookie secret given: one is generated once and kept, so a restart keeps users signed in.
    assert len(auth["cookie_secret"]) >= 32
    again = tomllib.loads(auth_secrets.write_secrets(settings).read_text())["auth"]  # type: ignore[union-attr]
    assert again["cookie_secret"] == auth["cookie_secret"]


def test_given_values_win_and_quotes_survive(monkeypatch: pytest.MonkeyPatch) -> None:
    _configured(monkeypatch, EMBEDSCOPE_AUTH_COOKIE_SECRET='a "quoted" \\ cookie secret, long enough',
                EMBEDSCOPE_AUTH_REDIRECT_URI="https://embedscope.example.com/oauth2callback")
    path = auth_secrets.write_secrets(load_settings())
    assert path is not None
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["cookie_secret"] == 'a "quoted" \\ cookie secret, long enough'
    assert auth["redirect_uri"] == "https://embedscope.example.com/oauth2callback"


def test_no_stale_secrets_file_once_sign_in_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    _configured(monkeypatch)
    path = auth_secrets.write_secrets(load_settings())
    assert path is not None and path.exists()
    monkeypatch.delenv("EMBEDSCOPE_AUTH_CLIENT_ID")
    assert auth_secrets.write_secrets(load_settings()) is None and not path.exists()


def test_serve_passes_our_secrets_after_the_users_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from streamlit.web.server.starlette import starlette_server

    from ui import serve

    # install() wraps Streamlit's app factory in this process: undone after the test.
    monkeypatch.setattr(starlette_server, "create_starlette_app", starlette_server.create_starlette_app)
    _configured(monkeypatch)
    args = serve.signin_args(load_settings(), [])
    files = [args[i + 1] for i in range(0, len(args), 2)]
    assert set(args[::2]) == {"--secrets.files"}
    assert files[-1] == str(tmp_path / "embedscope-data" / "run" / "auth-secrets.toml")
    assert str(tmp_path / ".streamlit" / "secrets.toml") in files[:-1]  # the user's own file still loads
    assert getattr(starlette_server.create_starlette_app, "_embedscope_gated", False)


@pytest.mark.parametrize(("env", "says"), [
    ({"EMBEDSCOPE_AUTH_REQUIRED": "true"}, "EMBEDSCOPE_AUTH_REQUIRED is set but sign-in is not configured"),
    ({"EMBEDSCOPE_AUTH_CLIENT_ID": "embedscope"}, "EMBEDSCOPE_AUTH_CLIENT_SECRET is not set"),
])
def test_serve_refuses_to_start_without_a_working_sign_in(tmp_path: Path, env: dict[str, str], says: str) -> None:
    run = subprocess.run([sys.executable, "-m", "ui.serve", "--server.port", "1"], cwd=tmp_path,
                         env={**free_env(), "PYTHONPATH": str(ROOT), "EMBEDSCOPE_DATA_DIR": str(tmp_path / "d"),
                              **env}, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert says in run.stderr
    assert "Uvicorn server started" not in run.stdout + run.stderr
