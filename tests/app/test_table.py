"""The Explore table: sorting, filtering and paging on the whole frame, thumbnails for the page, and
the links to the map (a selection filters the table, selected rows are ringed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.app.conftest import Seeded, run_page
from ui.widgets import table
from ui.widgets.table import TableQuery

PAGE = "pages/2_Explore.py"


def _frame(n: int = 250, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, n)
    conf[::7] = np.nan
    labels = np.array(["cat", "dog", "bird", None], dtype=object)[rng.integers(0, 4, n)]
    tags = [["hard", "blurry"] if i % 5 == 0 else (["hard"] if i % 3 == 0 else None) for i in range(n)]
    return pd.DataFrame({"key": [f"k{i:04d}" for i in range(n)], "label": labels, "confidence": conf, "tags": tags},
                        index=pd.Index([f"id{i}" for i in range(n)], name="id"))


# -- the frame logic (no Streamlit run) ----------------------------------------------------------

def test_sort_order_sorts_the_whole_frame_with_nulls_last() -> None:
    frame = _frame()
    for descending in (False, True):
        conf = frame["confidence"].to_numpy()[table.sort_order(frame["confidence"], descending)]
        finite = conf[~np.isnan(conf)]
        assert np.isnan(conf[len(finite):]).all() and len(finite) == frame["confidence"].notna().sum()
        assert (np.diff(finite) <= 0).all() if descending else (np.diff(finite) >= 0).all()
        labels = frame["label"].to_numpy()[table.sort_order(frame["label"], descending)]
        named = [v for v in labels if not pd.isna(v)]
        assert named == sorted(named, reverse=descending) and pd.isna(labels[len(named):]).all()
    tags = table.sort_order(frame["tags"])  # lists sort by their text
    texts = [", ".join(t) for t in frame["tags"].iloc[tags] if isinstance(t, list)]
    assert len(texts) == frame["tags"].notna().sum() and texts == sorted(texts) and texts[0] == "hard"


def test_filters_by_value_range_text_and_tag() -> None:
    frame = _frame()
    in_range = table.value_mask(frame["confidence"], TableQuery(column="confidence", low=0.2, high=0.5))
    conf = frame["confidence"].to_numpy()
    assert in_range.sum() == ((conf >= 0.2) & (conf <= 0.5)).sum() > 0
    cats = table.value_mask(frame["label"], TableQuery(column="label", values=("cat",)))
    assert cats.sum() == (frame["label"] == "cat").sum() > 0
    keys = table.value_mask(frame["key"], TableQuery(column="key", text="K00"))  # case-insensitive
    assert keys.sum() == 100
    blurry = table.value_mask(frame["tags"], TableQuery(column="tags", values=("blurry",)))
    assert blurry.sum() == 50 and blurry[::5].all()


def test_pages_follow_the_sort_of_the_included_rows() -> None:
    frame = _frame()
    order = table.sort_order(frame["confidence"], descending=True)
    included = frame["label"].eq("dog").to_numpy()
    first, total = table.page_positions(order, included, page=0, page_size=20)
    last, _ = table.page_positions(order, included, page=99, page_size=20)  # clipped to the last page
    assert total == included.sum() and len(first) == 20 and 0 < len(last) <= 20
    pages = [table.page_positions(order, included, p, page_size=20)[0] for p in range(-(-total // 20))]
    assert np.array_equal(pages[-1], last)
    every = np.concatenate(pages)  # the pages, in turn, are the included rows in sort order
    assert sorted(every) == list(np.flatnonzero(included))
    conf = frame["confidence"].to_numpy()[every]
    finite = conf[~np.isnan(conf)]
    assert (np.diff(finite) <= 0).all() and np.isnan(conf[len(finite):]).all()
    page = table.page_frame(frame, first, table.table_columns(frame), thumbnails=False)
    assert list(page.columns) == ["key", "label", "confidence", "tags"] and list(page.index) == \
        list(frame.index[first])


def test_selected_rows_map_to_the_page_ids() -> None:
    from ui import state
    from ui.widgets import scatter

    assert state.SEARCH_RESULTS == scatter.HIGHLIGHT  # the default name of ringed points, in two places
    shown = ["a", "b", "c"]
    assert table.selected_ids({"selection": {"rows": [2, 0, 7]}}, shown) == ["c", "a"]
    assert table.selected_ids(None, shown) == [] and table.selected_ids({"selection": {}}, shown) == []


# -- on the page ---------------------------------------------------------------------------------

def _table(at: AppTest) -> pd.DataFrame:
    frames = [d for d in at.dataframe if d.key and d.key.startswith("explore.table.rows.")]
    assert len(frames) == 1, [d.key for d in at.dataframe]
    value: Any = frames[0].value
    return value


def test_the_table_lists_the_view_and_follows_the_selection(seeded_store: Seeded) -> None:
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"
    at.run()
    assert not at.exception, at.exception
    assert not [d for d in at.dataframe if d.key and d.key.startswith("explore.table.rows.")]  # closed: not built
    at.session_state["explore.table.open"] = True  # the user opens the table's expander
    at.run()
    rows = _table(at)
    assert len(rows) == seeded_store.total  # one page (100 rows) holds the 48 points
    assert rows[table.IMAGE].str.startswith("data:image/jpeg;base64,").all()  # thumbnails
    conf = rows["confidence"].to_numpy()
    assert (np.diff(conf) >= 0).all()  # sorted by confidence by default
    at.toggle(key="explore.table.desc").set_value(True).run()
    assert (np.diff(_table(at)["confidence"].to_numpy()) <= 0).all()
    # A filter by value on the table.
    at.selectbox(key="explore.table.fcol").set_value("label").run()
    at.multiselect(key="explore.table.values.label").set_value(["dog"]).run()
    assert set(_table(at)["label"]) == {"dog"}
    # A selection on the map (a lasso sets it) filters the table to its rows.
    chosen = seeded_store.ids["train"][:6]
    at.session_state["es.selection"] = chosen
    at.selectbox(key="explore.table.fcol").set_value("(no filter)").run()
    assert not at.exception, at.exception
    assert sorted(_table(at)["key"]) == sorted(f"train_{i:03d}.png" for i in range(6))
