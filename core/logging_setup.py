"""Configure logging once per process, at an entry point (CLI, dashboard); library code only logs."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

# Chatty libraries stay at WARNING unless the user asks for DEBUG.
_NOISY = ("httpx", "httpcore", "urllib3", "filelock", "PIL", "numba", "matplotlib", "transformers")
_HANDLER_NAME = "embedscope"


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted: test runners and progress bars
    swap sys.stderr, and a handler holding the old object would write to a closed stream."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send log records at `level` and above to stream (default: the current sys.stderr), one line each.

    Idempotent: a second call replaces our handler (new level / stream) and leaves handlers
    installed by others (pytest, Streamlit) alone. Raises ValueError for an unknown level name.
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"log level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got {level!r}")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _NOISY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))
