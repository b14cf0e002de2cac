"""Explore in a real browser: the WebGL map is drawn, hover shows a thumbnail, a box or lasso
selection (computed on the server from the region) shows the image grid, zooming in (wheel or box)
draws thumbnails on the map, and a double-click or Reset axes goes back to the whole map."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest

from tests.browser.conftest import Server, open_app, wait_idle

pytestmark = pytest.mark.browser

CHART = '[data-testid="stPlotlyChart"]'


def _open_explore(page: Any, server: Server) -> Any:
    """Open Explore and wait until the full map (not the quick first layout) is drawn."""
    open_app(page, f"{server.url}/Explore")
    chart = page.locator(CHART).first
    chart.wait_for()
    # The quick layout is replaced by the fitted map after a rerun; wait for that run to end.
    page.get_by_text("Quick layout").wait_for(state="detached", timeout=300_000)
    wait_idle(page)
    chart.locator("canvas").first.wait_for()
    return chart


def test_explore_draws_the_webgl_map(demo_server: Server, page: Any) -> None:
    chart = _open_explore(page, demo_server)
    # plotly's scattergl draws into WebGL canvases inside the plot (gl-canvas).
    assert chart.locator("canvas").count() >= 1
    assert chart.locator(".legend .traces").count() >= 2  # one legend entry per colour group
    # The main script is Home.py: the sidebar's first page reads "Home", not the file name "app".
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert nav.get_by_text("Home", exact=True).count() == 1 and nav.get_by_text("app", exact=True).count() == 0
    # The numba warm-up began with the server process, not with the first page view.
    log = demo_server.log_path.read_text(errors="replace")
    assert "UMAP warm-up started with the server" in log
    assert log.index("UMAP warm-up started") < log.index("opened embedded Qdrant Edge")
    page.screenshot(path="/tmp/explore_map.png", full_page=True)


def test_box_selection_shows_the_image_grid(demo_server: Server, page: Any) -> None:
    chart = _open_explore(page, demo_server)
    chart.hover()
    chart.locator('.modebar-btn[data-title="Box Select"]').click()
    area = chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None
    x0, y0 = area["x"] + area["width"] * 0.15, area["y"] + area["height"] * 0.15
    x1, y1 = area["x"] + area["width"] * 0.85, area["y"] + area["height"] * 0.85
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    page.get_by_role("heading", name="Selection ·").first.wait_for()
    wait_idle(page)
    grid = page.locator('[data-testid="stImage"]')
    grid.first.wait_for()
    assert grid.count() >= 3
    page.screenshot(path="/tmp/explore_selection.png", full_page=True)
    # Opening one image shows its detail with nearest neighbours from the full space.
    page.locator('[data-testid="stButton"] button').filter(has_text="Open").first.click()
    page.get_by_text("Nearest neighbours").first.wait_for()
    wait_idle(page)
    page.screenshot(path="/tmp/explore_detail.png", full_page=True)


# The point's pixel position comes from plotly's own axes (l2p), so the cursor lands on it.
_POINT_XY = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  const full = gd._fullLayout, xa = full.xaxis, ya = full.yaxis;
  const c = gd._fullData.findIndex(t => t.hoverinfo !== 'skip' && t.x && t.x.length);
  const t = gd._fullData[c], i = Math.floor(t.x.length / 2);
  const box = gd.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.l2p(t.x[i]), y: box.top + ya._offset + ya.l2p(t.y[i])};
}"""


def test_hover_shows_the_thumbnail(demo_server: Server, page: Any) -> None:
    _open_explore(page, demo_server)
    point = page.evaluate(_POINT_XY, CHART)
    page.mouse.move(point["x"] - 30, point["y"] - 30)
    page.mouse.move(point["x"], point["y"], steps=4)
    page.locator(".hoverlayer .hovertext").first.wait_for()  # plotly's own label: the fields
    tip = page.locator('[data-testid="embedscope-hover-preview"]')
    tip.wait_for(state="visible")
    src = tip.locator("img").get_attribute("src") or ""
    assert src.startswith("data:image/jpeg;base64,"), src[:40]
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"embedscope-hover-preview\"] img')"
        ".naturalWidth > 0")  # a decodable image, not a broken icon
    # It is the hovered item: plotly's own label is its colour group (the label), which the
    # server's caption starts with; the figure itself carries no per-point text.
    caption = tip.inner_text().strip()
    label = (page.locator(".hoverlayer .hovertext").first.text_content() or "").strip()  # SVG node
    parts = caption.split(" · ")
    assert parts[0] == label or (label == "(none)" and parts[0].startswith("pred ")), (caption, label)
    assert len(parts) >= 2 and parts[-1], caption  # ... · dataset · key
    box = tip.bounding_box()
    assert box is not None
    assert abs(box["x"] + box["width"] / 2 - point["x"]) < box["width"] + 40
    assert box["y"] <= point["y"] <= box["y"] + box["height"]
    # Reported, not asserted (timings belong in benchmarks): server round trip after the
    # debounce, and plotly's hover event to the thumbnail on screen.
    print(f"hover thumbnail: round trip {tip.get_attribute('data-round-trip-ms')} ms, "
          f"hover to shown {tip.get_attribute('data-hover-to-show-ms')} ms")
    page.screenshot(path="/tmp/explore_hover.png")
    # Leaving the map hides it again.
    page.mouse.move(5, 5)
    tip.wait_for(state="hidden")


_RECORD_SELECTION = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  window.__selected = null;
  gd.on('plotly_selected', (ev) => { if (ev) window.__selected = ev.points.length; });
}"""


def test_lasso_selects_on_the_server(demo_server: Server, page: Any) -> None:
    chart = _open_explore(page, demo_server)
    page.evaluate(_RECORD_SELECTION, CHART)
    chart.hover()
    chart.locator('.modebar-btn[data-title="Lasso Select"]').click()
    area = chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    rx, ry = area["width"] * 0.3, area["height"] * 0.3
    page.mouse.move(cx + rx, cy)
    page.mouse.down()
    for i in range(1, 41):  # a closed loop around the middle of the map
        angle = i / 40 * 6.2832
        page.mouse.move(cx + rx * math.cos(angle), cy + ry * math.sin(angle))
    page.mouse.up()
    started = time.perf_counter()
    page.wait_for_function("() => window.__selected !== null")
    drawn = page.evaluate("() => window.__selected")
    heading = page.get_by_role("heading", name="Selection ·").first
    heading.wait_for()
    page.locator('[data-testid="stImage"]').first.wait_for()
    print(f"lasso -> selection grid: {time.perf_counter() - started:.2f} s for {drawn} points")
    wait_idle(page)
    # The server's point-in-polygon picks exactly the points plotly highlighted in the browser.
    assert drawn > 3
    assert page.get_by_role("heading", name=f"Selection · {drawn:,}").first.is_visible()
    page.screenshot(path="/tmp/explore_lasso.png", full_page=True)


_MAP_STATE = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  const full = gd && gd._fullLayout;
  if (!full || !full.xaxis) return null;  // a rerun may remount the chart
  return {points: gd._fullData.reduce((n, t) => n + (t.hoverinfo !== 'skip' && t.x ? t.x.length : 0), 0),
          images: gd.querySelectorAll('.layer-above .imagelayer image').length,
          x: full.xaxis.range.slice(), dragmode: full.dragmode};
}"""
IMAGES = ".layer-above .imagelayer image"


def _map_state(page: Any, condition: str, timeout: float | None = None) -> dict[str, Any]:
    """Wait until the map's state (_MAP_STATE, as `s`) meets the JS `condition` and the run ended."""
    page.wait_for_function(f"(sel) => {{ const s = ({_MAP_STATE})(sel); return s !== null && ({condition}); }}",
                           arg=CHART, timeout=timeout)
    wait_idle(page)
    state: dict[str, Any] = page.evaluate(_MAP_STATE, CHART)
    return state


def _zoomed_in(page: Any, chart: Any, whole: dict[str, Any]) -> dict[str, Any]:
    """Wait for the server's redraw of the view the browser reported: the few points in it, each
    with its thumbnail (every demo item has an image), the zoom kept (the view is in the figure)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    zoomed = "s.points <= 300 && s.images === s.points && s.points > 0"
    for attempt in range(3):
        try:
            state = _map_state(page, zoomed, timeout=30_000)
            break
        except PlaywrightTimeout:
            # Under load the server can redraw an intermediate view of a burst of wheel events last
            # (still the mosaic of a wide view): one more small zoom asks for the view again. Known
            # race, in the closing note; a user scrolls once more.
            if attempt == 2:
                raise
            page.mouse.wheel(0, -50)
    href = chart.locator(IMAGES).first.get_attribute("href") or ""
    assert href.startswith("data:image/jpeg;base64,"), href[:40]
    assert state["x"][1] - state["x"][0] < (whole["x"][1] - whole["x"][0]) / 2, (whole, state)
    return state


def _whole_map(page: Any) -> dict[str, Any]:
    """The whole map: every point, and a mosaic of at most 40 representative thumbnails."""
    state = _map_state(page, "s.points > 300")
    assert 1 <= state["images"] <= 40, state
    return state


def test_zooming_in_draws_thumbnails_on_the_map(demo_server: Server, page: Any) -> None:
    chart = _open_explore(page, demo_server)
    whole = _whole_map(page)
    page.screenshot(path="/tmp/explore_mosaic.png")
    point = page.evaluate(_POINT_XY, CHART)
    page.mouse.move(point["x"], point["y"])
    for _ in range(25):  # scroll-zoom around a point (plotly zooms ~10 % a wheel event)
        page.mouse.wheel(0, -100)
    zoomed = _zoomed_in(page, chart, whole)
    assert zoomed["dragmode"] == "lasso"
    page.screenshot(path="/tmp/explore_zoom_images.png")
    # A double-click (in lasso mode too) goes back to the whole map.
    page.mouse.dblclick(point["x"] + 3, point["y"] + 3)
    assert _whole_map(page)["points"] == whole["points"]


def test_box_zoom_draws_thumbnails_and_keeps_the_zoom_tool(demo_server: Server, page: Any) -> None:
    chart = _open_explore(page, demo_server)
    whole = _whole_map(page)
    chart.hover()
    chart.locator('.modebar-btn[data-title="Zoom"]').click()
    point = page.evaluate(_POINT_XY, CHART)
    page.mouse.move(point["x"] - 40, point["y"] - 40)
    page.mouse.down()
    page.mouse.move(point["x"], point["y"], steps=3)
    page.mouse.move(point["x"] + 40, point["y"] + 40, steps=3)
    page.mouse.up()
    _zoomed_in(page, chart, whole)
    _map_state(page, "s.dragmode === 'zoom'")  # the redraw gave the user's tool back, not lasso
    # Reset axes returns to the whole map, not to the zoomed view the server drew.
    chart.hover()
    chart.locator('.modebar-btn[data-title="Reset axes"]').click()
    assert _whole_map(page)["points"] == whole["points"]


def test_clicking_a_point_opens_its_detail(demo_server: Server, page: Any) -> None:
    # In the default lasso tool a click (no drag) opens the point: its detail and neighbours show.
    _open_explore(page, demo_server)
    assert page.evaluate(f"() => document.querySelector('{CHART} .js-plotly-plot')._fullLayout.dragmode") == "lasso"
    assert page.get_by_text("Nearest neighbours").count() == 0
    point = page.evaluate(_POINT_XY, CHART)
    page.mouse.move(point["x"] - 20, point["y"] - 20)
    page.mouse.move(point["x"], point["y"], steps=4)
    tip = page.locator('[data-testid="embedscope-hover-preview"]')
    tip.wait_for(state="visible")  # the server named the point under the cursor: "... · dataset · key"
    item_key = tip.inner_text().strip().split(" · ")[-1]
    page.mouse.click(point["x"], point["y"])
    page.get_by_text("Nearest neighbours").first.wait_for()
    wait_idle(page)
    assert item_key
    # The detail shows the clicked item's image with its key as the caption (exactly the key: the hover
    # tip says "... · dataset · key"), beside the neighbours.
    page.get_by_text(item_key, exact=True).first.wait_for()
    assert page.get_by_text(item_key, exact=True).first.is_visible(), item_key
    page.screenshot(path="/tmp/explore_click.png", full_page=True)


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(f"{CHART} {selector}").first.bounding_box()
    assert box is not None, selector
    return box


def test_a_numeric_colour_keeps_its_legend_off_the_colour_bar(demo_server: Server, page: Any) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    _open_explore(page, demo_server)
    page.screenshot(path="/tmp/explore_labels.png")  # the label palette: no class is grey
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Colour by").locator("input").click()
    page.get_by_role("option", name="confidence", exact=True).click()
    page.locator(f"{CHART} .colorbar").first.wait_for()
    wait_idle(page)
    # A filter: the "filtered out" points get a legend entry next to the colour bar.
    field = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]') \
        .filter(has_text=re.compile(r"^Dataset(?!s)")).locator("input")
    option = page.get_by_role("option").filter(has_text="train").first
    for _ in range(3):  # a rerun that lands during the click can close the menu before it shows
        field.scroll_into_view_if_needed()
        field.click()
        field.press_sequentially("train")
        try:
            option.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            wait_idle(page)
    option.click()
    page.keyboard.press("Escape")
    page.locator(f"{CHART} .legend").first.wait_for()
    wait_idle(page)
    bar, legend = _box(page, ".colorbar"), _box(page, ".legend")
    overlap_x = min(bar["x"] + bar["width"], legend["x"] + legend["width"]) - max(bar["x"], legend["x"])
    overlap_y = min(bar["y"] + bar["height"], legend["y"] + legend["height"]) - max(bar["y"], legend["y"])
    page.screenshot(path="/tmp/explore_numeric.png")
    assert overlap_x <= 0 or overlap_y <= 0, (bar, legend)
