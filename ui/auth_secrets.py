"""Streamlit's [auth] secrets from the EMBEDSCOPE_AUTH_* settings: a 0600 TOML file `ui.serve` passes
to Streamlit with --secrets.files (after the user's own secrets files, so ours win when set)."""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from core.config import Settings

log = logging.getLogger(__name__)

# Streamlit fills in "{port}" with server.port: the laptop default (register it at the provider).
DEFAULT_REDIRECT_URI = "http://localhost:{port}/oauth2callback"


def run_dir(settings: Settings) -> Path:
    """Where the generated secrets live: private to the server's user (0700)."""
    path = settings.data_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def problems(settings: Settings) -> list[str]:
    """What keeps the EMBEDSCOPE_AUTH_* settings from a working sign-in (empty: fine, or not used)."""
    given = {"EMBEDSCOPE_AUTH_CLIENT_ID": settings.auth_client_id,
             "EMBEDSCOPE_AUTH_CLIENT_SECRET": settings.auth_client_secret,
             "EMBEDSCOPE_AUTH_SERVER_METADATA_URL": settings.auth_server_metadata_url}
    if not any(given.values()):
        return []
    return [f"{name} is not set" for name, value in given.items() if not value]


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by this user only, never briefly world-readable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def cookie_secret(settings: Settings) -> str:
    """EMBEDSCOPE_AUTH_COOKIE_SECRET, else one generated once and kept in the data dir, so a restart
    does not sign everyone out."""
    if settings.auth_cookie_secret is not None:
        return settings.auth_cookie_secret.get_secret_value()
    path = run_dir(settings) / "auth-cookie-secret"
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(48)
    _write_private(path, value)
    log.info("generated a sign-in cookie secret in %s", path)
    return value


def auth_section(settings: Settings) -> dict[str, str]:
    """Streamlit's flat [auth] section (the "default" provider st.login() uses)."""
    client_id, client_secret = settings.auth_client_id, settings.auth_client_secret
    metadata_url = settings.auth_server_metadata_url
    if not (client_id and client_secret and metadata_url):
        raise ValueError("auth_section() needs the client id, client secret and metadata URL (see problems())")
    return {
        "redirect_uri": settings.auth_redirect_uri or DEFAULT_REDIRECT_URI,
        "cookie_secret": cookie_secret(settings),
        "client_id": client_id,
        "client_secret": client_secret.get_secret_value(),
        "server_metadata_url": metadata_url,
    }


def write_secrets(settings: Settings) -> Path | None:
    """Write `<data_dir>/run/auth-secrets.toml` from the settings and return it; None (and no stale
    file left behind) when the EMBEDSCOPE_AUTH_* settings do not configure sign-in."""
    path = settings.data_dir / "run" / "auth-secrets.toml"
    if not (settings.auth_client_id and settings.auth_server_metadata_url):
        path.unlink(missing_ok=True)
        return None
    # JSON strings are valid TOML basic strings (same escapes), so any value is quoted safely.
    lines = ["[auth]", *(f"{key} = {json.dumps(value)}" for key, value in auth_section(settings).items())]
    run_dir(settings)
    _write_private(path, "\n".join(lines) + "\n")
    return path
