"""An image grid: thumbnails (or text snippets) with short captions and an "Open" button each."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.display import shorten
from core.types import KEY, TEXT, URI
from ui import images
from ui.text import md

log = logging.getLogger(__name__)

DEFAULT_FIELDS: tuple[str, ...] = ("label", "prediction", "score")
MAX_ITEMS = 48
TEXT_SNIPPET = 160
KEY_HELP = 300  # characters of an item key shown in the "Open" button's tooltip


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
    data = images.thumbnail(uri, thumb_size) if isinstance(uri, str) and uri else None
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
