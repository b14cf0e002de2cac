"""Start the dashboard with the UMAP warm-up already running: `python -m ui.serve [streamlit options]`.

`streamlit run Home.py` only executes our code when the first browser session opens a page, so a
warm-up started from a page begins late, and a user who opens Explore first waits for numba's
compiler (about a minute in a fresh process). Here the warm-up thread starts with the server
process itself; Streamlit then runs in the same process, so the pages reuse the compiled code.

With sign-in configured (EMBEDSCOPE_AUTH_* or an [auth] section in .streamlit/secrets.toml) it also
hands Streamlit the [auth] secrets and installs the HTTP-level sign-in gate (ui.auth_gate).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from core.config import Settings

APP = Path(__file__).resolve().parents[1] / "Home.py"

log = logging.getLogger(__name__)


def _secrets_files_args(secrets_file: Path, argv: list[str]) -> list[str]:
    """--secrets.files options: the user's secrets files first, ours last (later files win)."""
    if any(a == "--secrets.files" or a.startswith("--secrets.files=") for a in argv):
        files: list[str] = []  # the user named theirs: Streamlit collects every --secrets.files (theirs win)
    else:
        from streamlit import config

        # Streamlit's default places (~/.streamlit, ./.streamlit); reading the option itself here would
        # parse the config before the command-line flags and make Streamlit warn about a changed config.
        files = config.get_config_files("secrets.toml")
        beside_app = str(APP.parent / ".streamlit" / "secrets.toml")
        files += [] if beside_app in files else [beside_app]
    return [arg for path in (*files, str(secrets_file)) for arg in ("--secrets.files", path)]


def signin_args(settings: Settings, argv: list[str]) -> list[str]:
    """Check the sign-in settings, install the gate when sign-in is on and return the Streamlit
    options it needs. Raises SystemExit with the reason when the server must not start."""
    from streamlit.auth_util import is_authlib_installed

    from ui import auth_gate, auth_secrets

    half = auth_secrets.problems(settings)
    if half:
        raise SystemExit("embedscope: sign-in is only partly configured: " + "; ".join(half))
    if settings.auth_required and not settings.auth_enabled:
        raise SystemExit("embedscope: EMBEDSCOPE_AUTH_REQUIRED is set but sign-in is not configured: set "
                         "EMBEDSCOPE_AUTH_CLIENT_ID, EMBEDSCOPE_AUTH_CLIENT_SECRET and "
                         "EMBEDSCOPE_AUTH_SERVER_METADATA_URL (README: Sign-in), or give Streamlit an [auth] "
                         "section in .streamlit/secrets.toml")
    if not settings.auth_enabled:
        auth_secrets.write_secrets(settings)  # removes a stale generated file
        return []
    if not is_authlib_installed():
        raise SystemExit("embedscope: sign-in needs Authlib >= 1.3.2: pip install 'embedscope[auth]'")
    auth_gate.install()
    secrets_file = auth_secrets.write_secrets(settings)
    log.info("sign-in on (%s)", "EMBEDSCOPE_AUTH_* settings" if secrets_file else ".streamlit/secrets.toml [auth]")
    return [] if secrets_file is None else _secrets_files_args(secrets_file, argv)


def main(argv: list[str] | None = None) -> None:
    """Check sign-in, start the UMAP warm-up thread, then hand the process to `streamlit run Home.py <argv>`."""
    from core.config import load_settings
    from core.errors import CoreError
    from core.logging_setup import configure_logging
    from core.warmup import start_warm_up

    try:
        settings = load_settings()
    except CoreError as e:  # names each bad EMBEDSCOPE_* setting, never its value
        raise SystemExit(f"embedscope: {e}") from None
    configure_logging(settings.log_level)
    args = list(sys.argv[1:] if argv is None else argv)
    args = [*signin_args(settings, args), *args]  # before the user's: a "--" may end Streamlit's options
    # The pages call start_warm_up too; it starts one thread per process, so theirs is this one.
    # ui.page is not imported here: its st.cache_* decorators need Streamlit's runtime.
    start_warm_up(settings.cache_dir / "numba")
    log.info("UMAP warm-up started with the server")

    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *args]
    cli.main()


if __name__ == "__main__":
    main()
