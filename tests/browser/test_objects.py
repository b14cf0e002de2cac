"""Explore's objects view in a real browser: switch to objects, hover a box's point and see its crop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import Server, open_app, wait_idle
from tests.object_scenes import WIDTH, Scenes, seed_scenes

pytestmark = pytest.mark.browser

CHART = '[data-testid="stPlotlyChart"]'
TIP_IMG = '[data-testid="embedscope-hover-preview"] img'
GRID_THUMB = 160  # ui.widgets.grid's thumb_size: a whole scene's width in the selection grid

# A point of the map's first drawn trace, in page pixels (plotly's own axes: l2p).
_POINT_XY = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  const full = gd._fullLayout, xa = full.xaxis, ya = full.yaxis;
  const c = gd._fullData.findIndex(t => t.hoverinfo !== 'skip' && t.x && t.x.length);
  const t = gd._fullData[c], i = Math.floor(t.x.length / 2);
  const box = gd.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.l2p(t.x[i]), y: box.top + ya._offset + ya.l2p(t.y[i])};
}"""
_POINTS = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  if (!gd || !gd._fullData) return -1;  // the chart is being (re)drawn: wait_for_function polls again
  return gd._fullData.reduce((n, t) => n + (t.hoverinfo !== 'skip' && t.x ? t.x.length : 0), 0);
}"""


@pytest.fixture(scope="module")
def scenes_server(start_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> tuple[Server, Scenes]:
    from core.config import load_settings

    base = tmp_path_factory.mktemp("browser-objects")
    scenes = seed_scenes(load_settings(data_dir=base / "data"))
    return start_server(base / "data"), scenes


def _hover_until_tip(page: Any, tip: Any, tries: int = 5) -> dict[str, float]:
    """Hover a point until its preview shows; returns the point. A rerun that remounts the chart (the
    colour menu settling after the switch) can swallow one hover, as a user would hover again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        wait_idle(page)
        point = page.evaluate(_POINT_XY, CHART)
        page.mouse.move(point["x"] - 30, point["y"] - 30)
        page.mouse.move(point["x"], point["y"], steps=4)
        try:
            tip.wait_for(state="visible", timeout=15_000)
            return dict(point)
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def test_the_objects_map_shows_crops_on_hover(scenes_server: tuple[Server, Scenes], page: Any) -> None:
    server, scenes = scenes_server
    open_app(page, f"{server.url}/Explore")
    page.get_by_text("Quick layout").wait_for(state="detached", timeout=300_000)
    wait_idle(page)
    page.get_by_text("objects", exact=True).click()  # the "Points" switch
    wait_idle(page)
    page.get_by_text("Quick layout").wait_for(state="detached", timeout=300_000)
    wait_idle(page)
    chart = page.locator(CHART).first
    chart.locator("canvas").first.wait_for()
    page.wait_for_function(f"(sel) => ({_POINTS})(sel) === {len(scenes.objects)}", arg=CHART)
    # The colour menu shows what the map is coloured by: the match status (the objects' default).
    colour = page.locator('[data-testid="stSelectbox"]').filter(has_text="Colour by")
    shown = colour.locator("input").first.input_value()
    assert shown == "match", shown
    legend = page.locator(f"{CHART} .legend").first.text_content() or ""
    assert all(status in legend for status in set(scenes.status.values())), legend
    tip = page.locator('[data-testid="embedscope-hover-preview"]')
    point = _hover_until_tip(page, tip)
    page.wait_for_function(f"() => document.querySelector('{TIP_IMG}')?.naturalWidth > 0")
    width = page.evaluate(f"() => document.querySelector('{TIP_IMG}').naturalWidth")
    # A crop (a box and its margin: at most ~44 px wide here), not the whole 96 px scene.
    assert 0 < width < WIDTH * 0.6, width
    caption = tip.inner_text()
    assert any(status in caption for status in set(scenes.status.values())), caption  # the match status
    page.screenshot(path="/tmp/explore_objects_hover.png")
    # Clicking the point opens the object: its scene with every box drawn, then "Open the image".
    page.mouse.click(point["x"], point["y"])
    opener = page.get_by_role("button", name="Open the image")
    opener.wait_for()
    wait_idle(page)
    boxes = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .map(gd => (gd.layout.shapes || []).filter(s => s.type === 'rect').length).filter(n => n > 0)""")
    assert boxes == [4], boxes  # the scene's two label and two prediction boxes
    page.screenshot(path="/tmp/explore_objects_detail.png", full_page=True)
    opener.click()
    wait_idle(page)
    page.wait_for_function(f"(sel) => ({_POINTS})(sel) === {len(scenes.images)}", arg=CHART)


# Ids of the selection grid's crops (their "Open" buttons: Streamlit's st-key-<key> class, key
# "explore.grid.open.<point id>" with the dots as dashes), each with its crop's decoded size.
_SELECTION_CROPS = """() => [...document.querySelectorAll('[class*="st-key-explore-grid-open-"]')].map(el => {
  const cls = [...el.classList].find(c => c.startsWith('st-key-explore-grid-open-'));
  const img = el.closest('[data-testid="stColumn"]').querySelector('[data-testid="stImage"] img');
  return {id: cls.slice('st-key-explore-grid-open-'.length), width: img ? img.naturalWidth : 0};
})"""
_FOCUSED = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  const t = gd && gd._fullData ? gd._fullData.find(t => t.name === 'selected') : null;
  return t ? t.x.length : 0;
}"""


@pytest.fixture(scope="module")
def detection_server(start_server: Callable[..., Server],
                     tmp_path_factory: pytest.TempPathFactory) -> tuple[Server, list[str]]:
    """The detection demo (its pixels space) with its object analysis persisted, as "Find problems"
    leaves it; returns the server and the ids the first failure cluster shows (its "Select … on map")."""
    from core.auth import local_actor
    from core.config import load_settings
    from core.demo_detection import DETECTION_PROJECT, load_detection_demo
    from core.pipeline.analyse_objects import run_object_analysis
    from core.store import open_store

    base = tmp_path_factory.mktemp("browser-detection")
    settings = load_settings(data_dir=base / "data")
    store = open_store(settings)
    try:
        load_detection_demo(store, settings, with_pretrained=False)
        found = run_object_analysis(store, DETECTION_PROJECT, "pixels", actor=local_actor(settings))
    finally:
        store.close()  # the server process opens the embedded store itself
    assert not found.clusters.empty, "the detection demo's planted misses make a failure cluster"
    ids = [str(i) for i in found.clusters.iloc[0]["examples"] if i in found.objects.index]
    assert len(ids) > 1
    return start_server(base / "data"), ids


def _select_cluster(page: Any, select: Any, tries: int = 3) -> None:
    """Press the cluster's "Select N on map"; a rerun that remounts the panel (the map fit landing)
    can swallow one click, as a user would press it again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        wait_idle(page)
        select.click()
        try:
            page.get_by_role("heading", name="Selection ·").first.wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise


def test_a_failure_clusters_crops_open_on_the_objects_map(detection_server: tuple[Server, list[str]],
                                                          page: Any) -> None:
    import re

    from core.demo_detection import DETECTION_PROJECT
    from core.demo_detection_boxes import SIZE

    server, ids = detection_server
    open_app(page, f"{server.url}/Explore?project={DETECTION_PROJECT}&space=pixels&points=objects")
    page.get_by_text("Quick layout").wait_for(state="detached", timeout=300_000)
    wait_idle(page)
    page.locator(CHART).first.locator("canvas").first.wait_for()
    assert page.evaluate(_FOCUSED, CHART) == 0  # nothing selected yet
    page.get_by_role("tab", name="Failure clusters").click()
    select = page.get_by_role("button", name=re.compile(rf"Select {len(ids)} on map")).filter(visible=True).first
    _select_cluster(page, select)
    heading = page.get_by_role("heading", name=f"Selection · {len(ids)}")
    heading.wait_for()
    wait_idle(page)
    # The map rings the cluster's objects ...
    page.wait_for_function(f"(sel) => ({_FOCUSED})(sel) === {len(ids)}", arg=CHART)
    # ... and the selection's grid shows exactly them, as crops (decoded images smaller than the scene).
    page.wait_for_function(f"() => ({_SELECTION_CROPS})().length === {len(ids)} && "
                           f"({_SELECTION_CROPS})().every(c => c.width > 0)")
    crops = page.evaluate(_SELECTION_CROPS)
    assert {c["id"] for c in crops} == set(ids), crops
    # Crops, not scenes: a whole scene would be a full grid thumbnail (GRID_THUMB px wide, SIZE px scenes).
    widths = sorted(c["width"] for c in crops)
    assert widths[len(widths) // 2] < GRID_THUMB < SIZE, widths
    page.screenshot(path="/tmp/explore_objects_cluster.png", full_page=True)
