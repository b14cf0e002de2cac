"""Shareable views through AppTest: a link reopens project, space, datasets, colour, filters and the
opened item on a fresh session; bad links fall back with a notice; the URL follows the page; saved
views reopen and delete."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import SEED_PROJECT, SEED_SPACE, Seeded, run_page

EXPLORE = "pages/2_Explore.py"


def _open(page: str, params: dict[str, Any], **session: Any) -> AppTest:
    at = run_page(page, timeout=180)
    at.session_state["explore.method"] = "PCA"  # fast map
    for key, value in session.items():
        at.session_state[key] = value
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _url(at: AppTest) -> dict[str, list[str]]:
    return {k: list(v) if isinstance(v, list) else [v] for k, v in at.query_params.items()}


def _toasts(at: AppTest) -> str:
    return "\n".join(str(t.value) for t in at.toast)


def test_a_link_reopens_the_explore_view(seeded_store: Seeded) -> None:
    item = seeded_store.ids["test"][3]
    at = _open(EXPLORE, {"project": SEED_PROJECT, "space": SEED_SPACE, "datasets": ["train", "test"],
                         "colour": "prediction", "f.label": ["cat", "dog"], "f.meta.camera": "cam1",
                         "f.confidence": "0.5:1", "item": item})
    assert not at.exception, at.exception
    assert at.sidebar.multiselect(key="_w.datasets").value == ["train", "test"]
    assert at.selectbox(key="explore.colour").value == "prediction"
    assert at.sidebar.multiselect(key="explore.flt.label").value == ["cat", "dog"]
    assert at.sidebar.selectbox(key="explore.flt.meta_field").value == "meta.camera"
    assert at.sidebar.multiselect(key="explore.flt.meta_values.meta.camera").value == ["cam1"]
    low, high = at.sidebar.slider(key="explore.flt.confidence").value
    assert low == 0.5 and high <= 1.0
    assert at.session_state["es.detail_id"] == item
    assert any("Nearest neighbours" in str(m.value) for m in at.markdown)
    assert not _toasts(at)
    url = _url(at)  # the URL still says the same (written back in the page's own form)
    assert url["colour"] == ["prediction"] and url["f.label"] == ["cat", "dog"] and url["item"] == [item]
    assert url["datasets"] == ["train", "test"] and url["f.meta.camera"] == ["cam1"]


def test_the_url_follows_the_page(seeded_store: Seeded) -> None:
    at = _open(EXPLORE, {})
    assert not at.exception, at.exception
    url = _url(at)
    assert url["project"] == [SEED_PROJECT] and url["space"] == [SEED_SPACE]
    assert "f.label" not in url and "item" not in url
    at.selectbox(key="explore.colour").set_value("agreement").run()
    at.sidebar.multiselect(key="explore.flt.label").set_value(["bird"]).run()
    url = _url(at)
    assert url["colour"] == ["agreement"] and url["f.label"] == ["bird"]
    # Another page keeps the sidebar's part of the view only.
    search = _open("pages/3_Search.py", {"project": SEED_PROJECT, "datasets": "prod"})
    assert not search.exception, search.exception
    assert _url(search) == {"project": [SEED_PROJECT], "space": [SEED_SPACE], "datasets": ["prod"]}


def test_a_bad_link_falls_back_with_a_notice(seeded_store: Seeded) -> None:
    at = _open(EXPLORE, {"project": "no-such-project", "colour": "x"})
    assert not at.exception, at.exception
    assert "does not exist" in _toasts(at)
    assert _url(at)["project"] == [SEED_PROJECT]
    at = _open(EXPLORE, {"project": SEED_PROJECT, "space": "gone", "datasets": ["train", "nope"],
                         "colour": "bogus", "f.label": "unicorn", "item": "not-an-id"})
    assert not at.exception, at.exception
    toasts = _toasts(at)
    assert "bogus" in toasts or "unicorn" in toasts  # at most three notices are shown
    assert at.selectbox(key="explore.colour").value == "label"
    assert at.sidebar.multiselect(key="explore.flt.label").value == []
    assert at.sidebar.multiselect(key="_w.datasets").value == ["train"]
    assert "es.detail_id" not in at.session_state or at.session_state["es.detail_id"] is None


def test_a_link_without_a_project_applies_to_the_default_one(seeded_store: Seeded) -> None:
    at = _open(EXPLORE, {"colour": "split", "f.prediction": "dog"})
    assert not at.exception, at.exception
    assert at.selectbox(key="explore.colour").value == "split"
    assert at.sidebar.multiselect(key="explore.flt.prediction").value == ["dog"]
    assert _url(at)["project"] == [SEED_PROJECT]


def test_a_link_to_an_empty_store_does_not_fail(app_env: Settings) -> None:
    at = _open(EXPLORE, {"project": "demo", "colour": "label"})
    assert not at.exception, at.exception
    assert "does not exist" in _toasts(at)


def test_saved_views_reopen_and_delete(seeded_store: Seeded) -> None:
    at = _open(EXPLORE, {})
    at.selectbox(key="explore.colour").set_value("prediction").run()
    at.sidebar.multiselect(key="explore.flt.label").set_value(["dog"]).run()
    at.sidebar.text_input(key="_w.view_name").set_value("dogs").run()
    at.sidebar.button(key="_w.view_save").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.button(key="_w.view_open.0").label == "dogs"
    # Change the view, then reopen the saved one.
    at.selectbox(key="explore.colour").set_value("label").run()
    at.sidebar.multiselect(key="explore.flt.label").set_value([]).run()
    at.sidebar.button(key="_w.view_open.0").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="explore.colour").value == "prediction"
    assert at.sidebar.multiselect(key="explore.flt.label").value == ["dog"]
    at.sidebar.button(key="_w.view_delete.0").click().run()
    assert not [b for b in at.sidebar.button if b.key == "_w.view_open.0"]
