"""The container's entry point: check the deployment's settings, then exec `python -m ui.serve` with the safe flags.

`python -m ui.entrypoint [--address A] [--port N]` is what the Dockerfile runs. It refuses to start (exit 2, one
line per problem on stderr) when the team deployment would be unsafe: sign-in required but not configured, a
Qdrant server on the network without an API key, a sign-in redirect or provider over plain HTTP to a non-local
host, a short cookie secret, a data folder that cannot be written (the root filesystem is read-only). The
Streamlit flags live here and only here, so the Dockerfile, the Compose file and the tests cannot disagree.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import urlsplit

from core.config import Settings, load_settings, redact_url
from core.errors import BadInputError

PORT = 8501
# Inside the container Streamlit listens on every interface of the container's own network; the Compose file
# publishes the port on the host's 127.0.0.1 only (the HTTPS reverse proxy is the way in from outside).
ADDRESS = "0.0.0.0"
EXIT_CONFIG = 2
MIN_COOKIE_SECRET_CHARS = 32
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# What EMBEDSCOPE_AUTH_REQUIRED needs when sign-in comes from the environment (not from a secrets.toml).
AUTH_ENV = {
    "auth_client_id": "EMBEDSCOPE_AUTH_CLIENT_ID",
    "auth_client_secret": "EMBEDSCOPE_AUTH_CLIENT_SECRET",
    "auth_server_metadata_url": "EMBEDSCOPE_AUTH_SERVER_METADATA_URL",
    "auth_redirect_uri": "EMBEDSCOPE_AUTH_REDIRECT_URI",
}


def streamlit_flags(settings: Settings, *, address: str = ADDRESS, port: int = PORT) -> list[str]:
    """The Streamlit command-line flags of the deployment (they override .streamlit/config.toml)."""
    return [
        "--server.headless=true",
        f"--server.address={address}",
        f"--server.port={port}",
        # XSRF tokens on every upload and websocket; Streamlit's enableCORS=true means CORS *protection* on
        # (no cross-origin access). XSRF protection needs it: enableCORS=false would be overridden anyway.
        "--server.enableXsrfProtection=true",
        "--server.enableCORS=true",
        f"--server.maxUploadSize={settings.max_upload_mb}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--global.developmentMode=false",
        "--browser.gatherUsageStats=false",
        # Users see CoreError messages; an unexpected bug shows only the exception type, never a traceback.
        "--client.showErrorDetails=type",
        "--client.toolbarMode=viewer",
    ]


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def _auth_problems(settings: Settings) -> list[str]:
    configured_by_env = bool(settings.auth_client_id or settings.auth_server_metadata_url)
    if (settings.auth_required and not settings.auth_enabled) or configured_by_env:
        missing = [env for field, env in AUTH_ENV.items() if not getattr(settings, field)]
        if missing:
            return [f"sign-in needs {', '.join(missing)}, not set: register embedscope as an OpenID Connect "
                    "client at your provider and set them (README, 'Team deployment')"]
    found = []
    for name, url in (("EMBEDSCOPE_AUTH_REDIRECT_URI", settings.auth_redirect_uri),
                      ("EMBEDSCOPE_AUTH_SERVER_METADATA_URL", settings.auth_server_metadata_url)):
        # Over plain HTTP the authorization code and the sign-in cookie travel readable on the network.
        if url and urlsplit(url).scheme != "https" and not _is_loopback(url):
            found.append(f"{name} must be an https:// URL (the reverse proxy's address), not {redact_url(url)}")
    cookie = settings.auth_cookie_secret
    if cookie is not None and len(cookie.get_secret_value()) < MIN_COOKIE_SECRET_CHARS:
        found.append(f"EMBEDSCOPE_AUTH_COOKIE_SECRET is shorter than {MIN_COOKIE_SECRET_CHARS} characters "
                     "(make one with: openssl rand -hex 32)")
    return found


def _qdrant_problems(settings: Settings) -> list[str]:
    url, key = settings.qdrant_url, settings.qdrant_api_key
    if url and not _is_loopback(url) and not (key and key.get_secret_value().strip()):
        return [f"the Qdrant server at {redact_url(url)} is reached over the network: set "
                "EMBEDSCOPE_QDRANT_API_KEY (the same key Qdrant gets as QDRANT__SERVICE__API_KEY)"]
    return []


def _data_dir_problems(settings: Settings) -> list[str]:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create the data folder {settings.data_dir} ({e.strerror}): mount a volume there"]
    if not os.access(settings.data_dir, os.W_OK):
        return [f"the data folder {settings.data_dir} is not writable: mount a volume there (the container's "
                "root filesystem is read-only)"]
    return []


def deployment_problems(settings: Settings) -> list[str]:
    """Every reason this deployment must not start, one sentence each naming the variable to set; [] when safe."""
    return [*_auth_problems(settings), *_qdrant_problems(settings), *_data_dir_problems(settings)]


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ui.entrypoint", description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=ADDRESS, help=f"interface to listen on (default {ADDRESS})")
    parser.add_argument("--port", type=int, default=PORT, help=f"port to listen on (default {PORT})")
    return parser.parse_args(list(argv))


def _refuse(problems: Sequence[str]) -> NoReturn:
    lines = "".join(f"  - {p}\n" for p in problems)
    sys.stderr.write(f"embedscope: refusing to start the dashboard:\n{lines}")
    sys.exit(EXIT_CONFIG)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Check the settings, then replace this process with `python -m ui.serve <safe flags>`."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
    except BadInputError as e:
        _refuse([str(e)])
    problems = deployment_problems(settings)
    if problems:
        _refuse(problems)
    command = [sys.executable, "-m", "ui.serve", *streamlit_flags(settings, address=args.address, port=args.port)]
    sys.stdout.flush()
    # exec, not a child: Streamlit becomes the container's main process and gets Docker's SIGTERM directly.
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
