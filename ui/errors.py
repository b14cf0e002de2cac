"""The one place CoreError becomes a user message (st.error) instead of a traceback."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.errors import CoreError

log = logging.getLogger(__name__)


@contextmanager
def show_errors(stop: bool = False) -> Iterator[None]:
    """Show a CoreError raised inside the block as st.error; other exceptions propagate (bugs).

    stop=True also ends the script run after the message (for errors the page cannot go past).
    """
    try:
        yield
    except CoreError as e:
        log.info("shown to user: %s: %s", type(e).__name__, e)
        st.error(str(e), icon="⚠️")
        if stop:
            st.stop()
