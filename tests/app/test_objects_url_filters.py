"""Explore's objects filters (match status, source, box size, IoU) in the shareable URL, through AppTest on
the detection demo (pixels space, 40 scenes): a link opens them, changing them changes the link."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import run_page

PAGE = "pages/2_Explore.py"
FLT = "explore.flt"
N_SCENES = 40  # ~320 boxes: the page runs in seconds


@pytest.fixture
def objects(app_env: Settings) -> pd.DataFrame:
    """The demo's object payloads (what the filters must keep), after loading it into the test store."""
    from core.demo_detection import load_detection_demo
    from core.filters import objects_only
    from core.store import open_store

    store = open_store(app_env)
    try:
        load_detection_demo(store, app_env, with_pretrained=False, n_scenes=N_SCENES)
        return store.payloads("demo-detection", "pixels", objects_only())
    finally:
        store.close()


def _open(params: dict[str, Any]) -> AppTest:
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"  # fast map
    for key, value in {"project": "demo-detection", "space": "pixels", **params}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _url(at: AppTest) -> dict[str, list[str]]:
    return {k: list(v) if isinstance(v, list) else [v] for k, v in at.query_params.items()}


def _visible(at: AppTest) -> int:
    """The map's "**N** of M points" count."""
    counts = [re.match(r"\*\*([\d,]+)\*\* of [\d,]+ points", c.value) for c in at.caption]
    (shown,) = [int(m.group(1).replace(",", "")) for m in counts if m]
    return shown


def _notices(at: AppTest) -> str:
    return "\n".join(str(t.value) for t in at.toast).replace("\\", "")  # markdown-escaped


def _kept(objects: pd.DataFrame, match: set[str], source: str, area: tuple[float, float],
          iou: tuple[float, float]) -> int:
    numbers = objects[["box_area", "iou"]].apply(pd.to_numeric, errors="coerce")
    keep = (objects["match"].isin(match) & (objects["source"] == source)
            & numbers["box_area"].between(*area) & numbers["iou"].between(*iou))
    return int(keep.sum())


def test_a_link_opens_the_objects_view_with_its_status_source_size_and_iou_filters(objects: pd.DataFrame) -> None:
    area, iou = (900.0, 1600.0), (0.55, 0.95)
    expected = _kept(objects, {"tp", "misclassified"}, "prediction", area, iou)
    assert 0 < expected < (objects["source"] == "prediction").sum()  # the filters narrow the map
    at = _open({"points": "objects", "f.match": ["tp", "misclassified"], "f.source": "prediction",
                "f.box_area": "900:1600", "f.iou": "0.55:0.95"})
    assert not at.toast, _notices(at)
    assert at.multiselect(key=f"{FLT}.match").value == ["tp", "misclassified"]
    assert at.multiselect(key=f"{FLT}.source").value == ["prediction"]
    assert at.slider(key=f"{FLT}.box_area").value == area and at.slider(key=f"{FLT}.iou").value == iou
    assert _visible(at) == expected
    url = _url(at)  # the page keeps them in its link
    assert url["points"] == ["objects"] and set(url["f.match"]) == {"tp", "misclassified"}
    assert url["f.source"] == ["prediction"] and url["f.box_area"] == ["900:1600"] and url["f.iou"] == ["0.55:0.95"]


def test_changing_the_objects_filters_changes_the_link_and_the_link_reopens_them(objects: pd.DataFrame) -> None:
    at = _open({"points": "objects"})
    url = _url(at)
    assert not any(k.startswith("f.") for k in url), url  # all objects: no filter in the link
    at.multiselect(key=f"{FLT}.match").set_value(["missed"])
    at.slider(key=f"{FLT}.box_area").set_value((500.0, 1500.0)).run()
    assert not at.exception, at.exception
    url = _url(at)
    assert url["f.match"] == ["missed"] and url["f.box_area"] == ["500:1500"] and "f.iou" not in url
    shown = _visible(at)
    numbers = pd.to_numeric(objects["box_area"])
    assert shown == int(((objects["match"] == "missed") & numbers.between(500.0, 1500.0)).sum()) > 0
    again = _open(url)  # the link, opened by someone else
    assert _visible(again) == shown and again.multiselect(key=f"{FLT}.match").value == ["missed"]
    # Back to the images: the objects' own filters leave the link (images have no status or box).
    at.segmented_control(key="explore.points").set_value("images").run()
    assert not at.exception, at.exception
    assert not {"points", "f.match", "f.box_area"} & set(_url(at)), _url(at)


def test_bad_or_foreign_object_filters_in_a_link_are_named_and_left_out(objects: pd.DataFrame) -> None:
    at = _open({"points": "objects", "f.iou": "high", "f.match": ["tp", "nonsense"]})
    notices = _notices(at)
    assert "Ignored the iou range 'high'" in notices and "'nonsense'" in notices, notices
    assert at.multiselect(key=f"{FLT}.match").value == ["tp"]
    assert _visible(at) == int((objects["match"] == "tp").sum())
    images = _open({"f.box_area": "1:2"})  # the images view: its points have no box
    assert "Ignored the filter on 'box_area': no such field here" in _notices(images)
    assert "f.box_area" not in _url(images)


def test_object_ranges_round_trip_through_the_url_and_bad_ones_are_named() -> None:
    from core import views

    view = views.View(project="p", points="objects", ranges=(("box_area", (120.5, 1_234_567.0)), ("iou", (0.3, 0.7))))
    params = views.encode(view)
    assert params["f.box_area"] == ["120.5:1234567"] and params["f.iou"] == ["0.3:0.7"]  # px² keep their digits
    assert views.decode(params) == (view, [])
    decoded, notices = views.decode({"f.iou": "0.7:0.3", "f.box_area": "1:x"})
    assert decoded.ranges == () and not decoded.filters and len(notices) == 2, notices
