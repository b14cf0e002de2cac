"""Curation of a Problems-panel group through AppTest on a real store: tag an error cluster's points,
mark a duplicate group reviewed; the store and the history read back."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest

from tests.app.conftest import SEED_PROJECT, SEED_SPACE, Seeded, _clear_caches


def _tab_script() -> None:
    import pandas as pd
    import streamlit as st

    from ui import state
    from ui.widgets.problems import _duplicates_tab, _error_clusters_tab

    ids: list[str] = st.session_state["ids"]
    state.set_project(st.session_state["project"])
    state.set_space(st.session_state["space"])
    state.set_datasets(["train", "test", "prod"])
    # Cluster 0: the first 6 points, 3 of them model errors; duplicate group 0: points 10-12.
    scores = pd.DataFrame({"cluster": [0 if i < 6 else 1 for i in range(len(ids))],
                           "is_error": pd.array([i < 3 for i in range(len(ids))], dtype="boolean"),
                           "duplicate_group": [0 if 10 <= i < 13 else -1 for i in range(len(ids))],
                           "label": "cat", "prediction": "dog", "dataset": "train", "uri": None}, index=ids)
    errors = pd.DataFrame([{"cluster": 0, "size": 6, "errors": 3, "error_rate": 0.5, "lift": 4.0, "p_value": 0.01,
                            "top_confusion": "cat -> dog (3)", "description": "mostly cats"}])
    groups = pd.DataFrame([{"group": 0, "size": 3, "ids": ids[10:13], "datasets": ["train"], "leakage": False}])
    tab = st.session_state["tab"]
    if tab == "errors":
        _error_clusters_tab(errors, scores, "e")
    else:
        _duplicates_tab(groups, scores, "d")


def _run(seeded: Seeded, tab: str) -> tuple[AppTest, list[str]]:
    ids = seeded.ids["train"] + seeded.ids["prod"]
    at = AppTest.from_function(_tab_script, default_timeout=60)
    at.session_state["ids"], at.session_state["tab"] = ids, tab
    at.session_state["project"], at.session_state["space"] = SEED_PROJECT, SEED_SPACE
    at.run()
    assert not at.exception, at.exception
    return at, ids


def _read(seeded: Seeded) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    from core.curation.history import read_history
    from core.store import open_store

    _clear_caches()  # the tab's cached store holds the embedded store's lock
    store = open_store(seeded.settings)
    try:
        frame = store.payloads(SEED_PROJECT, SEED_SPACE)
        return ({str(i): row.dropna().to_dict() for i, row in frame.iterrows()},
                read_history(store, SEED_PROJECT))
    finally:
        store.close()


def test_tag_every_point_of_an_error_cluster(seeded_store: Seeded) -> None:
    at, ids = _run(seeded_store, "errors")
    at.multiselect(key="e.cur.0.tags").set_value(["confusing"])
    at.button(key="e.cur.0.add").click().run()
    assert not at.exception, at.exception
    payloads, history = _read(seeded_store)
    tagged = {p for p, row in payloads.items() if "confusing" in list(row.get("tags", []))}
    assert tagged == set(ids[:6])  # the whole cluster, its correct points too, nothing else
    assert history[0].field == "tags" and {r.point for r in history[0].rows} == tagged


def test_tag_and_mark_a_duplicate_group_reviewed(seeded_store: Seeded) -> None:
    at, ids = _run(seeded_store, "dups")
    at.multiselect(key="d.cur.0.tags").set_value(["duplicate"])
    at.button(key="d.cur.0.add").click().run()
    at.button(key="d.cur.0.reviewed").click().run()
    assert not at.exception, at.exception
    payloads, history = _read(seeded_store)
    group = set(ids[10:13])
    assert {p for p, row in payloads.items() if "duplicate" in list(row.get("tags", []))} == group
    assert {p for p, row in payloads.items() if row.get("reviewed") is True} == group
    assert [e.field for e in history[:2]] == ["reviewed", "tags"]
    assert all({r.point for r in e.rows} == group for e in history[:2])
