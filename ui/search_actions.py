"""The Search page's curation of its hits: tag / untag, set the label, mark reviewed, on every hit
or on the rows ticked in the results table (ui.widgets.curation does the writes)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from ui.page import PageContext
from ui.widgets.curation import curation_actions

KEY = "search.cur"  # the curation widgets' key prefix (search.cur.tags, search.cur.add, ...)
TABLE_KEY = "search.table"  # the results table's key prefix; its selection is the ticked rows


def table_key(ids: Sequence[str]) -> str:
    """The results table's key for this list of hits: a new result list gets a new table, so a
    tick never carries over to another query's row at the same position."""
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]
    return f"{TABLE_KEY}.{digest}"


def ticked(ids: Sequence[str]) -> list[str]:
    """The ids of the rows ticked in the results table of these hits ([] when none is ticked)."""
    selection = st.session_state.get(table_key(ids))
    rows = getattr(getattr(selection, "selection", None), "rows", None)
    if rows is None and isinstance(selection, dict):
        rows = (selection.get("selection") or {}).get("rows")
    return [ids[r] for r in sorted(set(rows or [])) if 0 <= r < len(ids)]


def hit_actions(ctx: PageContext, ids: Sequence[str]) -> None:
    """Tag / Label / Reviewed on the ticked hits, or on every hit when none is ticked. The ids are
    read on click (from the table's selection then), so a tick made just before counts."""
    if not ids:
        return
    hits = list(ids)
    chosen = ticked(hits)
    st.caption(f"Curate the {len(chosen):,} ticked result(s):" if chosen else
               f"Curate all {len(hits):,} results (tick rows in *Results as a table* to act on some only):")
    curation_actions(ctx, lambda: ticked(hits) or hits, key=KEY, count=len(chosen or hits))


def results_table(rows: pd.DataFrame, ids: Sequence[str]) -> None:
    """The hits as a table whose rows can be ticked (rows: indexed by point id, in ids' order)."""
    st.dataframe(rows, width="stretch", key=table_key(list(ids)), on_select="rerun",
                 selection_mode="multi-row")
