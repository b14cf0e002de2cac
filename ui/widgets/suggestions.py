"""Accepting suggested labels (the mislabel finder's): one item's button, or a list's preview then Apply."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.display import shorten
from core.errors import CoreError
from ui.actor import current_actor
from ui.page import PageContext
from ui.text import md
from ui.widgets.curation import Scope, run_action, scope

log = logging.getLogger(__name__)

PREVIEW_ROWS = 500  # rows of a suggestion preview shown (all of them are applied)


def _on_accept(sc: Scope, point_id: str, suggested: str) -> None:
    from core.curation import labels

    def act() -> str:
        entry = labels.set_labels(sc.store, sc.project, [point_id], [suggested], actor=current_actor(), why="finding",
                                  note="accepted the suggested label")
        return "Nothing changed." if entry is None else f"Label {suggested} accepted."
    run_action(act)


def accept_button(ctx: PageContext | None, point_id: str, current: Any, suggested: Any, *, key: str) -> None:
    """"Accept <suggested label>" for one item (why = finding), when the suggestion differs from its label."""
    sc = scope(ctx)
    if sc is None or _missing(suggested) or str(suggested) == str(current):
        return
    st.button(f"Accept {md(shorten(suggested, 40))}", key=f"{key}.accept", type="primary",
              icon=":material/done_all:", on_click=_on_accept, args=(sc, point_id, str(suggested)),
              help=f"Set the label to the suggested {md(suggested)} (now {md(current)})")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _on_apply(sc: Scope, key: str, changes: pd.DataFrame) -> None:
    from core.curation import labels

    edited = st.session_state.get(f"{key}.table")
    keep = pd.Series(True, index=changes.index)
    for row, edit in ((edited or {}).get("edited_rows") or {}).items():
        if "accept" in edit:
            keep.iloc[int(row)] = bool(edit["accept"])
    chosen = changes[keep.to_numpy()]

    def act() -> str:
        entry = labels.set_labels(sc.store, sc.project, chosen["point"].tolist(), chosen["new"].tolist(),
                                  actor=current_actor(), why="finding", note="accepted suggested labels")
        return "Nothing changed." if entry is None else f"{len(entry.rows):,} suggested label(s) accepted."
    run_action(act)
    st.session_state[f"{key}.open"] = False


def suggestion_panel(ctx: PageContext | None, points: Sequence[str], *, key: str) -> None:
    """Accept the suggested labels of `points` (the likely mislabels), one by one or in bulk: a
    toggle opens a preview (old -> new, a tick per row), then Apply writes one history entry."""
    sc = scope(ctx)
    if sc is None or not points:
        return
    if not st.toggle("Accept suggested labels…", key=f"{key}.open",
                     help="Preview the label changes (old → new), untick the ones to keep, then apply"):
        return
    from core.curation import labels

    try:  # read on demand only: the toggle keeps page views cheap
        found = labels.suggestions(sc.store, sc.project, sc.space, points=list(points))
    except CoreError as e:
        st.error(md(str(e), limit=300), icon=":material/warning:")
        return
    if not found:
        st.caption("No suggested label to accept: these items were corrected or have no suggestion.")
        return
    changes = pd.DataFrame({"accept": True, "dataset": [c.dataset for c in found], "key": [c.key for c in found],
                            "old": [c.old for c in found], "new": [c.new for c in found],
                            "point": [c.point for c in found]})
    st.data_editor(changes.head(PREVIEW_ROWS), key=f"{key}.table", hide_index=True, width="stretch",
                   disabled=["dataset", "key", "old", "new", "point"], column_order=["accept", "dataset", "key",
                                                                                     "old", "new"],
                   column_config={"accept": st.column_config.CheckboxColumn("Accept", width="small"),
                                  "old": "Label now", "new": "Suggested"})
    if len(changes) > PREVIEW_ROWS:
        st.caption(f"Showing {PREVIEW_ROWS:,} of {len(changes):,}; Apply accepts the rest as well.")
    st.button("Apply the ticked changes", key=f"{key}.apply", type="primary",
              icon=":material/done_all:", on_click=_on_apply, args=(sc, key, changes))
