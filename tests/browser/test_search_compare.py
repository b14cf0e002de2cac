"""Search and Compare in a real browser: example and text searches show results; Compare shows
the drift figure and the joint WebGL map."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.actors import ADMIN
from tests.browser.conftest import Server, open_app, wait_idle

pytestmark = pytest.mark.browser

CHART = '[data-testid="stPlotlyChart"]'
IMAGE = '[data-testid="stImage"]'


def _button(page: Any, text: str) -> Any:
    return page.locator('[data-testid="stButton"] button').filter(has_text=text)


@pytest.fixture(scope="module")
def clip_server(start_server: Callable[..., Server], tiny_clip_dir: Path,  # noqa: F811
                tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A dashboard on a project embedded with a tiny CLIP (a space with a text side)."""
    from core.config import load_settings
    from core.embedders import load_embedder
    from core.pipeline.ingest import ingest_items
    from core.store import open_store
    from core.types import Item

    data_dir = tmp_path_factory.mktemp("browser-clip") / "data"
    settings = load_settings(data_dir=data_dir)
    folder = settings.demo_dir / "pictures"
    folder.mkdir(parents=True)
    items = []
    for i, colour in enumerate([(220, 40, 40), (40, 200, 40), (40, 40, 220)] * 4):
        pixels = np.full((32, 32, 3), colour, dtype=np.uint8)
        pixels[:, (i % 4) * 8:(i % 4 + 1) * 8] = 255
        path = folder / f"pic_{i:02d}.png"
        Image.fromarray(pixels).resize((96, 96), Image.Resampling.NEAREST).save(path)
        items.append(Item(key=path.name, uri=str(path), label=("red", "green", "blue")[i % 3]))
    store = open_store(settings)
    try:
        ingest_items(store, "pictures", "photos", items,
                     load_embedder(str(tiny_clip_dir), "image", device="cpu"), settings=settings, actor=ADMIN)
    finally:
        store.close()
    return start_server(data_dir)


def test_examples_search_on_the_demo(demo_server: Server, page: Any) -> None:
    open_app(page, f"{demo_server.url}/Search")
    # demo-mlp holds the user's own vectors: no text side, and the page says where to get one.
    page.get_by_text("Text search needs a space").first.wait_for()
    page.get_by_text("Pick examples").first.wait_for()
    _button(page, "+ more like this").first.click()
    page.get_by_text("more like 1 example(s)").first.wait_for()
    wait_idle(page)
    page.get_by_role("heading", name="24 results").wait_for()
    assert page.locator(IMAGE).count() >= 24  # the example thumbnail + the result cards
    page.screenshot(path="/tmp/search_examples.png", full_page=True)
    # "− less like this" on a result adds an "Unlike these" example and searches again.
    _button(page, "− less like this").nth(3).click()
    page.get_by_text("unlike 1").first.wait_for()
    wait_idle(page)


def test_text_search_in_a_clip_space(clip_server: Server, page: Any) -> None:
    open_app(page, f"{clip_server.url}/Search")
    box = page.get_by_label("Describe what you are looking for")
    box.fill("a photo of a red car")
    box.press("Enter")
    page.get_by_text("text “a photo of a red car”").first.wait_for()
    wait_idle(page)
    page.get_by_role("heading", name="12 results").wait_for()
    assert page.locator(IMAGE).count() >= 12
    page.screenshot(path="/tmp/search_text.png", full_page=True)


def test_compare_shows_drift_and_the_joint_map(demo_server: Server, page: Any) -> None:
    # Not open_app: the first visit computes the comparison and fits the map (minutes on a busy
    # machine), so wait on what appears, with long timeouts.
    page.goto(f"{demo_server.url}/Compare")
    page.get_by_text("Drift: domain classifier AUC").first.wait_for(timeout=300_000)
    page.get_by_text("0.5 would mean the two are indistinguishable").first.wait_for()
    chart = page.locator(CHART).first
    chart.wait_for()
    # The quick PCA layout is replaced by the UMAP map after a rerun (minutes on a busy machine).
    chart.locator(".gtitle").filter(has_text="UMAP of train + production").wait_for(
        timeout=600_000)
    wait_idle(page)
    chart.locator("canvas").first.wait_for()
    legend = chart.locator(".legend .traces")
    assert legend.filter(has_text="production").count() >= 1
    assert legend.filter(has_text="train").count() == 1
    assert page.locator(IMAGE).count() >= 24  # the most novel items
    page.screenshot(path="/tmp/compare.png", full_page=True)
