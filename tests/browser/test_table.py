"""The Explore table in a real browser: opened below the map, a row ticked in the grid is ringed on
the map (its own legend entry) and opens that item."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Server, open_app, wait_idle
from ui.widgets.table import RINGED

pytestmark = pytest.mark.browser

CHART = '[data-testid="stPlotlyChart"]'
HEADER_PX, ROW_PX = 36, 48  # the grid's header and its rows (ui.widgets.table: row_height=48)


def test_a_table_row_is_ringed_on_the_map(demo_server: Server, page: Any) -> None:
    open_app(page, f"{demo_server.url}/Explore")
    page.locator(CHART).first.wait_for()
    page.get_by_text("Quick layout").wait_for(state="detached", timeout=300_000)
    wait_idle(page)
    page.get_by_text("Table of the points").click()
    grid = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator("canvas")).last
    grid.wait_for()
    wait_idle(page)
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    # The row-marker column (the grid's left edge) ticks the second row.
    page.mouse.click(box["x"] + 14, box["y"] + HEADER_PX + ROW_PX * 1.5)
    page.locator(f"{CHART} .legendtext").filter(has_text=RINGED).first.wait_for()
    page.get_by_text("Nearest neighbours").first.wait_for()  # one row ticked: its detail opens
    wait_idle(page)
    page.screenshot(path="/tmp/explore_table.png", full_page=True)
