"""Start the dashboard with the UMAP warm-up already running: `python -m ui.serve [streamlit options]`.

`streamlit run Home.py` only executes our code when the first browser session opens a page, so a
warm-up started from a page begins late, and a user who opens Explore first waits for numba's
compiler (about a minute in a fresh process). Here the warm-up thread starts with the server
process itself; Streamlit then runs in the same process, so the pages reuse the compiled code.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "Home.py"


def main(argv: list[str] | None = None) -> None:
    """Start the UMAP warm-up thread, then hand the process to `streamlit run Home.py <argv>`."""
    from core.config import load_settings
    from core.logging_setup import configure_logging
    from core.warmup import start_warm_up

    settings = load_settings()
    configure_logging(settings.log_level)
    # The pages call start_warm_up too; it starts one thread per process, so theirs is this one. ui.page is not imported here: its st.cache_* decorators need Streamlit's runtime.
    start_warm_up(settings.cache_dir / "numba")
    logging.getLogger(__name__).info("UMAP warm-up started with the server")

    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
