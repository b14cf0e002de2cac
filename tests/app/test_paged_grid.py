"""The paged, sorted selection grid (ui.widgets.grid.paged_grid) through AppTest: a 350k-row
selection shows one page of 30, sorted by a score (NaN last), with Previous / Next."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _grid_script() -> None:
    import numpy as np
    import pandas as pd
    import streamlit as st

    from ui.widgets.grid import paged_grid

    n = st.session_state["n"]
    rng = np.random.default_rng(0)
    confidence = rng.random(n)
    confidence[:1000] = np.nan  # unlabeled / unpredicted rows first in the frame: sorted last
    rows = pd.DataFrame({"text": "an item", "label": "a", "confidence": confidence,
                         "outlier": rng.random(n)}, index=pd.Index([f"id{i}" for i in range(n)], name="id"))
    picked = paged_grid(rows, key="g", columns=3, fields=("label",), page_size=30)
    st.write(f"picked: {picked}")


def _opened(at: AppTest) -> list[str]:
    return [b.key.removeprefix("g.open.") for b in at.button if b.key and b.key.startswith("g.open.")]


def _run(n: int) -> AppTest:
    at = AppTest.from_function(_grid_script, default_timeout=60)
    at.session_state["n"] = n
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_large_selection_is_paged_and_sorted_by_a_score() -> None:
    import numpy as np

    at = _run(350_000)
    assert at.selectbox(key="g.sort").options == ["outlier score, high first", "confidence, low first",
                                                 "confidence, high first", "as listed"]
    at.selectbox(key="g.sort").set_value("confidence, low first").run()
    first = _opened(at)
    assert len(first) == 30
    assert any(c.value == "Items 1–30 of 350,000" for c in at.caption), [c.value for c in at.caption]
    confidence = np.random.default_rng(0).random(350_000)
    confidence[:1000] = np.nan
    lowest = [f"id{i}" for i in np.argsort(confidence, kind="stable")[:60]]
    assert first == lowest[:30]  # never the NaN (unlabeled) rows first
    assert any("confidence: " in c.value for c in at.caption)  # the sort's column is in the captions
    at.button(key="g.next").click().run()
    assert _opened(at) == lowest[30:60]
    assert any(c.value == "Items 31–60 of 350,000" for c in at.caption)
    at.button(key="g.prev").click().run()
    assert _opened(at) == lowest[:30]
    # Opening one returns its id.
    at.button(key=f"g.open.{lowest[3]}").click().run()
    assert any(f"picked: {lowest[3]}" in m.value for m in at.markdown)


def test_a_new_sort_starts_at_the_first_page_and_the_last_page_is_short() -> None:
    at = _run(70)
    at.button(key="g.next").click().run()
    at.button(key="g.next").click().run()
    assert any(c.value == "Items 61–70 of 70" for c in at.caption)
    assert len(_opened(at)) == 10 and at.button(key="g.next").disabled
    at.selectbox(key="g.sort").set_value("as listed").run()
    assert _opened(at) == [f"id{i}" for i in range(30)]
    assert at.button(key="g.prev").disabled
