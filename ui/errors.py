"""The one place CoreError becomes a user message (st.error) instead of a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.errors import CoreError
from ui.text import md

log = logging.getLogger(__name__)

ERROR_LIMIT = 2_000  # characters of an error message shown (it may quote a 100 kB value)


@contextmanager
def show_errors(stop: bool = False) -> Iterator[None]:
    """Show a CoreError raised inside the block as st.error; other exceptions propagate (bugs).

    The message is shown as text (it quotes user input: names, file names, values), never as
    Markdown. stop=True also ends the script run after the message (for errors the page cannot
    go past).
    """
    try:
        yield
    except CoreError as e:
        log.info("shown to user: %s: %s", type(e).__name__, e)
        st.error(md(str(e), limit=ERROR_LIMIT), icon=":material/warning:")
        if stop:
            st.stop()
