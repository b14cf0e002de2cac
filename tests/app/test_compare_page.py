"""The Compare page through AppTest, on the demo (production holds a digit never seen in train)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import Seeded, run_page

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
        size = {"f4": 4, "f8": 8, "i2": 2, "i4": 4}[values["dtype"]]
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


def test_demo_comparison_is_reused_after_a_restart(demo_env: dict[str, str]) -> None:
    first = _compare()
    st.cache_data.clear()
    st.cache_resource.clear()  # a dashboard restart: the store is closed and reopened
    again = _compare()
    assert not again.status, "the persisted comparison should be reused, not recomputed"
    assert again.metric[0].value == first.metric[0].value
