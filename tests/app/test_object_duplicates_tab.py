"""The objects Problems panel's Duplicates / leakage tab through AppTest on a real store: a label boxed twice and
crops pasted into another dataset show as groups; Select group rings them; Reviewed marks a group in the store."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import _clear_caches, run_page
from ui import state

PAGE = "pages/2_Explore.py"
KEY = "explore.objproblems.dups"
P, S = "det", "own"


def _seeded(app_env: Settings) -> tuple[set[str], set[str]]:
    from core.store import open_store
    from tests.core.test_object_duplicates import seed

    store = open_store(app_env)
    try:
        return seed(store, P, S)
    finally:
        store.close()


def _find(at: AppTest) -> AppTest:
    at.session_state["explore.method"] = "PCA"
    at.session_state["explore.points"] = "objects"
    at.session_state[state.PROJECT] = P
    at.session_state[state.SPACE] = S
    at.run()
    assert not at.exception, at.exception
    at.button(key="explore.find").click().run()
    assert not at.exception, at.exception
    return at


def _groups(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Group ")]


def test_duplicate_boxes_show_as_groups_with_leakage_selection_and_curation(app_env: Settings) -> None:
    pair, leaking = _seeded(app_env)
    at = _find(run_page(PAGE, timeout=240))
    assert "Duplicates / leakage" in [t.label for t in at.tabs]
    lines = _groups(at)
    assert len(lines) == 5, lines  # the twice-labelled box + 4 pasted crops (label / prediction pairs apart)
    leaks = [line for line in lines if "leakage across datasets" in line]
    assert len(leaks) == 4 and lines[:4] == leaks  # leaking groups first
    twice = [line for line in lines if "one image (boxed twice)" in line]
    assert len(twice) == 1 and "2 label boxes" in twice[0] and "leakage" not in twice[0]
    group = twice[0].removeprefix("**Group ").split("**", 1)[0]
    # Select group rings the pair on the map.
    at.button(key=f"{KEY}.sel.{group}").click().run()
    assert not at.exception, at.exception
    assert set(at.session_state["es.selection"]) == pair
    # Reviewed marks the group's boxes in the store, and only them.
    at.button(key=f"{KEY}.cur.{group}.reviewed").click().run()
    assert not at.exception, at.exception
    from core.store import open_store

    _clear_caches()  # the page's cached store holds the embedded store's lock
    store = open_store(app_env)
    try:
        frame = store.payloads(P, S)
    finally:
        store.close()
    reviewed = set(frame.index[frame["reviewed"].fillna(False).astype(bool)]) if "reviewed" in frame else set()
    assert reviewed == pair
