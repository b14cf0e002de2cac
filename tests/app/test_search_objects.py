"""The Search page over detection objects through AppTest: the images | objects switch, object results, filters."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import Seeded, run_page
from tests.object_scenes import Scenes, seed_scenes
from ui import objects_view, search_objects, state

PAGE = "pages/3_Search.py"
RESULTS = "search.res.more."


@pytest.fixture
def scenes(app_env: Settings) -> Scenes:
    return seed_scenes(app_env)


def _ids(at: AppTest, prefix: str = RESULTS) -> list[str]:
    """Ids of the cards in display order (from their "+ more like this" buttons)."""
    return [b.key[len(prefix):] for b in at.button if b.key and b.key.startswith(prefix)]


def _search(**session: object) -> AppTest:
    at = run_page(PAGE, timeout=120)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_switch_shows_only_when_the_space_has_objects(seeded_store: Seeded) -> None:
    at = _search()
    assert not [w for w in at.segmented_control if w.key == search_objects.POINTS_KEY]


def test_more_like_this_over_objects_returns_objects_only(scenes: Scenes) -> None:
    example = scenes.objects[0]
    at = _search(**{state.SEARCH_POSITIVE: [scenes.images[0]]})
    (switch,) = [w for w in at.segmented_control if w.key == search_objects.POINTS_KEY]
    assert switch.options == ["images", "objects"] and switch.value == "images"
    assert set(_ids(at)) == set(scenes.images) - {scenes.images[0]}
    # An object example ("Find similar" on a box in Explore) switches to objects by itself.
    at.session_state[state.SEARCH_POSITIVE] = [example]
    at.run()
    assert not at.exception, at.exception
    assert at.segmented_control(key=search_objects.POINTS_KEY).value == "objects"
    found = _ids(at)
    assert len(found) == 24 and example not in found and set(found) <= set(scenes.objects)
    assert any("(objects)" in str(s.value) for s in at.subheader)
    # The match-status filter keeps those statuses only.
    at.multiselect(key=search_objects.MATCH_KEY).set_value(["missed", "spurious"]).run()
    assert not at.exception, at.exception
    wanted = {i for i in scenes.objects if scenes.status[i] in ("missed", "spurious") and i != example}
    assert set(_ids(at)) == wanted
    # "Open the image": Explore's images view with the object's scene opened.
    first = _ids(at)[0]
    at.button(key=f"search.res.open.{first}").click().run()
    assert not at.exception, at.exception
    assert at.session_state[objects_view.POINTS_KEY] == objects_view.IMAGES
    assert at.session_state[state.DETAIL_ID] == scenes.parent[first]


def test_the_objects_sample_and_a_class_filter(scenes: Scenes) -> None:
    at = _search(**{search_objects.POINTS_KEY: "objects", search_objects.CLASS_KEY: ["bike"]})
    sample = _ids(at, "search.sample.more.")
    assert sample and set(sample) <= set(scenes.objects)
    at.button(key=f"search.sample.more.{sample[0]}").click().run()
    assert not at.exception, at.exception
    found = _ids(at)
    assert found and all(scenes.cls[i] == "bike" for i in found)
    assert {scenes.source[i] for i in found} == {"label", "prediction"}
    # Back to images by hand: the scenes most like the object example, images only.
    at.segmented_control(key=search_objects.POINTS_KEY).set_value("images").run()
    assert not at.exception, at.exception
    assert set(_ids(at)) == set(scenes.images)
