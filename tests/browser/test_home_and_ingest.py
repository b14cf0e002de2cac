"""Real browser: the home page loads, "Load demo" fills the store, a zip upload is ingested."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import Server, load_demo_via_ui, open_app, wait_idle
from tests.tiny_models import make_tiny_vit

pytestmark = pytest.mark.browser


def test_home_page_loads_on_an_empty_store(streamlit_server: Server, page) -> None:
    open_app(page, streamlit_server.url)
    page.get_by_role("heading", name="embedscope").wait_for()
    page.get_by_role("button", name="Load demo").wait_for()
    page.get_by_text("The store is empty").first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_load_demo_button_fills_the_store(streamlit_server: Server, page, tmp_path: Path) -> None:
    load_demo_via_ui(page, streamlit_server.url)
    expect(page.get_by_role("button", name="Load demo")).to_have_count(0)  # waits for the rerun
    page.locator('[data-testid="stTable"]').first.get_by_text("train").wait_for()
    # The sidebar now offers the demo's datasets, with their counts.
    page.locator('[data-testid="stSidebar"]').get_by_text("train (").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(tmp_path / "home-demo.png"), full_page=True)


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for label, color in (("cat", "orange"), ("dog", "brown")):
            for i in range(3):
                image = path.parent / f"{label}{i}.png"
                Image.new("RGB", (36 + i, 36), color).save(image)
                zf.write(image, f"{label}/{image.name}")
    return path


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_role("textbox", name=label, exact=True)
    box.fill(value)
    box.press("Enter")  # Streamlit commits a text input on Enter (or blur)
    expect(box).to_have_value(value)
    wait_idle(page)


def test_upload_a_zip_and_ingest_it(streamlit_server: Server, page, tmp_path: Path) -> None:
    roots = streamlit_server.data_dir.parent / "datasets"  # the server's data root
    model_dir = make_tiny_vit(roots / "models" / "tiny-vit")
    archive = _zip(tmp_path / "pets.zip")

    open_app(page, f"{streamlit_server.url}/Ingest")
    page.get_by_role("heading", name="Ingest a dataset").wait_for()
    _fill(page, "Project", "browserpets")
    _fill(page, "Dataset", "zipped")
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Images or zip")
    uploader.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    uploader.get_by_text("pets.zip").wait_for()
    page.locator('[data-testid="stRadio"] label').filter(has_text="Local model directory").click()
    page.get_by_role("textbox", name="Model directory (save_pretrained)").wait_for()
    _fill(page, "Model directory (save_pretrained)", str(model_dir))
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("Status: ok").wait_for(timeout=180_000)
    stored = page.locator('[data-testid="stMetric"]', has_text="Stored")
    assert stored.locator('[data-testid="stMetricValue"]').inner_text().strip() == "6"
    assert page.locator('[data-testid="stException"]').count() == 0
    assert sorted(p.name for p in (streamlit_server.data_dir / "uploads" / "zipped").rglob("*.png")) \
        == sorted(f"{label}{i}.png" for label in ("cat", "dog") for i in range(3))
