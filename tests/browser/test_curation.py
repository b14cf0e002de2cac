"""Curation in a real browser: tag a box selection and filter the map by the tag; accept the suggested labels
of the likely mislabels and undo it from History (a fresh page sees each state); a review queue of 5 items
driven by key presses.

Its own server on its own demo store (the analysis and the map computed beforehand), so the labels it
changes never reach the session's shared demo server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.actors import ADMIN
from tests.browser.conftest import Server, open_app, wait_idle

pytestmark = pytest.mark.browser

CHART = '[data-testid="stPlotlyChart"]'
POPOVER = '[data-testid="stPopoverBody"]'
TAG = "blurry"


@pytest.fixture(scope="module")
def curation_server(start_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A dashboard on a fresh demo store with the first space's analysis and UMAP map persisted."""
    from core.config import load_settings
    from core.demo import load_demo
    from core.pipeline.analyse import run_analysis
    from core.pipeline.maps import get_map
    from core.store import open_store

    base = tmp_path_factory.mktemp("browser-curation")
    settings = load_settings(data_dir=base / "data")
    store = open_store(settings)
    try:
        load_demo(store, settings, with_pretrained=False)
        space = store.list_spaces("demo")[0].name  # the sidebar's default space and datasets
        datasets = [d.name for d in store.list_datasets("demo")]
        run_analysis(store, "demo", space, datasets, actor=ADMIN)
        get_map(store, "demo", space, datasets, method="umap", actor=ADMIN)
    finally:
        store.close()  # the server process opens the embedded store itself
    return start_server(base / "data")


def _open(page: Any, server: Server, path: str) -> None:
    open_app(page, f"{server.url}/{path}")


def _open_explore(page: Any, server: Server) -> Any:
    _open(page, server, "Explore")
    chart = page.locator(CHART).first
    chart.locator("canvas").first.wait_for()
    wait_idle(page)
    return chart


def _box_select(page: Any, chart: Any) -> int:
    """Box-select the middle of the map; returns the selection's size (its heading)."""
    chart.hover()
    chart.locator('.modebar-btn[data-title="Box Select"]').click()
    area = chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None
    x0, y0 = area["x"] + area["width"] * 0.3, area["y"] + area["height"] * 0.3
    x1, y1 = area["x"] + area["width"] * 0.7, area["y"] + area["height"] * 0.7
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    heading = page.get_by_text(re.compile(r"^Selection · [\d,]+$")).first
    heading.wait_for()
    wait_idle(page)
    return int(heading.inner_text().split("·")[1].replace(",", ""))


def _shown_points(page: Any) -> int:
    text = page.get_by_text(re.compile(r"^[\d,]+ of [\d,]+ points")).first.inner_text()
    return int(text.split(" of ")[0].replace(",", ""))


def _choose(select: Any, text: str) -> None:
    """Type into a multiselect and press Enter: picks the option, or adds a new one."""
    select.locator("input").click()
    select.locator("input").fill(text)
    select.page.keyboard.press("Enter")
    select.get_by_text(text).first.wait_for()  # the chip
    select.locator("label").first.click()  # closes the menu (it would cover the buttons below)


def test_tag_a_selection_and_filter_the_map_by_it(curation_server: Server, page: Any) -> None:
    chart = _open_explore(page, curation_server)
    selected = _box_select(page, chart)
    assert selected > 3
    total = _shown_points(page)
    page.get_by_role("button", name="Tag").first.click()
    body = page.locator(POPOVER).filter(has=page.get_by_role("button", name="Add"))
    _choose(body.locator('[data-testid="stMultiSelect"]'), TAG)
    body.get_by_role("button", name="Add").click()
    page.get_by_text(f"Tagged {selected:,} item(s): {TAG}").first.wait_for()  # the toast
    wait_idle(page)
    # The sidebar now offers the tag; filtering by it keeps exactly the tagged points.
    tags = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(has_text="Tags")
    _choose(tags, TAG)
    page.get_by_text(re.compile(rf"^{selected:,} of {total:,} points")).first.wait_for()
    wait_idle(page)
    assert _shown_points(page) == selected < total
    page.screenshot(path="/tmp/curation_tag_filter.png", full_page=True)


def _suggestions(page: Any) -> None:
    """Open the likely mislabels' "Accept suggested labels…" preview on Explore (listed while some
    likely mislabel is not corrected yet)."""
    page.get_by_role("tab", name="Likely mislabels").click()
    page.get_by_text("Accept suggested labels…").first.click()
    wait_idle(page)


def test_accept_suggested_labels_then_undo_and_a_fresh_page_agrees(curation_server: Server, browser: Any,
                                                                   page: Any) -> None:
    _open_explore(page, curation_server)
    _suggestions(page)
    apply = page.get_by_role("button", name="Apply the ticked changes")
    apply.wait_for()
    page.screenshot(path="/tmp/curation_preview.png", full_page=True)
    apply.click()
    page.get_by_text(re.compile(r"suggested label\(s\) accepted")).first.wait_for()
    wait_idle(page)

    fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        fresh.set_default_timeout(90_000)
        _open_explore(fresh, curation_server)  # a new session: the labels are changed in the store
        fresh.get_by_role("tab", name="Likely mislabels").click()
        fresh.get_by_text("No likely mislabels").first.wait_for()  # corrected items leave the list
        _open(fresh, curation_server, "History")
        fresh.get_by_text("from a finding").first.wait_for()
        fresh.get_by_role("button", name="Undo last").click()
        fresh.get_by_text(re.compile(r"^Undone: \d+ row")).first.wait_for()
        wait_idle(fresh)
        fresh.get_by_text(re.compile(r"undone \(entry")).first.wait_for()
        fresh.screenshot(path="/tmp/curation_history.png", full_page=True)
    finally:
        fresh.close()
    # The first page, reloaded, offers the suggestions again: the undo restored the labels.
    _open_explore(page, curation_server)
    _suggestions(page)
    page.get_by_role("button", name="Apply the ticked changes").wait_for()


def _at(page: Any, n: int) -> None:
    page.get_by_text(re.compile(rf"^{n} of \d+ ·")).first.wait_for()
    wait_idle(page)


def test_a_review_queue_of_five_items_on_keys(curation_server: Server, page: Any) -> None:
    _open(page, curation_server, "Review")
    # The default source, the likely mislabels, past the cut-off: how many pass it depends on the demo.
    page.get_by_text("Continue past the cut-off").first.click()
    wait_idle(page)
    page.get_by_role("button", name="Start").click()
    _at(page, 1)
    total = int(re.search(r"of (\d+)", page.get_by_text(re.compile(r"^1 of \d+ ·")).first.inner_text()).group(1))
    assert total >= 6  # five steps, then the sixth item is on screen
    page.locator("h1").first.click()  # keys go to the page, not a widget
    page.keyboard.press("k")  # keep: reviewed
    _at(page, 2)
    page.keyboard.press("s")  # skip
    _at(page, 3)
    page.keyboard.press("b")  # back
    _at(page, 2)
    page.keyboard.press("a")  # accept the suggestion
    _at(page, 3)
    page.keyboard.press("k")
    _at(page, 4)
    page.keyboard.press("s")
    _at(page, 5)
    page.keyboard.press("k")
    _at(page, 6)
    assert page.get_by_text(re.compile(r"· 4 done")).first.is_visible()
    page.screenshot(path="/tmp/curation_review.png", full_page=True)
    # What the keys did is in the store: the History of a fresh page lists it.
    _open(page, curation_server, "History")
    page.get_by_text("review queue").first.wait_for()
