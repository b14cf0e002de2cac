"""The Compare page through AppTest, on the demo (production holds a digit never seen in train)
and on one dataset whose items hold two splits."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import Settings
from core.types import Item, SpaceInfo
from tests.app.conftest import Seeded, run_page
from ui.text import md

PAGE = "pages/4_Compare.py"
NOVEL = "compare.novel.open."


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A data dir with the demo loaded once for this module (no pretrained space) ->
    (data dir, production point id -> its true digit)."""
    from core.config import load_settings
    from core.demo import load_demo
    from core.store import open_store

    data_dir = tmp_path_factory.mktemp("compare-demo") / "data"
    settings = load_settings(data_dir=data_dir)
    store = open_store(settings)
    try:
        load_demo(store, settings, with_pretrained=False)
        prod = store.payloads("demo", "demo-mlp")
    finally:
        store.close()
    prod = prod[prod["dataset"] == "production"]
    return data_dir, {str(i): str(v) for i, v in prod["meta.true_label"].items()}


@pytest.fixture
def demo_env(app_env: Settings, demo_dir: tuple[Path, dict[str, str]],
             monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The pages of this test see the module's demo store; returns id -> true digit."""
    monkeypatch.setenv("EMBEDSCOPE_DATA_DIR", str(demo_dir[0]))
    return demo_dir[1]


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "subheader", "caption", "info", "error", "warning")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _compare(**session: Any) -> AppTest:
    at = run_page(PAGE, timeout=300)
    at.session_state["compare.method"] = "PCA"  # the map's projection: fast in tests
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _n(values: Any) -> int:
    if isinstance(values, dict):  # plotly's base64 typed array
        size = {"f4": 4, "f8": 8, "i1": 1, "u1": 1, "i2": 2, "u2": 2, "i4": 4, "u4": 4}[values["dtype"]]
        return len(base64.b64decode(values["bdata"])) // size
    return len(values)


def test_empty_store(app_env: Settings) -> None:
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    assert "Nothing to compare yet" in _texts(at)


def test_seeded_store_compares_train_with_unlabeled_prod(seeded_store: Seeded) -> None:
    at = _compare()
    assert at.selectbox(key="compare.a").value == "train"
    assert at.selectbox(key="compare.b").value == "prod"
    assert at.metric[0].label.startswith("Drift")
    # prod has no labels: the class shares compare predictions instead.
    assert "Predicted classes" in json.dumps(json.loads(at.get("plotly_chart")[1].proto.spec))


def test_demo_novelty_finds_the_held_out_digit(demo_env: dict[str, str]) -> None:
    truth = demo_env
    at = _compare()
    assert (at.selectbox(key="compare.a").value, at.selectbox(key="compare.b").value) == \
        ("train", "production")
    # The drift figure, with its meaning in words.
    auc = next(m for m in at.metric if m.label == "Drift: domain classifier AUC")
    assert 0.6 <= float(auc.value) <= 1.0
    assert "0.5 would mean the two are indistinguishable" in _texts(at)
    # The most novel production items are the 9s, which train never had.
    novel = [b.key[len(NOVEL):] for b in at.button if b.key and b.key.startswith(NOVEL)]
    assert len(novel) == 24
    assert truth[novel[0]] == "9"
    assert sum(truth[i] == "9" for i in novel[:10]) >= 8, [truth[i] for i in novel[:10]]
    # The joint map draws every item of both datasets, coloured by dataset.
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    counts = {t["name"]: _n(t["x"]) for t in spec["data"]}
    assert counts["production"] == len(truth) and counts["train"] > counts["production"]
    assert counts["most novel in production"] == 24
    # The label distribution shows 9 only on the production side.
    bars = json.loads(at.get("plotly_chart")[1].proto.spec)["data"]
    assert {b["name"] for b in bars} == {"train", "production"}
    # Opening a novel item shows it next to its nearest train item.
    at.button(key=f"{NOVEL}{novel[0]}").click().run()
    assert "nearest in train" in _texts(at)
    # A lasso on the joint map (map_events leaves its ids under "<key>.picked") rings those points
    # and lists them per side below the map; Clear empties it.
    assert "Lasso or box-select points on the map" in _texts(at)
    at.session_state["compare.map.picked"] = novel[:10]
    at.run()
    assert not at.exception, at.exception
    assert "Selection · 10**: 0 train, 10 production" in _texts(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t["name"]: _n(t["x"]) for t in spec["data"]}["selected"] == 10
    at.button(key="compare.lasso.clear").click().run()
    assert "Selection ·" not in _texts(at)


def test_demo_comparison_is_reused_after_a_restart(demo_env: dict[str, str]) -> None:
    first = _compare()
    st.cache_data.clear()
    st.cache_resource.clear()  # a dashboard restart: the store is closed and reopened
    again = _compare()
    assert not again.status, "the persisted comparison should be reused, not recomputed"
    assert again.metric[0].value == first.metric[0].value


SPLIT_A, SPLIT_B = "all-data · split=train", "all-data · split=production"


@pytest.fixture
def split_store(app_env: Settings) -> dict[str, list[str]]:
    """Project "splits": ONE dataset "all-data" in a space "vec" whose items have split train
    (60, 3 blobs) or production (24: 12 from the blobs + 12 from a 4th, novel blob, the last
    12). Returns split -> ids."""
    from core.ids import point_id
    from core.store import open_store

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 16)) * 2
    rows = {"train": centres[rng.integers(0, 3, 60)],
            "production": np.vstack([centres[rng.integers(0, 3, 12)], centres[[3] * 12]])}
    store = open_store(app_env)
    ids: dict[str, list[str]] = {}
    try:
        store.ensure_space("splits", SpaceInfo("vec", 16, "vector"))
        for split, x in rows.items():
            x = x + 0.3 * rng.standard_normal(x.shape)
            items = [Item(key=f"{split}-{i}", prediction=f"c{i % 3}", split=split,
                          label=None if split == "production" else f"c{i % 3}")
                     for i in range(len(x))]
            ids[split] = [point_id("splits", "all-data", it.key) for it in items]
            unit = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
            store.upsert("splits", "vec", ids[split], unit,
                         [it.payload("all-data") for it in items])
    finally:
        store.close()
    return ids


def test_one_dataset_compares_its_splits(split_store: dict[str, list[str]]) -> None:
    at = _compare()
    options = at.selectbox(key="compare.a").options
    assert options == ["all-data", "all-data · split=production", SPLIT_A]
    assert (at.selectbox(key="compare.a").value, at.selectbox(key="compare.b").value) == \
        (SPLIT_A, SPLIT_B)
    assert at.metric[0].label.startswith("Drift")
    assert float(at.metric[0].value) >= 0.6  # a quarter of production is a blob train lacks
    # The joint map draws the two splits only, coloured by split.
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    counts = {t["name"]: _n(t["x"]) for t in spec["data"]}
    assert counts[SPLIT_A] == 60 and counts[SPLIT_B] == 24
    novel = [b.key[len(NOVEL):] for b in at.button if b.key and b.key.startswith(NOVEL)]
    assert set(novel) == set(split_store["production"])  # only production items are examined
    assert set(novel[:12]) == set(split_store["production"][12:])
    assert f"items unlike anything in {md(SPLIT_A)}" in _texts(at)  # names shown as text


def test_a_dataset_against_its_own_split_is_refused(split_store: dict[str, list[str]]) -> None:
    at = _compare(**{"compare.a": "all-data", "compare.b": SPLIT_B})
    assert "contains its split" in _texts(at)
    assert not at.metric
