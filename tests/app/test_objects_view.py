"""Explore's objects view through AppTest on a store of real PNG scenes with label and prediction boxes."""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import Seeded, run_page
from tests.object_scenes import CLASSES, HEIGHT, WIDTH, Scenes, seed_scenes
from ui import explore, objects, state
from ui.widgets import scatter

PAGE = "pages/2_Explore.py"
POINTS = "explore.points"
DETAIL_ID = "es.detail_id"


@pytest.fixture
def scenes(app_env: Settings) -> Scenes:
    return seed_scenes(app_env)


def _n(values: Any) -> int:
    """Length of a plotly array: a list, or plotly's base64 typed array {dtype, bdata}."""
    if isinstance(values, dict):
        itemsize = {"f4": 4, "f8": 8, "i1": 1, "i2": 2, "i4": 4, "u1": 1, "u2": 2}[values["dtype"]]
        return len(base64.b64decode(values["bdata"])) // itemsize
    return len(values)


def _charts(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _map(at: AppTest) -> dict[str, Any]:
    maps = [c for c in _charts(at) if any(t.get("type") == "scattergl" for t in c["data"])]
    assert len(maps) == 1, f"expected one map, found {len(maps)}"
    return maps[0]


def _points(spec: dict[str, Any]) -> dict[str, int]:
    """Points per legend entry (the grey "filtered out" context skipped)."""
    return {t["name"]: _n(t["x"]) for t in spec["data"] if t["name"] != scatter.CONTEXT}


def _picture_size(data_uri: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))) as picture:
        return picture.size


def _objects_view(**state: Any) -> AppTest:
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"  # fast; the objects map is persisted like any map
    at.session_state[POINTS] = "objects"
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def test_the_switch_shows_only_when_the_space_has_objects(seeded_store: Seeded) -> None:
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"
    at.run()
    assert not at.exception, at.exception
    assert not [w for w in at.segmented_control if w.key == POINTS]


def test_the_objects_map_has_one_point_per_object_and_colours_by_match_status(scenes: Scenes) -> None:
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"
    at.run()
    assert not at.exception, at.exception
    switch = at.segmented_control(key=POINTS)
    assert switch.value == "images" and set(switch.options) == {"images", "objects"}
    assert sum(_points(_map(at)).values()) == len(scenes.images)
    assert "explore.flt.match" not in {m.key for m in at.sidebar.multiselect}  # images have no status
    switch.set_value("objects").run()
    assert not at.exception, at.exception
    spec = _map(at)
    assert sum(_points(spec).values()) == len(scenes.objects)
    # The default colour of the objects map is the match status, one legend entry per status.
    assert at.selectbox(key="explore.colour").value == "match"
    assert explore.AGREEMENT not in at.selectbox(key="explore.colour").options  # a box has a label or a prediction
    assert _points(spec) == dict(Counter(scenes.status.values()))
    colours = {t["name"]: t["marker"]["color"] for t in spec["data"] if t["name"] in objects.MATCH_COLOURS}
    assert colours == {s: objects.MATCH_COLOURS[s] for s in set(scenes.status.values())}
    # Zoomed in on few points, the map draws their pictures: each object's crop, not its image.
    sizes = sorted(_picture_size(i["source"]) for i in spec["layout"]["images"])
    assert len(sizes) == len(scenes.objects)
    assert all(w < WIDTH * 0.6 and h < HEIGHT for w, h in sizes)  # the whole image would be 64 x 48
    # Class (label or prediction, whichever the box has) and source colour it too.
    at.selectbox(key="explore.colour").set_value(objects.CLASS).run()
    assert _points(_map(at)) == dict(Counter(scenes.cls.values()))
    at.selectbox(key="explore.colour").set_value("source").run()
    assert _points(_map(at)) == dict(Counter(scenes.source.values()))


def test_filters_on_status_and_box_size_narrow_the_objects_map(scenes: Scenes) -> None:
    at = _objects_view()
    status = at.sidebar.multiselect(key="explore.flt.match")
    assert set(status.options) == set(scenes.status.values())
    status.set_value(["missed", "spurious"]).run()
    assert not at.exception, at.exception
    wanted = sum(1 for s in scenes.status.values() if s in ("missed", "spurious"))
    shown = _points(_map(at))
    assert sum(shown.values()) == wanted < len(scenes.objects)
    assert set(shown) == {"missed", "spurious"}
    status.set_value([]).run()
    areas = {oid: (b[2] - b[0]) * (b[3] - b[1]) for oid, b in scenes.box.items()}
    size = at.sidebar.slider(key="explore.flt.box_area")
    low, high = size.value
    assert (low, high) == (min(areas.values()), max(areas.values()))
    cut = sorted(areas.values())[len(areas) // 2]
    size.set_value((low, cut)).run()
    assert not at.exception, at.exception
    assert sum(_points(_map(at)).values()) == sum(1 for a in areas.values() if a <= cut) < len(areas)


def test_an_objects_detail_draws_its_box_among_the_images_boxes(scenes: Scenes) -> None:
    missed = next(o for o, s in scenes.status.items() if s == "missed")
    at = _objects_view(**{DETAIL_ID: missed})
    assert not at.exception, at.exception
    figures = [c for c in _charts(at) if not any(t.get("type") == "scattergl" for t in c["data"])]
    assert len(figures) == 1 and figures[0]["layout"]["images"], "one scene with boxes"
    rects = [s for s in figures[0]["layout"]["shapes"] if s["type"] == "rect"]
    siblings = [o for o, p in scenes.parent.items() if p == scenes.parent[missed]]
    assert sorted(r["name"] for r in rects) == sorted(siblings)
    by_id = {r["name"]: r for r in rects}
    for oid in siblings:
        drawn = by_id[oid]
        assert [drawn["x0"], drawn["y0"], drawn["x1"], drawn["y1"]] == scenes.box[oid]
        assert drawn["line"]["dash"] == ("solid" if scenes.source[oid] == "label" else "dash")
        assert drawn["line"]["color"] == objects.MATCH_COLOURS[scenes.status[oid]]
    assert by_id[missed]["line"]["width"] > max(r["line"]["width"] for o, r in by_id.items() if o != missed)
    # Its neighbours are objects, shown as crops; "Open the image" opens the scene in the images view.
    assert len(at.get("image")) >= 1
    at.button(key="explore.detail.parent").click().run()
    assert not at.exception, at.exception
    assert at.session_state[POINTS] == "images"
    assert at.session_state[DETAIL_ID] == scenes.parent[missed]
    assert sum(_points(_map(at)).values()) == len(scenes.images)
    # The image's detail is the scene: all its boxes, none of them thicker.
    scene = [c for c in _charts(at) if not any(t.get("type") == "scattergl" for t in c["data"])]
    assert len(scene) == 1
    rects = [s for s in scene[0]["layout"]["shapes"] if s["type"] == "rect"]
    assert sorted(r["name"] for r in rects) == sorted(siblings)
    assert len({r["line"]["width"] for r in rects}) == 1


def test_selected_objects_show_crops_in_the_grid(scenes: Scenes) -> None:
    chosen = scenes.objects[:4]
    at = _objects_view(**{"es.selection": chosen})
    assert not at.exception, at.exception
    assert any(s.value == "Selection · 4" for s in at.subheader)
    assert len(at.get("image")) >= 4


def test_match_status_colours_are_fixed_and_errors_drawn_on_top() -> None:
    frame = pd.DataFrame({"match": ["tp", "missed", "tp", "spurious", "brand_new"]})
    spec = explore.colour_spec(frame, "match")
    assert spec.kind == "categorical"
    colours = dict(zip(spec.categories, spec.colours, strict=True))
    assert colours["tp"] == objects.MATCH_COLOURS["tp"] and colours["missed"] == objects.MATCH_COLOURS["missed"]
    assert colours["brand_new"] == objects.UNMATCHED_COLOUR  # a status the palette does not know
    order = spec.categories
    assert order.index("tp") < order.index("spurious") < order.index("missed")  # errors on top


def test_the_class_column_takes_the_label_or_the_prediction() -> None:
    frame = pd.DataFrame({"source": ["label", "prediction", None], "label": ["car", None, "cat"],
                          "prediction": [None, "bike", "dog"]})
    assert objects.class_column(frame).tolist() == ["car", "bike", None]
    assert objects.class_column(frame.drop(columns="source")) is None


def test_an_objects_picture_is_its_box_cut_from_the_image(scenes: Scenes, app_env: Settings) -> None:
    from core.thumbnails import OBJECT_MARGIN
    from ui import crops

    oid = next(o for o, s in scenes.source.items() if s == "label")
    x0, y0, x1, y1 = scenes.box[oid]
    uri = str(app_env.demo_dir / scenes.project / scenes.dataset / "scene_00.png")
    assert scenes.parent[oid] == scenes.images[0]
    data = crops.point_thumbnail(oid, uri, scenes.box[oid], 128, app_env)
    assert data is not None
    with Image.open(io.BytesIO(data)) as crop:
        grown = 1 + 2 * OBJECT_MARGIN
        assert abs(crop.width - (x1 - x0) * grown) <= 2 and abs(crop.height - (y1 - y0) * grown) <= 2
        centre = crop.convert("RGB").getpixel((crop.width // 2, crop.height // 2))
    assert max(abs(a - b) for a, b in zip(centre, CLASSES[scenes.cls[oid]], strict=True)) < 30  # the object
    assert crops.point_thumbnail(oid, uri, scenes.box[oid], 128, app_env) == data  # cached
    # Outside the data roots: no picture; not a box: the image's own thumbnail.
    assert crops.point_thumbnail(oid, "/etc/passwd", scenes.box[oid], 128, app_env) is None
    whole = crops.point_thumbnail(scenes.images[0], uri, None, 128, app_env)
    assert whole is not None and crops.point_thumbnail(oid, uri, [5, 5, 1, 1], 128, app_env) == whole


def test_a_space_of_objects_only_shows_its_objects_without_a_switch(app_env: Settings) -> None:
    scenes = seed_scenes(app_env, object_space="colours-roi")  # as ROI object vectors are stored
    one = scenes.objects[0]
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"
    at.session_state[state.SPACE] = "colours-roi"
    at.session_state[DETAIL_ID] = one
    at.run()
    assert not at.exception, at.exception
    assert not [w for w in at.segmented_control if w.key == POINTS]
    assert sum(_points(_map(at)).values()) == len(scenes.objects)
    assert at.selectbox(key="explore.colour").value == "match"
    # The scene is drawn, but its image is no point of this space: nothing to open.
    assert [c for c in _charts(at) if not any(t.get("type") == "scattergl" for t in c["data"])]
    assert not [b for b in at.button if b.key == "explore.detail.parent"]
