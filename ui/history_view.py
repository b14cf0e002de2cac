"""The History view: the project's curation entries newest first, with "Undo" per entry and "Undo last"."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import streamlit as st

from core.display import shorten
from core.errors import CoreError
from ui.actor import current_actor
from ui.text import md
from ui.widgets.curation import Scope

log = logging.getLogger(__name__)

LIMIT = 50  # entries shown per page view (newest first); the CLI lists them all
ROWS_SHOWN = 200  # rows of one entry shown in its table
FIELDS = ("label", "tags", "reviewed")
WHY_TEXT = {"manual": "by hand", "finding": "from a finding", "import": "imported", "undo": "undo"}


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "–"
    return shorten(value, 80)


def rows_frame(entry: Any) -> pd.DataFrame:
    """One entry's rows as a table: dataset, key, old, new (plain text: st.dataframe shows no Markdown)."""
    rows = list(entry.rows)[:ROWS_SHOWN]
    return pd.DataFrame({"dataset": [r.dataset for r in rows], "key": [r.key for r in rows],
                         "old": [_value(r.old) for r in rows], "new": [_value(r.new) for r in rows]})


def _on_undo(sc: Scope, entry: str | None) -> None:
    from core.curation.labels import undo

    try:
        done = undo(sc.store, sc.project, entry, actor=current_actor())
    except CoreError as e:
        log.info("undo refused: %s", e)
        st.session_state["history.message"] = ("error", str(e))
        return
    st.session_state["history.message"] = ("ok", f"Undone: {len(done.rows):,} row(s) of {done.field} restored.")


def _message() -> None:
    message = st.session_state.pop("history.message", None)
    if not message:
        return
    kind, text = message
    if kind == "ok":
        st.success(md(text, limit=300), icon=":material/undo:")
    else:
        st.error(md(text, limit=300), icon=":material/warning:")


def headline(entry: Any) -> str:
    """"2026-11-30 13:05 · alice · label · from a finding · 3 rows" as Markdown (user text escaped)."""
    when = entry.at.replace("T", " ")[:16]
    why = WHY_TEXT.get(entry.why, entry.why)
    n = len(entry.rows)
    note = f" · {md(entry.note, limit=120)}" if entry.note else ""
    return (f"**{md(when)}** · {md(entry.who)} · **{md(entry.field)}** · {md(why)} · "
            f"{n:,} row{'' if n == 1 else 's'}{note}")


def _entry(sc: Scope, entry: Any) -> None:
    with st.container(border=True):
        head, button = st.columns([5, 1], vertical_alignment="center")
        head.markdown(headline(entry))
        if entry.undone_by:
            head.caption(f":material/undo: undone (entry {md(entry.undone_by)})")
        elif entry.undoes:
            head.caption(f"undoes entry {md(entry.undoes)}")
        button.button("Undo", key=f"history.undo.{entry.entry}", icon=":material/undo:", width="stretch",
                      disabled=bool(entry.undone_by), on_click=_on_undo, args=(sc, entry.entry),
                      help="Restore the old values of this entry's rows (written as a new entry)")
        with st.expander(f"{len(entry.rows):,} row(s)", expanded=len(entry.rows) <= 3):
            st.dataframe(rows_frame(entry), hide_index=True, width="stretch")


def history_section(sc: Scope, *, limit: int = LIMIT) -> None:
    """The project's history newest first (optionally one field), "Undo last" above it."""
    from core.curation.history import read_history

    _message()
    top = st.columns([2, 1, 1], vertical_alignment="bottom")
    field = top[0].selectbox("Field", ["(all)", *FIELDS], key="history.field")
    top[1].button("Undo last", key="history.undo_last", icon=":material/undo:", type="primary", width="stretch",
                  on_click=_on_undo, args=(sc, None), help="Undo the newest change that is not undone yet")
    try:
        entries = read_history(sc.store, sc.project)
    except CoreError as e:
        st.error(md(str(e), limit=300), icon=":material/warning:")
        return
    if field != "(all)":
        entries = [e for e in entries if e.field == field]
    top[2].caption(f"{len(entries):,} entr{'y' if len(entries) == 1 else 'ies'}")
    if not entries:
        st.info("No changes yet. Tag, relabel or review items on Explore or the Review page; every change "
                "is listed here, with who made it and why, and can be undone.")
        return
    for entry in entries[:limit]:
        _entry(sc, entry)
    if len(entries) > limit:
        st.caption(f"Showing the newest {limit:,} of {len(entries):,} (`embedscope history` lists them all).")
