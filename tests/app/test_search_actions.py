"""Curation of search results through AppTest: tag, label and mark reviewed the hits (all, or the
ticked rows), read back from the store and its history."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import SEED_PROJECT, SEED_SPACE, Seeded, _clear_caches, run_page
from ui import search_actions, state

PAGE = "pages/3_Search.py"
RESULTS = "search.res.more."


def _result_ids(at: AppTest) -> list[str]:
    return [b.key[len(RESULTS):] for b in at.button if b.key and b.key.startswith(RESULTS)]


def _read(seeded: Seeded) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    """({point id: payload}, history newest first), read through a fresh store (the page's is closed)."""
    from core.curation.history import read_history
    from core.store import open_store

    _clear_caches()
    store = open_store(seeded.settings)
    try:
        frame = store.payloads(SEED_PROJECT, SEED_SPACE)
        return ({str(i): row.dropna().to_dict() for i, row in frame.iterrows()},
                read_history(store, SEED_PROJECT))
    finally:
        store.close()


@pytest.fixture
def searched(seeded_store: Seeded) -> tuple[AppTest, list[str]]:
    cat = next(i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "cat")
    at = run_page(PAGE)
    at.session_state[state.SEARCH_POSITIVE] = [cat]
    at.session_state["search.limit"] = 6
    at.run()
    assert not at.exception, at.exception
    hits = _result_ids(at)
    assert len(hits) == 6
    return at, hits


def test_tag_label_and_review_every_hit(seeded_store: Seeded, searched: tuple[AppTest, list[str]]) -> None:
    at, hits = searched
    at.multiselect(key=f"{search_actions.KEY}.tags").set_value(["look-again"])
    at.button(key=f"{search_actions.KEY}.add").click().run()
    assert not at.exception, at.exception
    at.selectbox(key=f"{search_actions.KEY}.label").set_value("bird")
    at.button(key=f"{search_actions.KEY}.set").click().run()
    at.button(key=f"{search_actions.KEY}.reviewed").click().run()
    assert not at.exception, at.exception

    payloads, history = _read(seeded_store)
    for pid in hits:
        assert list(payloads[pid]["tags"]) == ["look-again"]
        assert payloads[pid]["label"] == "bird" and payloads[pid]["reviewed"] is True
    others = set(payloads) - set(hits)
    assert others and not any("tags" in payloads[p] or payloads[p].get("reviewed") for p in others)
    assert [e.field for e in history[:3]] == ["reviewed", "label", "tags"]
    assert {r.point for r in history[2].rows} == set(hits)  # the tag entry names every hit
    labelled = {r.point for r in history[1].rows}
    assert labelled == {p for p in hits if seeded_store.labels.get(p) != "bird"}  # only what changed


def test_ticked_rows_narrow_the_action(seeded_store: Seeded, searched: tuple[AppTest, list[str]]) -> None:
    at, hits = searched
    at.session_state[search_actions.table_key(hits)] = {"selection": {"rows": [1, 3], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    assert any("2 ticked" in c.value for c in at.caption)
    at.multiselect(key=f"{search_actions.KEY}.tags").set_value(["odd"])
    at.button(key=f"{search_actions.KEY}.add").click().run()
    assert not at.exception, at.exception

    payloads, history = _read(seeded_store)
    tagged = {p for p, row in payloads.items() if "odd" in list(row.get("tags", []))}
    assert tagged == {hits[1], hits[3]}
    assert history[0].field == "tags" and {r.point for r in history[0].rows} == tagged
