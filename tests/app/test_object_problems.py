"""Explore's Problems panel on the objects view, through AppTest on the detection demo (pixels space, 40 scenes)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from core.ids import object_id
from tests.app.conftest import run_page
from ui.widgets import scatter
from ui.widgets.out_of_date import OUT_OF_DATE

PAGE = "pages/2_Explore.py"
KEY = "explore.objproblems"
N_SCENES = 40  # ~320 boxes, 8 planted wrong-class labels: the page runs in seconds


class Demo:
    """The loaded demo: the matching table as core computes it, the ids of the planted wrong-class labels."""

    def __init__(self, table: pd.DataFrame, wrong_class: set[str]) -> None:
        self.table = table
        self.wrong_class = wrong_class


@pytest.fixture
def demo(app_env: Settings) -> Demo:
    from core.analysis.box_matching import with_total
    from core.demo_detection import (
        DETECTION_DATASET,
        DETECTION_PROJECT,
        detection_folder,
        load_detection_demo,
        read_planted,
    )
    from core.pipeline.analyse_objects import load_objects, matching_table
    from core.store import open_store

    store = open_store(app_env)
    try:
        load_detection_demo(store, app_env, with_pretrained=False, n_scenes=N_SCENES)
        table = with_total(matching_table(load_objects(store, DETECTION_PROJECT, "pixels", [DETECTION_DATASET])))
    finally:
        store.close()
    wrong = set()
    for key, kind in read_planted(detection_folder(app_env)).items():
        if kind == "wrong_class":
            image, rest = key.split("#", 1)
            source, index = rest.split("/")
            wrong.add(object_id(DETECTION_PROJECT, DETECTION_DATASET, image, source, int(index)))
    assert len(wrong) >= 4, "the demo plants wrong-class labels"
    return Demo(table, wrong)


def _objects_view() -> AppTest:
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"
    at.session_state["explore.points"] = "objects"
    return at.run()


def _class_table(at: AppTest) -> pd.DataFrame:
    tables = [d.value for d in at.dataframe if "recall" in d.value.columns and "class" in d.value.columns]
    assert len(tables) == 1, f"expected one class table, found {len(tables)}"
    return tables[0]


def _shown(at: AppTest, grid: str) -> set[str]:
    """Point ids of the crops a grid shows (its "Open" buttons)."""
    prefix = f"{grid}.open."
    return {b.key.removeprefix(prefix) for b in at.button if b.key and b.key.startswith(prefix)}


def _map(at: AppTest) -> dict[str, Any]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    maps = [s for s in specs if any(t.get("type") == "scattergl" for t in s["data"])]
    assert len(maps) == 1
    return maps[0]


def _ringed(at: AppTest) -> int:
    from tests.app.test_objects_view import _n

    return sum(_n(t["x"]) for t in _map(at)["data"] if t["name"] == scatter.FOCUS)


def test_find_problems_on_objects_shows_the_class_table_and_the_planted_mislabels(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.pipeline.analyse_objects as analyse_objects

    at = _objects_view()
    assert not at.exception, at.exception
    assert not [d for d in at.dataframe if "recall" in d.value.columns]  # nothing computed yet
    at.button(key="explore.find").click().run()
    assert not at.exception, at.exception
    # (a) the per-class matching table, its "(all)" row included, equals core's matching_table.
    shown = _class_table(at)
    assert shown["class"].tolist() == demo.table["class"].tolist() and shown["class"].iloc[-1] == "(all)"
    for column in demo.table.columns[1:]:
        np.testing.assert_allclose(shown[column].to_numpy(dtype=float), demo.table[column].to_numpy(dtype=float),
                                   equal_nan=True, err_msg=column)
    # (b) the planted wrong-class labels are the crops of the mislabeled-boxes tab.
    grid = f"{KEY}.mislabel.grid"
    flagged = _shown(at, grid)
    found = flagged & demo.wrong_class
    assert len(found) >= len(demo.wrong_class) // 2, (len(found), len(demo.wrong_class))
    # Mostly the planted ones (the calibrated mixture's cut-off trades a little precision for recall:
    # benchmarks/detection_findings.py 39 flagged at 0.95 precision, was 38 at 1.00).
    assert len(found) >= 0.75 * len(flagged), ("the flagged boxes are mostly the planted ones", len(found), len(flagged))
    assert len(at.get("image")) >= len(flagged)  # each as its crop
    # Select on map rings them on the objects map.
    assert _ringed(at) == 0
    at.button(key=f"{KEY}.mislabel.all").click().run()
    assert not at.exception, at.exception
    assert set(at.session_state["es.selection"]) == flagged
    assert _ringed(at) == len(flagged)
    # A later view (a new session) shows the persisted result: read, never recomputed.
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("a page view recomputed the object analysis")

    monkeypatch.setattr(analyse_objects, "run_object_analysis", refuse)
    at = _objects_view()  # a new session: the persisted analysis, read, not computed
    assert not at.exception, at.exception
    assert _class_table(at)["labels"].iloc[-1] == demo.table["labels"].iloc[-1]
    assert _shown(at, grid) == flagged
    assert not [w for w in at.warning if OUT_OF_DATE in w.value]
    # Accepting the suggested classes relabels the boxes: they leave the list, the result is out of date.
    at.button(key=f"{KEY}.mislabel.accept").click().run()
    assert not at.exception, at.exception
    assert not _shown(at, grid) & flagged
    assert [w for w in at.warning if OUT_OF_DATE in w.value]
    # Failure clusters and the spurious finders render as well (their tabs, with or without findings).
    assert [t.label for t in at.tabs][:4] == ["Likely mislabeled boxes", "Likely missing labels",
                                              "Background predictions", "Failure clusters"]


def test_a_failure_cluster_is_described_and_its_crops_ring_on_the_map(app_env: Settings) -> None:
    from core.store import open_store
    from tests.core.test_object_findings import FAILING_CLASS, P, S, planted_scene, seed_store
    from ui import state

    store = open_store(app_env)
    try:
        seed_store(store, planted_scene())  # most boxes of one digit go undetected
    finally:
        store.close()
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"
    at.session_state["explore.points"] = "objects"
    at.session_state[state.PROJECT] = P
    at.session_state[state.SPACE] = S
    at.run()
    at.button(key="explore.find").click().run()
    assert not at.exception, at.exception
    lines = [m.value for m in at.markdown if m.value.startswith("**Cluster ")]
    undetected = [line for line in lines if f"mostly {FAILING_CLASS} (" in line]
    assert len(undetected) == 1, lines
    assert "top failure missed" in undetected[0] and "median box 30 px" in undetected[0]
    assert "lift" in undetected[0]
    cluster = undetected[0].removeprefix("**Cluster ").split("**", 1)[0]
    select = at.button(key=f"{KEY}.clusters.sel.{cluster}")
    shown = _shown(at, f"{KEY}.clusters.grid.{cluster}")
    assert 0 < len(shown) <= 8 and select.label == f"Select {len(shown)} on map"
    select.click().run()
    assert not at.exception, at.exception
    assert set(at.session_state["es.selection"]) == shown
    assert _ringed(at) == len(shown)


def test_headlines_count_boxes_in_plain_english() -> None:
    from ui.widgets.object_problems import _headline

    assert _headline(1, "likely mislabeled box") == "**1 likely mislabeled box**"
    assert _headline(3, "likely mislabeled box") == "**3 likely mislabeled boxes**"
    assert _headline(1_200, "background prediction") == "**1,200 background predictions**"
