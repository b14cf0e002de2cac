"""A shared URL in a real browser: colour, filter and an opened item on Explore end up in the address
bar, and that address opened in a new browser context (no cookies, no session) shows the same view."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import UI_TIMEOUT_MS, Server, open_app, wait_idle

pytestmark = pytest.mark.browser

CHART = '[data-testid="stPlotlyChart"]'
COUNT = re.compile(r"[\d,]+ of [\d,]+ points")


def _map_ready(page: Any) -> Any:
    chart = page.locator(CHART).first
    chart.wait_for()
    page.get_by_text("Quick layout").wait_for(state="detached", timeout=300_000)
    wait_idle(page)
    chart.locator("canvas").first.wait_for()
    return chart


def _params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _wait_for_param(page: Any, name: str) -> dict[str, list[str]]:
    """The page's query parameters once `name` is among them (Streamlit writes them after a run)."""
    page.wait_for_function(f"() => new URLSearchParams(location.search).has({name!r})")
    return _params(page.evaluate("location.href"))


def _box_select(page: Any, chart: Any) -> None:
    chart.hover()
    chart.locator('.modebar-btn[data-title="Box Select"]').click()
    area = chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None
    x0, y0 = area["x"] + area["width"] * 0.2, area["y"] + area["height"] * 0.2
    x1, y1 = area["x"] + area["width"] * 0.8, area["y"] + area["height"] * 0.8
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    page.get_by_text("Selection ·").first.wait_for()
    wait_idle(page)


def _view(page: Any) -> dict[str, str]:
    """What the screen shows: colour, the label filter's chips, the point count, the opened item."""
    colour = page.get_by_label("Colour by").first.evaluate("e => e.value || e.textContent")
    labels = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(
        has_text=re.compile(r"^Label")).first.inner_text()
    return {"colour": str(colour).strip(), "labels": labels,
            "count": page.get_by_text(COUNT).first.inner_text()}


def test_a_copied_url_reopens_the_view_in_a_new_browser(demo_server: Server, browser: Any, page: Any) -> None:
    open_app(page, f"{demo_server.url}/Explore")
    chart = _map_ready(page)
    # Colour by prediction.
    page.get_by_label("Colour by").first.click()
    page.get_by_role("option", name="prediction", exact=True).click()
    wait_idle(page)
    # Filter the map to one label (the demo's classes are the digits), typed into the multiselect.
    label = "3"
    page.locator('[data-testid="stSidebar"]').get_by_label("Label", exact=True).click()
    page.keyboard.type(label)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_idle(page)
    # Open an item from a box selection's grid.
    _box_select(page, chart)
    page.locator('[data-testid="stButton"] button').filter(has_text="Open").first.click()
    page.get_by_text("Nearest neighbours").first.wait_for()
    wait_idle(page)
    params = _wait_for_param(page, "item")
    assert params["colour"] == ["prediction"] and params["f.label"] == [label], params
    assert params["project"] and params["space"] and params["datasets"]
    url = page.evaluate("location.href")
    before = _view(page)
    assert before["colour"] == "prediction" and label in before["labels"]
    page.screenshot(path="/tmp/shared_url_before.png", full_page=True)

    # A new browser context: no cookies, no storage, a new Streamlit session.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        fresh = context.new_page()
        open_app(fresh, url)
        _map_ready(fresh)
        fresh.get_by_text("Nearest neighbours").first.wait_for()
        wait_idle(fresh)
        assert _view(fresh) == before
        assert _params(fresh.evaluate("location.href")) == params  # nothing was dropped as unknown
        assert fresh.locator('[data-testid="stToast"]').count() == 0  # no "fell back" notice
        fresh.screenshot(path="/tmp/shared_url_after.png", full_page=True)
    finally:
        context.close()
