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


def _own_form(project: str, **paths: str):  # noqa: ANN202 -- an AppTest
    """The detection source with Objects: own (no model chosen), the COCO set by its server paths."""
    at = run_page(PAGE, timeout=180).run()
    at.radio(key="ing.source").set_value("detection").run()
    at.radio(key="ing.det.mode").set_value("own").run()
    at.text_input(key="ing.project").set_value(project)
    at.text_input(key="ing.dataset").set_value("val")
    for key, value in {"labels_path": "coco/instances.json", "results_path": "coco/results.json",
                       "images": "coco/images", **paths}.items():
        at.text_input(key=f"ing.det.{key}").set_value(value)
    return at.run()


def test_own_object_vectors_ingest_from_the_page_without_a_model(data_roots: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.core.test_object_vectors import LABEL_IDS, PREDICTION_KEYS

    ids = [*LABEL_IDS, *PREDICTION_KEYS]  # COCO annotation ids, and the predictions' object keys
    rows = np.random.default_rng(0).normal(size=(len(ids), 4)).astype(np.float32)
    pq.write_table(pa.table({"id": ids, "embedding": pa.array(rows.tolist(), type=pa.list_(pa.float32()))}),
                   data_roots / "coco" / "objects.parquet")
    at = _own_form("own", vectors_path="coco/objects.parquet", space="mine")
    assert not [n for n in at.number_input if n.key == "ing.det.margin"]  # no crops: no margin
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    (line,) = [i.value.replace("\\", "") for i in at.info if "objects" in i.value]
    assert "4 images" in line and f"{N_LABELS + N_PREDICTIONS} objects" in line
    assert all(f"{status} {n}" in line for status, n in EXPECTED.items()), line
    assert "2 rejected" in line  # d.png's two bad boxes, as with a model
    payloads = _payloads(load_settings(), "own")  # one space: "mine", no model's
    objects = payloads[payloads["kind"] == OBJECT_KIND]
    assert len(objects) == N_LABELS + N_PREDICTIONS and payloads["kind"].eq(ITEM_KIND).sum() == 0  # no image rows
    assert objects["match"].value_counts().to_dict() == {s: n for s, n in EXPECTED.items() if n}
    assert set(objects["parent"]) <= {point_id("own", "val", k) for k in ("a.png", "b.png", "c.png", "d.png")}


def test_own_object_vectors_as_npy_uploads_and_what_is_missing_is_named(data_roots: Path) -> None:
    import io

    import numpy as np

    from tests.core.test_object_vectors import LABEL_IDS, PREDICTION_KEYS

    at = _own_form("own2")
    at.button(key="ing.run").click().run()
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("Upload the object vectors" in e for e in errors), errors
    ids = [*LABEL_IDS, *PREDICTION_KEYS[:-1]]  # c.png#prediction/2 has no vector: a named reject
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(1).normal(size=(len(ids), 3)).astype(np.float32))
    at.file_uploader(key="ing.det.vectors").set_value(("v.npy", buffer.getvalue(), "application/octet-stream"))
    at.run()
    at.button(key="ing.run").click().run()
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("v.npy" in e and "ids" in e for e in errors), errors  # a .npy without its ids
    at.file_uploader(key="ing.det.ids").set_value(("ids.txt", "\n".join(ids).encode(), "text/plain"))
    at.run()
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    (line,) = [i.value.replace("\\", "") for i in at.info if "objects" in i.value]
    assert f"{len(ids)} objects" in line and f"{len(ids)} stored" in line, line
    assert "3 rejected" in line  # the reader's two bad boxes, and the object without a vector
    rejects = at.dataframe[0].value
    assert "c.png#prediction/2" in set(rejects["key"])
    objects = _payloads(load_settings(), "own2").query("kind == @OBJECT_KIND")
    assert len(objects) == len(ids) and objects.index.nunique() == len(ids)
