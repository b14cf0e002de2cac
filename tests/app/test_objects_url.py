"""Explore's objects view in the shareable URL (points=objects), through AppTest on real PNG scenes with boxes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import run_page
from tests.app.test_objects_view import _map, _points
from tests.object_scenes import Scenes, seed_scenes

PAGE = "pages/2_Explore.py"
POINTS = "explore.points"


def _open(params: dict[str, Any]) -> AppTest:
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = "PCA"  # fast map
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _url(at: AppTest) -> dict[str, list[str]]:
    return {k: list(v) if isinstance(v, list) else [v] for k, v in at.query_params.items()}


def test_a_link_reopens_the_objects_view_with_its_colour_and_opened_object(app_env: Settings) -> None:
    scenes: Scenes = seed_scenes(app_env)
    missed = next(o for o, s in scenes.status.items() if s == "missed")
    at = _open({"project": scenes.project, "space": scenes.space, "points": "objects", "colour": "source",
                "item": missed})
    assert not at.exception, at.exception
    assert at.segmented_control(key=POINTS).value == "objects"
    assert _points(_map(at)) == dict(Counter(scenes.source.values()))  # one point per box, by source
    assert at.session_state["es.detail_id"] == missed  # the opened object survives the switch
    assert not at.toast
    url = _url(at)
    assert url["points"] == ["objects"] and url["colour"] == ["source"] and url["item"] == [missed]
    at.segmented_control(key=POINTS).set_value("images").run()  # back to images: no points= in the URL
    assert not at.exception, at.exception
    assert "points" not in _url(at) and sum(_points(_map(at)).values()) == len(scenes.images)
    at.segmented_control(key=POINTS).set_value("objects").run()
    assert _url(at)["points"] == ["objects"]


def test_a_link_to_images_or_a_bad_points_value_shows_the_images(app_env: Settings) -> None:
    scenes = seed_scenes(app_env)
    at = _open({"project": scenes.project, "space": scenes.space, "points": "boxes"})
    assert not at.exception, at.exception
    notice = "\n".join(str(t.value) for t in at.toast).replace("\\", "")  # markdown-escaped
    assert "points='boxes'" in notice and "expected images or objects" in notice
    assert at.segmented_control(key=POINTS).value == "images"
    assert sum(_points(_map(at)).values()) == len(scenes.images) and "points" not in _url(at)
