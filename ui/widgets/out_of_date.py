"""The "results are out of date — recompute" notice shown over a persisted result the data has outgrown.

Pages show the last persisted analysis or comparison at once and never recompute it on a page
view (minutes at 100k points, inside a spinner nobody asked for); this notice lets the user ask.
"""

from __future__ import annotations

import streamlit as st

OUT_OF_DATE = "These results are out of date"


def out_of_date_notice(what: str, *, key: str) -> bool:
    """Say that `what` (e.g. "the problems below") predates the data; True when the user asks
    to recompute. `key`: the button's widget key."""
    text, button = st.columns([5, 1], vertical_alignment="center")
    text.warning(f"{OUT_OF_DATE} — the data changed since {what} were computed (an ingest, or "
                 "labels updated). They are shown as they were.", icon="⏳")
    return button.button("Recompute", key=key, icon=":material/refresh:", width="stretch",
                         help="Bring them up to date (reused as they are if the data they "
                              "cover did not change)")
