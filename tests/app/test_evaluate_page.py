"""The Evaluate page through AppTest on the demo: the scorecard, the recall heat map and two linked maps."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import run_page
from ui import evaluate_view
from ui.text import md
from ui.widgets import scatter

PAGE = "pages/6_Evaluate.py"
SPACES = ["demo-mlp", "pixels"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A data dir with the demo loaded once for this module (no pretrained space) -> (data dir,
    the ids of 25 production items)."""
    from core.config import load_settings
    from core.demo import load_demo
    from core.store import open_store

    data_dir = tmp_path_factory.mktemp("evaluate-demo") / "data"
    settings = load_settings(data_dir=data_dir)
    store = open_store(settings)
    try:
        load_demo(store, settings, with_pretrained=False)
        payloads = store.payloads("demo", "pixels")
    finally:
        store.close()
    return data_dir, [str(i) for i in payloads.index[payloads["dataset"] == "production"][:25]]


@pytest.fixture
def demo_ids(app_env: Settings, demo_dir: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("EMBEDSCOPE_DATA_DIR", str(demo_dir[0]))
    return demo_dir[1]


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "subheader", "caption", "info", "error", "warning", "success", "title")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _n(values: Any) -> int:
    if isinstance(values, dict):  # plotly's base64 typed array
        size = {"f4": 4, "f8": 8, "i1": 1, "u1": 1, "i2": 2, "u2": 2, "i4": 4, "u4": 4}[values["dtype"]]
        return len(base64.b64decode(values["bdata"])) // size
    return len(values)


def _maps(at: AppTest) -> dict[str, dict[str, int]]:
    """{map title: {trace name: points}} of the scatter maps on the page."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["data"] and spec["data"][0].get("type") == "scattergl":
            out[spec["layout"]["title"]["text"]] = {t["name"]: _n(t["x"]) for t in spec["data"]}
    return out


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def test_empty_store_explains_what_to_do(app_env: Settings) -> None:
    at = _ok(run_page(PAGE).run())
    assert "Nothing to evaluate yet" in _texts(at)


def test_scorecard_heat_map_and_two_linked_maps(demo_ids: list[str]) -> None:
    at = run_page(PAGE, timeout=300)
    at.session_state["evaluate.method"] = "PCA"  # fast maps in tests
    _ok(at.run())
    assert "No scorecard yet" in _texts(at)
    assert {b.key for b in at.button} >= {"evaluate.compute_map.left", "evaluate.compute_map.right"}
    at.number_input(key="evaluate.sample").set_value(800)

    _ok(at.button(key="evaluate.compute").click().run())
    table = at.dataframe[0].value
    assert list(table.index) == SPACES and table["probe_accuracy"].between(0.5, 1).all()
    assert md("Best space: demo-mlp, by linear-probe accuracy") in _texts(at)  # the demo's own model wins
    assert "at most 800 per space" in _texts(at)
    (heat,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
               if json.loads(c.proto.spec)["data"][0]["type"] == "heatmap"]
    assert heat["data"][0]["y"] == SPACES and "9" in heat["data"][0]["x"]

    for side in evaluate_view.SIDES:  # no persisted map yet: each side offers to compute it
        _ok(at.button(key=f"evaluate.compute_map.{side}").click().run())
    maps = _maps(at)
    assert set(maps) == {"PCA of demo-mlp", "PCA of pixels"}
    assert all(scatter.FOCUS not in traces for traces in maps.values())

    # A lasso on the left map (what ui.widgets.map_events leaves for the scatter widget) rings the
    # same points, by id, on the right map too.
    at.session_state[f"{evaluate_view.map_key('left')}.picked"] = demo_ids
    _ok(at.run())
    assert at.session_state[evaluate_view.LINKED] == demo_ids
    maps = _maps(at)
    assert maps["PCA of pixels"][scatter.FOCUS] == len(demo_ids) == maps["PCA of demo-mlp"][scatter.FOCUS]
    assert f"{len(demo_ids)}" in _texts(at) and "ringed in both maps" in _texts(at)
    # ... and a selection on the right map replaces it on both.
    at.session_state[f"{evaluate_view.map_key('right')}.picked"] = demo_ids[:5]
    _ok(at.run())
    assert {traces[scatter.FOCUS] for traces in _maps(at).values()} == {5}
    _ok(at.button(key="evaluate.clear").click().run())
    assert all(scatter.FOCUS not in traces for traces in _maps(at).values())
