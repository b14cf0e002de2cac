"""An image grid: thumbnails (or text snippets) with short captions and an "Open" button each; paged
and sorted by a score (paged_grid) for selections of any size."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.display import shorten
from core.types import BOX, KEY, TEXT, URI
from ui import crops
from ui.text import md

log = logging.getLogger(__name__)

DEFAULT_FIELDS: tuple[str, ...] = ("label", "prediction", "score")
MAX_ITEMS = 48
TEXT_SNIPPET = 160
KEY_HELP = 300  # characters of an item key shown in the "Open" button's tooltip
AS_LISTED = "as listed"
# Sort choices of paged_grid: shown when their column is there; (column, ascending). NaN always last.
SORTS: dict[str, tuple[str, bool]] = {
    "mislabel score, high first": ("mislabel", False),
    "outlier score, high first": ("outlier", False),
    "confidence, low first": ("confidence", True),
    "confidence, high first": ("confidence", False),
}


def _fmt(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def caption(row: pd.Series, fields: Sequence[str]) -> str:
    """"label: cat · prediction: dog · score: 0.912" from the fields present (nulls skipped), as
    Markdown for st.caption: names and values escaped and shortened (ui.text.md)."""
    parts = []
    for name in fields:
        value = _fmt(row.get(name)) if name in row.index else None
        if value is not None:
            parts.append(f"{md(name.removeprefix('meta.'))}: {md(value)}")
    return " · ".join(parts)


def _rows_with_ids(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.set_index("id") if "id" in rows.columns else rows


def _cell(point_id: str, row: pd.Series, fields: Sequence[str], key: str,
          thumb_size: int) -> bool:
    """One grid cell; True when its button was clicked."""
    uri = row.get(URI)
    data = crops.point_thumbnail(point_id, uri, row.get(BOX), thumb_size)  # an object: its crop
    if data is not None:
        st.image(data, width="stretch")
    else:
        text = row.get(TEXT)
        snippet = shorten(text, TEXT_SNIPPET) if isinstance(text, str) and text else None
        st.text(snippet or f"(no image) {shorten(row.get(KEY) or point_id[:8])}")
    line = caption(row, fields)
    if line:
        st.caption(line)
    return st.button("Open", key=f"{key}.open.{point_id}", width="stretch",
                     help=md(row.get(KEY) or point_id, limit=KEY_HELP))


def image_grid(rows: pd.DataFrame, *, key: str, columns: int = 6,
               fields: Sequence[str] = DEFAULT_FIELDS,
               on_click: Callable[[str], None] | None = None, max_items: int = MAX_ITEMS,
               thumb_size: int = 160) -> str | None:
    """Show `rows` (indexed by point id, or with an "id" column; uri / text + `fields` columns)
    as a grid of thumbnails with captions, at most max_items (a caption says how many more).

    Returns the id whose "Open" button was clicked in this run (also passed to on_click), or
    None. Images outside the data roots show a placeholder (ui.images refuses them).
    """
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    rows = _rows_with_ids(rows)
    if rows.empty:
        st.caption("Nothing to show.")
        return None
    shown = rows.head(max_items)
    clicked: str | None = None
    for start in range(0, len(shown), columns):
        cells = st.columns(columns)
        for cell, (point_id, row) in zip(cells, shown.iloc[start:start + columns].iterrows(), strict=False):
            with cell:
                if _cell(str(point_id), row, fields, key, thumb_size):
                    clicked = str(point_id)
    if len(rows) > len(shown):
        st.caption(f"Showing {len(shown):,} of {len(rows):,}. Narrow the selection, or export "
                   "the full list.")
    if clicked is not None and on_click is not None:
        on_click(clicked)
    return clicked


def sort_choices(rows: pd.DataFrame) -> list[str]:
    """The SORTS keys whose column `rows` has (with a value somewhere), then AS_LISTED."""
    present = [name for name, (column, _) in SORTS.items()
               if column in rows.columns and rows[column].notna().any()]
    return [*present, AS_LISTED]


def sorted_positions(rows: pd.DataFrame, sort: str) -> np.ndarray:
    """Row positions of `rows` in the order of SORTS[sort] (stable, NaN last); AS_LISTED: as they are.
    One argsort on one column: the rows themselves are never reordered (350k rows: ~30 ms)."""
    if sort == AS_LISTED or sort not in SORTS or SORTS[sort][0] not in rows.columns:
        return np.arange(len(rows))
    column, ascending = SORTS[sort]
    values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)
    return np.argsort(values if ascending else -values, kind="stable")  # NaN sorts last either way


def _page_key(key: str) -> str:
    return f"{key}.page"


def _step(key: str, delta: int, pages: int) -> None:
    st.session_state[_page_key(key)] = min(max(int(st.session_state.get(_page_key(key), 0)) + delta, 0), pages - 1)


def page_caption(start: int, stop: int, total: int) -> str:
    """"Items 31–60 of 350,000"."""
    return f"Items {start + 1:,}–{stop:,} of {total:,}"


def paged_grid(rows: pd.DataFrame, *, key: str, columns: int = 6, fields: Sequence[str] = DEFAULT_FIELDS,
               page_size: int = 30, sortable: bool = True, thumb_size: int = 160) -> str | None:
    """image_grid over one page of `rows` at a time, with Previous / Next and "Items 31–60 of N";
    with sortable, a "Sort by" select (scores present in `rows`, see SORTS; the first one by default)
    whose column joins the captions. Only the page's rows are rendered (thumbnails read): fast at
    any size. The page goes back to the first one when the rows or the sort change.

    Returns the id whose "Open" button was clicked, or None.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    rows = _rows_with_ids(rows)
    if rows.empty:
        st.caption("Nothing to show.")
        return None
    sort = AS_LISTED
    if sortable:
        sort = st.selectbox("Sort by", sort_choices(rows), key=f"{key}.sort") or AS_LISTED
    pages = -(-len(rows) // page_size)
    # A new selection or sort starts at its first page (the signature is cheap: no id list compared).
    signature = (len(rows), str(rows.index[0]), str(rows.index[-1]), sort)
    if st.session_state.get(f"{key}.signature") != signature:
        st.session_state[f"{key}.signature"] = signature
        st.session_state[_page_key(key)] = 0
    page = min(int(st.session_state.get(_page_key(key), 0)), pages - 1)
    start, stop = page * page_size, min((page + 1) * page_size, len(rows))
    if pages > 1:
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.button("Previous", key=f"{key}.prev", icon=":material/chevron_left:", disabled=page == 0,
                      on_click=_step, args=(key, -1, pages))
            st.button("Next", key=f"{key}.next", icon=":material/chevron_right:", disabled=page >= pages - 1,
                      on_click=_step, args=(key, 1, pages))
            st.caption(page_caption(start, stop, len(rows)))
    shown = rows.iloc[sorted_positions(rows, sort)[start:stop]]
    column = SORTS[sort][0] if sort in SORTS else None
    fields = [*fields, column] if column is not None and column not in fields else list(fields)
    return image_grid(shown, key=key, columns=columns, fields=fields, max_items=page_size,
                      thumb_size=thumb_size)
