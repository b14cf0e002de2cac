"""The Explore table: every point of the view (or of the selection), sorted and filtered on the whole
frame, shown a page at a time with thumbnails; selected rows are ringed on the map."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.curation.points import tag_list
from core.thumbnails import INGEST_SIZE
from core.types import BOX, CONFIDENCE, DATASET, KEY, LABEL, META, PREDICTION, REVIEWED, SPLIT, TAGS, URI
from ui import crops, state
from ui.explore import SCORE_CATEGORICAL, SCORE_NUMERIC

log = logging.getLogger(__name__)

PAGE_SIZE = 100
# pages/2_Explore.py's memo of its selection: (map token, ids, positions in the map frame).
PAGE_POSITIONS = "explore.selection.positions"
RINGED = "table rows"  # the map legend's name for the rows selected in the table
IMAGE = "image"  # the thumbnail column (data URIs), made for the shown page only
NO_FILTER = "(no filter)"
MAX_CHOICES = 500  # distinct values offered by a value filter (more: filter by text instead)
# Table columns in this order when the frame has them (plus the map's colour column if it is metadata).
COLUMNS: tuple[str, ...] = (KEY, DATASET, LABEL, PREDICTION, CONFIDENCE, *SCORE_NUMERIC, *SCORE_CATEGORICAL,
                            TAGS, REVIEWED, SPLIT)


@dataclass(frozen=True)
class TableQuery:
    """What the controls ask for: sort column and direction, one filter (values or a range), the page."""

    sort: str | None = None
    descending: bool = False
    column: str | None = None
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    text: str = ""
    page: int = 0


def table_columns(frame: pd.DataFrame, extra: Sequence[str] = ()) -> list[str]:
    """The frame's columns the table shows, in COLUMNS order, then `extra` metadata columns."""
    wanted = [*COLUMNS, *(c for c in extra if c.startswith(f"{META}.") and c not in COLUMNS)]
    return [c for c in wanted if c in frame.columns]


def _is_numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def _as_text(column: pd.Series) -> pd.Series:
    """A column as hashable values: lists (tags) become "a, b" (each value once, not per row, when
    hashable already)."""
    if column.dtype != object:
        return column
    try:
        column.head(1000).nunique()
        return column
    except TypeError:  # lists (tags), arrays after a Parquet round trip
        return column.map(lambda v: ", ".join(tag_list(v)) or None)


def sort_order(column: pd.Series, descending: bool = False) -> np.ndarray:
    """(n,) int64 positions that sort `column` (nulls last either way; ties keep frame order).

    Numbers sort by value; anything else by its sorted distinct values' codes (pd.factorize: one
    hash pass, then an integer argsort, instead of comparing 1M strings)."""
    if _is_numeric(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        key = -values if descending else values
        return np.argsort(key, kind="stable")  # NaN sorts last in numpy, negated or not
    codes, uniques = pd.factorize(_as_text(column).astype(object), sort=True, use_na_sentinel=True)
    n = len(uniques)
    key = np.where(codes < 0, n, (n - 1 - codes) if descending else codes)
    return np.argsort(key, kind="stable")


def value_mask(column: pd.Series, query: TableQuery) -> np.ndarray:
    """(n,) bool: the rows of `column` that pass the query's filter (values, range or text)."""
    if query.low is not None or query.high is not None:
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        low = -np.inf if query.low is None else query.low
        high = np.inf if query.high is None else query.high
        return (values >= low) & (values <= high)  # NaN fails both
    text = _as_text(column)
    if query.values:
        if column.dtype == object and text is not column:  # tags: any chosen tag
            chosen = {str(v) for v in query.values}
            return np.fromiter((bool(chosen.intersection(tag_list(v))) for v in column), bool, len(column))
        return text.isin(list(query.values)).to_numpy()
    if query.text:
        return text.astype("string").str.contains(query.text, case=False, regex=False).fillna(False).to_numpy(bool)
    return np.ones(len(column), dtype=bool)


def page_positions(order: np.ndarray, included: np.ndarray, page: int,
                   page_size: int = PAGE_SIZE) -> tuple[np.ndarray, int]:
    """(positions of the page's rows, number of included rows). order: (n,) sort_order of the whole
    frame; included: (n,) bool. The page is clipped into range."""
    kept = order[included[order]]
    pages = max(1, -(-len(kept) // page_size))
    page = min(max(page, 0), pages - 1)
    return kept[page * page_size:(page + 1) * page_size], len(kept)


def page_frame(frame: pd.DataFrame, positions: np.ndarray, columns: Sequence[str],
               thumbnails: bool = True) -> pd.DataFrame:
    """The page's rows (indexed by id) with the table's columns, tags as text, and an IMAGE column of
    thumbnail data URIs (None without an image) when thumbnails."""
    rows = frame.iloc[positions]
    out = pd.DataFrame(index=rows.index)
    if thumbnails and URI in rows.columns:
        from ui.resources import get_settings

        settings = get_settings()  # once per page, not per thumbnail
        boxes = rows[BOX] if BOX in rows.columns else pd.Series(None, index=rows.index, dtype=object)
        out[IMAGE] = [crops.point_data_uri(i, u, b, INGEST_SIZE, settings)  # an object: its crop
                      for i, u, b in zip(rows.index, rows[URI], boxes, strict=True)]
    for name in columns:
        column = rows[name]
        out[name] = _as_text(column) if name == TAGS else column
    return out


@st.cache_resource(show_spinner=False, max_entries=8)
def _order(token: str, column: str, descending: bool, _frame: pd.DataFrame) -> np.ndarray:
    # Per map build (token): a sort of 1M rows is made once, then every page and filter reuses it.
    return sort_order(_frame[column], descending)


@st.cache_resource(show_spinner=False, max_entries=16)
def _choices(token: str, column: str, _frame: pd.DataFrame) -> list[Any]:
    values = _as_text(_frame[column]).dropna()
    if column == TAGS:
        values = pd.Series([t for v in _frame[column].dropna() for t in tag_list(v)], dtype=object)
    uniques = values.unique()
    return sorted(uniques.tolist(), key=str) if len(uniques) <= MAX_CHOICES else []


def _controls(frame: pd.DataFrame, columns: list[str], key: str, token: str) -> tuple[TableQuery, Any]:
    """The query of the controls, and a slot for the page number (known once the rows are counted).
    One row: sort, direction, filter column, page; the filter's values get the whole width below."""
    c1, c2, c3, c4 = st.columns([1.4, 1, 1.4, 1], vertical_alignment="bottom")
    page_slot = c4.empty()
    sort = c1.selectbox("Sort by", columns, key=f"{key}.sort",
                        index=columns.index(CONFIDENCE) if CONFIDENCE in columns else 0)
    descending = c2.toggle("Descending", key=f"{key}.desc", help="Sort from the largest / last value")
    column = c3.selectbox("Filter", [NO_FILTER, *columns], key=f"{key}.fcol")
    query = TableQuery(sort=sort, descending=descending)
    if column == NO_FILTER or column is None:
        return query, page_slot
    return _filter(frame, query, column, key, token), page_slot


def _filter(frame: pd.DataFrame, query: TableQuery, column: str, key: str, token: str) -> TableQuery:
    """The value widget of the filter column: a range for numbers, a choice of values, else a text."""
    series = frame[column]
    if _is_numeric(series) and column not in SCORE_CATEGORICAL:
        finite = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = finite[np.isfinite(finite)]
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
        if low < high:
            chosen = st.slider(f"{column} range", low, high, (low, high), key=f"{key}.range.{column}")
            return replace(query, column=column, low=chosen[0], high=chosen[1])
        return query
    choices = _choices(token, column, frame)
    if choices:
        picked = st.multiselect(f"{column} is", choices, key=f"{key}.values.{column}", placeholder="any",
                                format_func=str)
        return replace(query, column=column, values=tuple(picked))
    return replace(query, column=column, text=st.text_input(f"{column} contains", key=f"{key}.text.{column}"))


def selected_ids(event: Any, shown: Sequence[str]) -> list[str]:
    """The ids of the rows selected in a st.dataframe selection event ({"selection": {"rows": [...]}});
    shown: the ids of the page's rows, in order."""
    rows = ((event or {}).get("selection") or {}).get("rows") or []
    return [shown[r] for r in rows if isinstance(r, int) and 0 <= r < len(shown)]


def _on_rows(widget: str, ids_key: str) -> None:
    """The table's row selection (a callback: runs before the rerun, so the map rings them at once)."""
    ids = selected_ids(st.session_state.get(widget), st.session_state.get(ids_key) or [])
    state.set_highlight_ids(ids, RINGED)
    st.session_state[f"{ids_key}.owner"] = widget if ids else None
    if len(ids) == 1:
        state.set_detail_id(ids[0])


def _positions_of(frame: pd.DataFrame, selected: pd.DataFrame | None, key: str, token: str) -> np.ndarray | None:
    """Positions in `frame` of the selection's rows, remembered per (map build, selection)."""
    if selected is None or selected.empty:
        return None
    # Checking remembered positions is one vectorised comparison (12 ms for 350k of 1M ids); looking
    # the ids up is not (2.4 s the first time). Explore remembers its selection's positions too.
    for memo in (st.session_state.get(f"{key}.selpos"), st.session_state.get(PAGE_POSITIONS)):
        if isinstance(memo, tuple) and memo[0] == token and len(memo[-1]) == len(selected) \
                and frame.index[memo[-1]].equals(selected.index):
            return np.asarray(memo[-1])
    positions = frame.index.get_indexer(selected.index)
    positions = positions[positions >= 0]
    st.session_state[f"{key}.selpos"] = (token, positions)
    return positions


def view_table(frame: pd.DataFrame, visible: np.ndarray, selected: pd.DataFrame | None, *, token: str,
               key: str, extra: Sequence[str] = ()) -> None:
    """The table of the map's points: the selection's rows when there is one (a lasso filters the
    table), else every visible point. frame: the map frame (ui.explore.MapData.frame, indexed by
    id); visible: (n,) bool; token: the map build's token (keys the cached sort orders). In a
    collapsed expander of its own, built only when opened."""
    columns = table_columns(frame, extra)
    if not columns:
        return
    box = st.expander(":material/table_rows: Table of the points", key=f"{key}.open", on_change="rerun")
    if not box.open:
        return  # built only while open: a collapsed table costs nothing per rerun
    with box:
        _table(frame, visible, selected, columns, token=token, key=key)


def _table(frame: pd.DataFrame, visible: np.ndarray, selected: pd.DataFrame | None, columns: list[str], *,
           token: str, key: str) -> None:
    query, page_slot = _controls(frame, columns, key, token)
    included = np.asarray(visible, dtype=bool).copy()
    positions = _positions_of(frame, selected, key, token)
    if positions is not None:
        chosen = np.zeros(len(frame), dtype=bool)
        chosen[positions] = True
        included &= chosen
    if query.column is not None:
        included &= value_mask(frame[query.column], query)
    order = _order(token, query.sort or columns[0], query.descending, frame)
    total = int(included.sum())
    pages = max(1, -(-total // PAGE_SIZE))
    sig = hashlib.sha1(repr((token, query, total)).encode()).hexdigest()[:12]
    page = int(page_slot.number_input(f"Page (of {pages:,})", 1, pages, 1, key=f"{key}.page.{sig}")) - 1
    shown, total = page_positions(order, included, page)
    table = page_frame(frame, shown, columns)
    ids_key = f"{key}.ids"
    st.session_state[ids_key] = table.index.astype(str).tolist()
    widget = f"{key}.rows.{sig}.{page}"  # a new page or query starts with no rows selected
    if st.session_state.get(f"{ids_key}.owner") not in (None, widget):  # rings of a page no longer shown
        state.set_highlight_ids([])
        st.session_state[f"{ids_key}.owner"] = None
    st.caption(f"{total:,} {'selected ' if positions is not None else ''}point(s), "
               f"rows {page * PAGE_SIZE + min(1, len(table)):,}–{page * PAGE_SIZE + len(table):,}. "
               "Select rows to ring them on the map (one row opens it).")
    st.dataframe(table, key=widget, on_select=functools.partial(_on_rows, widget, ids_key), selection_mode="multi-row",
                 hide_index=True, width="stretch", row_height=48,
                 column_config={IMAGE: st.column_config.ImageColumn("", width="small"),
                                CONFIDENCE: st.column_config.NumberColumn(format="%.3f"),
                                **{s: st.column_config.NumberColumn(format="%.3f") for s in SCORE_NUMERIC}})
