"""Curation on Explore and History through AppTest: tag a selection and filter the map by the tag, accept
suggested labels (a preview, then Apply) and undo the change from the History page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.ids import point_id
from tests.actors import ADMIN
from tests.app.conftest import SEED_PROJECT, SEED_SPACE, Seeded, run_page

EXPLORE, HISTORY = "pages/2_Explore.py", "pages/7_History.py"
SELECTION, DETAIL_ID = "es.selection", "es.detail_id"


@dataclass
class Flipped:
    seeded: Seeded
    flipped: list[str]  # "cat" images labeled "dog"


def _cat(rng: np.random.Generator) -> Image.Image:
    pixels = np.zeros((16, 16), dtype=np.float32)
    pixels[:, :5] = 200  # class 0 ("cat") lights the left third (tests/app/conftest.py)
    return Image.fromarray(np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8),
                           "L").convert("RGB")


def plant_flipped_labels(seeded: Seeded, n: int = 3) -> list[str]:
    """Add n cat images labeled "dog" to train and persist an analysis of every dataset (as Find problems
    does), so the likely mislabels carry suggested labels. Returns their point ids."""
    from core.pipeline.analyse import run_analysis
    from core.store import open_store

    settings, rng = seeded.settings, np.random.default_rng(3)
    store = open_store(settings)
    try:
        ids = []
        for i in range(n):
            name = f"flipped{i}.png"
            path = settings.demo_dir / SEED_PROJECT / "train" / name
            image = _cat(rng)
            image.save(path)
            vec = np.asarray(image.convert("L"), dtype=np.float32).ravel()
            pid = point_id(SEED_PROJECT, "train", name)
            store.upsert(SEED_PROJECT, SEED_SPACE, [pid], (vec / np.linalg.norm(vec))[None, :],
                         [{"dataset": "train", "key": name, "uri": str(path), "text": None, "label": "dog",
                           "prediction": "cat", "confidence": 0.9, "split": "train",
                           "meta": {"camera": "cam0"}, "kind": "item"}])
            ids.append(pid)
        run_analysis(store, SEED_PROJECT, SEED_SPACE, ["prod", "test", "train"], actor=ADMIN)
    finally:
        store.close()
    return ids


@pytest.fixture
def flipped(seeded_store: Seeded) -> Flipped:
    return Flipped(seeded_store, plant_flipped_labels(seeded_store))


def payload(seeded: Seeded, pid: str) -> dict[str, Any]:
    """The point's payload, read from the store (the page's store is closed first)."""
    import streamlit as st

    from core.filters import Filter
    from core.store import open_store

    st.cache_resource.clear()  # the pages' cached store holds the embedded store's lock
    store = open_store(seeded.settings)
    try:
        frame = store.payloads(SEED_PROJECT, SEED_SPACE, Filter.ids([pid]))
        return frame.iloc[0].to_dict()
    finally:
        store.close()


def _explore(**state: Any) -> AppTest:
    at = run_page(EXPLORE, timeout=180)
    at.session_state["explore.method"] = "PCA"
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _shown(at: AppTest) -> int:
    """N of the "**N** of M points" caption."""
    text = next(c.value for c in at.caption if " of " in c.value and "points" in c.value)
    return int(text.split("**")[1].replace(",", ""))


def test_tag_a_selection_then_filter_and_colour_the_map_by_it(seeded_store: Seeded) -> None:
    chosen = seeded_store.ids["train"][:4] + seeded_store.ids["prod"][:2]
    at = _explore(**{SELECTION: chosen})
    assert not at.exception, at.exception
    assert "explore.flt.tags" not in [m.key for m in at.sidebar.multiselect]  # no tag yet: no tag filter
    at.multiselect(key="explore.sel.cur.tags").set_value(["blurry"])
    at.button(key="explore.sel.cur.add").click().run()
    assert not at.exception, at.exception
    assert at.multiselect(key="explore.sel.cur.tags").value == []  # cleared for the next tag
    # The filter offers the new tag on this rerun (the caches key on the store's revision).
    tag_filter = at.sidebar.multiselect(key="explore.flt.tags")
    assert tag_filter.options == ["blurry"]
    total = _shown(at)
    tag_filter.set_value(["blurry"]).run()
    assert not at.exception, at.exception
    assert _shown(at) == len(chosen) < total
    at.selectbox(key="explore.colour").set_value("tags").run()
    assert not at.exception, at.exception
    assert "blurry" in {t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    # Untagging two of them narrows the filtered map to the rest.
    at.multiselect(key="explore.sel.cur.tags").set_value(["blurry"])
    at.session_state[SELECTION] = chosen[:2]
    at.run()
    at.multiselect(key="explore.sel.cur.tags").set_value(["blurry"])
    at.button(key="explore.sel.cur.remove").click().run()
    assert not at.exception, at.exception
    assert _shown(at) == len(chosen) - 2
    at.button(key="explore.sel.cur.reviewed").click().run()
    assert not at.exception, at.exception
    tag_filter = at.sidebar.multiselect(key="explore.flt.tags").set_value([])
    at.sidebar.selectbox(key="explore.flt.reviewed").set_value("reviewed").run()
    assert _shown(at) == 2  # the two still selected
    at.sidebar.selectbox(key="explore.flt.reviewed").set_value("not reviewed").run()
    assert _shown(at) == total - 2
    at.selectbox(key="explore.colour").set_value("reviewed").run()
    assert not at.exception, at.exception
    assert payload(seeded_store, chosen[0])["reviewed"] is True
    assert list(payload(seeded_store, chosen[2])["tags"]) == ["blurry"]


def test_accept_suggested_labels_with_a_preview_then_undo_from_history(flipped: Flipped) -> None:
    at = _explore()
    assert not at.exception, at.exception
    at.toggle(key="explore.problems.mislabel.cur.suggest.open").set_value(True).run()
    assert not at.exception, at.exception
    preview = next(d.value for d in at.dataframe if d.key == "explore.problems.mislabel.cur.suggest.table")
    assert sorted(preview["point"]) == sorted(flipped.flipped)  # old -> new, a tick per row
    assert set(preview["old"]) == {"dog"} and set(preview["new"]) == {"cat"} and preview["accept"].all()
    at.button(key="explore.problems.mislabel.cur.suggest.apply").click().run()
    assert not at.exception, at.exception
    for pid in flipped.flipped:
        assert payload(flipped.seeded, pid)["label"] == "cat"
        assert payload(flipped.seeded, pid)["original_label"] == "dog"

    history = run_page(HISTORY).run()
    assert not history.exception, history.exception
    heads = [m.value for m in history.markdown if "**label**" in m.value]
    assert heads and "from a finding" in heads[0]
    history.button(key="history.undo_last").click().run()
    assert not history.exception, history.exception
    assert any("Undone" in s.value for s in history.success)
    for pid in flipped.flipped:
        assert payload(flipped.seeded, pid)["label"] == "dog"
    # The undo is an entry too, and the undone one can no longer be undone.
    assert any("undo" in m.value for m in history.markdown if "**label**" in m.value)
    undone = [b for b in history.button if b.key and b.key.startswith("history.undo.") and b.disabled]
    assert len(undone) == 1


def test_accept_one_suggestion_from_the_opened_item(flipped: Flipped) -> None:
    pid = flipped.flipped[0]
    at = _explore(**{DETAIL_ID: pid})
    assert not at.exception, at.exception
    at.button(key="explore.detail.cur.accept").click().run()
    assert not at.exception, at.exception
    assert payload(flipped.seeded, pid)["label"] == "cat"
    assert "explore.detail.cur.accept" not in [b.key for b in at.button]  # nothing left to accept
