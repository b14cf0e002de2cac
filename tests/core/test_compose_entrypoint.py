"""The container's entry point (ui.entrypoint) as a plain process with the Compose file's environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from core.config import Settings, load_settings
from tests.core.test_compose import MANDATORY, ROOT, resolve
from ui.entrypoint import EXIT_CONFIG, deployment_problems

START_TIMEOUT_S = 120.0
# What a team's .env holds (the provider is never contacted before someone signs in).
DOT_ENV = {
    "EMBEDSCOPE_QDRANT_API_KEY": "k" * 64,
    "EMBEDSCOPE_AUTH_CLIENT_ID": "embedscope",
    "EMBEDSCOPE_AUTH_CLIENT_SECRET": "client-secret",
    "EMBEDSCOPE_AUTH_SERVER_METADATA_URL": "https://sso.example.com/realms/team/.well-known/openid-configuration",
    "EMBEDSCOPE_AUTH_REDIRECT_URI": "https://embedscope.example.com/oauth2callback",
}
AUTH = [name for name in MANDATORY if name.startswith("EMBEDSCOPE_AUTH_")]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home without ~/.streamlit/secrets.toml, so only the environment configures sign-in."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


def compose_env(tmp_path: Path, without: tuple[str, ...] = ()) -> dict[str, str]:
    """The dashboard container's environment: the Compose file interpolated with DOT_ENV, less the variables
    `without`, and only what cannot exist outside a container (the /data volume, HOME) moved to a temp folder."""
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["dashboard"]
    resolved = resolve(service, DOT_ENV)
    assert isinstance(resolved, dict)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDSCOPE_")}
    env.update({k: str(v) for k, v in resolved["environment"].items() if k not in without})
    env.update({
        "EMBEDSCOPE_DATA_DIR": str(tmp_path / "data"),  # the /data volume
        "HOME": str(tmp_path / "home"),
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache")),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _entrypoint(env: dict[str, str], cwd: Path, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ui.entrypoint", *args], cwd=cwd, env=env, **kwargs)  # type: ignore[call-overload]


def test_refuses_to_start_without_sign_in(tmp_path: Path, home: Path) -> None:
    # Compose itself stops first (${...:?}); this is the same container started some other way.
    env = compose_env(tmp_path, without=tuple(AUTH))
    assert env["EMBEDSCOPE_AUTH_REQUIRED"] == "true"
    process = _entrypoint(env, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_CONFIG, err.decode()
    message = err.decode()
    assert "refusing to start" in message
    for name in AUTH:
        assert name in message
    assert b"Streamlit" not in out + err and "Traceback" not in message


def test_starts_and_answers_health_with_the_compose_environment(tmp_path: Path, home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log_path = tmp_path / "entrypoint.log"
    with log_path.open("wb") as log:
        process = _entrypoint(compose_env(tmp_path), tmp_path, "--address", "127.0.0.1", "--port",
                              str(port), stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_healthy(process, f"{base}/_stcore/health", log_path) == 200
        # Sign-in is really on: Streamlit's own endpoints refuse an anonymous client.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/_stcore/host-config", timeout=10)
        assert refused.value.code in (401, 403)
        assert process.poll() is None
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log_path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except OSError:
            # Polling a socket for readiness: there is nothing to wait on yet.
            time.sleep(0.3)
    raise AssertionError(f"not healthy after {START_TIMEOUT_S} s:\n{log_path.read_text(errors='replace')[-4000:]}")


# --- the checks themselves ----------------------------------------------------------------------------------------

def _settings(tmp_path: Path, **overrides: object) -> Settings:
    base = {"data_dir": tmp_path / "data", "auth_required": True, "qdrant_url": "http://qdrant:6333",
            "qdrant_api_key": "k" * 64, "auth_client_id": "embedscope", "auth_client_secret": "s",
            "auth_server_metadata_url": DOT_ENV["EMBEDSCOPE_AUTH_SERVER_METADATA_URL"],
            "auth_redirect_uri": DOT_ENV["EMBEDSCOPE_AUTH_REDIRECT_URI"]}
    return load_settings(**{**base, **overrides})


def test_a_complete_deployment_has_no_problem(tmp_path: Path, home: Path) -> None:
    assert deployment_problems(_settings(tmp_path)) == []
    # A laptop: no sign-in required, embedded store.
    assert deployment_problems(load_settings(data_dir=tmp_path / "laptop")) == []


def test_each_problem_names_what_to_set(tmp_path: Path, home: Path) -> None:
    cases = {
        "EMBEDSCOPE_AUTH_CLIENT_SECRET": {"auth_client_secret": None},
        "EMBEDSCOPE_AUTH_REDIRECT_URI, not set": {"auth_redirect_uri": None},
        "EMBEDSCOPE_AUTH_REDIRECT_URI must be an https://": {"auth_redirect_uri": "http://dash.lan/oauth2callback"},
        "EMBEDSCOPE_AUTH_SERVER_METADATA_URL must be an https://": {
            "auth_server_metadata_url": "http://sso.lan/.well-known/openid-configuration"},
        "EMBEDSCOPE_AUTH_COOKIE_SECRET is shorter": {"auth_cookie_secret": "short"},
        "set EMBEDSCOPE_QDRANT_API_KEY": {"qdrant_api_key": None},
        "the Qdrant server at http://qdrant:6333 is reached": {"qdrant_api_key": " "},
    }
    for expected, overrides in cases.items():
        problems = deployment_problems(_settings(tmp_path, **overrides))
        assert len(problems) == 1 and expected in problems[0], (expected, problems)
    # Plain HTTP is fine on the machine itself (a local test provider, a local Qdrant).
    local = _settings(tmp_path, auth_redirect_uri="http://localhost:8501/oauth2callback",
                      auth_server_metadata_url="http://127.0.0.1:9400/.well-known/openid-configuration",
                      qdrant_url="http://127.0.0.1:6333", qdrant_api_key=None)
    assert deployment_problems(local) == []


def test_a_data_folder_that_cannot_be_made_is_refused(tmp_path: Path, home: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    problems = deployment_problems(_settings(tmp_path, data_dir=blocker / "data"))
    assert len(problems) == 1 and "cannot create the data folder" in problems[0] and str(blocker) in problems[0]
