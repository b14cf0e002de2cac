"""The "results are out of date — recompute" notice shown over a persisted result the data has outgrown.

Pages show the last persisted analysis or comparison at once and never recompute it on a page
view (minutes at 100k points, inside a spinner nobody asked for); this notice lets the user ask.
"""

from __future__ import annotations

import streamlit as st

OUT_OF_DATE = "These results are out of date"


def out_of_date_notice(what: str, *, key: str, labels_only: bool = False) -> bool:
    """Say that `what` (e.g. "the problems below") predates the data; True when the user asks
    to recompute. `key`: the button's widget key. labels_only: only labels / tags / review marks
    changed since (core.pipeline.freshness.labels_changed): the results still hold for the
    vectors, and corrected items already leave the mislabel list, so the notice says so."""
    text, button = st.columns([5, 1], vertical_alignment="center")
    if labels_only:
        text.warning(f"{OUT_OF_DATE} for the labels — labels, tags or review marks changed since {what} "
                     "were computed. Corrected items already leave the mislabel list; recompute to "
                     "score every item against the new labels.", icon=":material/edit_note:")
    else:
        text.warning(f"{OUT_OF_DATE} — the data changed since {what} were computed (an ingest, or "
                     "labels updated). They are shown as they were.", icon=":material/hourglass_top:")
    return button.button("Recompute", key=key, icon=":material/refresh:", width="stretch",
                         help="Bring them up to date (reused as they are if the data they "
                              "cover did not change)")
