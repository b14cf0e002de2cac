"""The Ingest page's "Detection dataset" source through AppTest: a hand-made COCO set (upload + server path)
embedded with a real tiny model into a real store; objects with their parents, the counts line, bad files named."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.ids import point_id
from core.types import ITEM_KIND, OBJECT_KIND
from tests.app.conftest import _clear_caches, run_page
from tests.core.test_objects_ingest import EXPECTED, N_LABELS, N_PREDICTIONS, write_coco, write_yolo

PAGE = "pages/1_Ingest.py"


@pytest.fixture
def data_roots(app_env: Settings, tmp_path: Path, tiny_vit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `datasets/` data root holding a COCO set (coco/images, coco/instances.json, coco/results.json)."""
    write_coco(tmp_path / "datasets" / "coco")
    monkeypatch.setenv("EMBEDSCOPE_DATA_ROOTS", f"{tmp_path / 'datasets'},{tiny_vit_dir.parent}")
    return tmp_path / "datasets"


def _form(project: str, model_dir: Path, instances: tuple[str, bytes] | None, fmt: str = "coco", **paths: str):
    at = run_page(PAGE, timeout=180).run()
    at.radio(key="ing.source").set_value("detection").run()
    at.radio(key="ing.det.format").set_value(fmt).run()
    at.text_input(key="ing.project").set_value(project)
    at.text_input(key="ing.dataset").set_value("val")
    at.radio(key="ing.model_kind").set_value("local").run()
    at.text_input(key="ing.local_model").set_value(str(model_dir))
    if instances is not None:
        at.file_uploader(key="ing.det.labels").set_value((*instances, "application/json"))
    for key, value in paths.items():
        at.text_input(key=f"ing.det.{key}").set_value(value)
    return at.run()


def _payloads(settings: Settings, project: str):  # noqa: ANN202 -- a DataFrame
    from core.store import open_store

    _clear_caches()  # closes the page's store
    store = open_store(settings)
    try:
        (space,) = store.list_spaces(project)
        return store.payloads(project, space.name)
    finally:
        store.close()


def test_a_coco_set_ingests_images_and_objects_with_their_parents(data_roots: Path, tiny_vit_dir: Path) -> None:
    instances = (data_roots / "coco" / "instances.json").read_bytes()
    at = _form("shop", tiny_vit_dir, ("instances.json", instances), results_path="coco/results.json",
               images="coco/images")
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    (line,) = [i.value.replace("\\", "") for i in at.info if "objects" in i.value]  # md() escapes it
    assert "4 images" in line and f"{N_LABELS + N_PREDICTIONS} objects" in line
    assert all(f"{status} {n}" in line for status, n in EXPECTED.items()), line
    assert "2 rejected" in line and "partial" in line  # d.png's two bad boxes
    rejects = at.dataframe[0].value
    assert sorted(rejects["key"]) == ["d.png#label/annotation-7", "d.png#label/annotation-8"]
    payloads = _payloads(load_settings(), "shop")
    objects = payloads[payloads["kind"] == OBJECT_KIND]
    images = payloads[payloads["kind"] == ITEM_KIND]
    assert sorted(images["key"]) == ["a.png", "b.png", "c.png", "d.png"]
    assert len(objects) == N_LABELS + N_PREDICTIONS
    assert set(objects["parent"]) <= set(images.index) == {point_id("shop", "val", k) for k in images["key"]}
    assert objects["match"].value_counts().to_dict() == {s: n for s, n in EXPECTED.items() if n}


def test_a_bad_coco_file_is_named_and_nothing_is_stored(data_roots: Path, tiny_vit_dir: Path) -> None:
    at = _form("shop", tiny_vit_dir, ("broken-instances.json", b"{not json"), images="coco/images")
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]  # md() escapes them
    assert any("broken-instances.json: not valid JSON" in e for e in errors), errors
    at.file_uploader(key="ing.det.labels").set_value(None)
    at.text_input(key="ing.det.labels_path").set_value("../outside.json").run()
    at.button(key="ing.run").click().run()
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("COCO instances JSON '../outside.json' is outside the data roots" in e for e in errors), errors
    from core.store import open_store

    _clear_caches()
    store = open_store(load_settings())
    try:
        assert store.list_spaces("shop") == []
    finally:
        store.close()


def test_a_yolo_folder_with_predictions_ingests_from_the_page(data_roots: Path, tiny_vit_dir: Path) -> None:
    write_yolo(data_roots / "yolo")
    at = _form("det", tiny_vit_dir, None, fmt="yolo", images="yolo", results_path="yolo/preds")
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    (line,) = [i.value.replace("\\", "") for i in at.info if "objects" in i.value]
    assert "2 images, 5 objects (2 labels / 3 predictions)" in line and "1 rejected (partial)" in line
    assert "tp 2" in line and "misclassified 2" in line and "spurious 1" in line
    assert list(at.dataframe[0].value["key"]) == ["b.png#label/line-2"]
    objects = _payloads(load_settings(), "det").query("kind == @OBJECT_KIND")
    assert len(objects) == 5 and objects["parent"].nunique() == 2
