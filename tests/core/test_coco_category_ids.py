"""A COCO dataset's own category ids survive ingest and come back in the COCO export of its objects."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.__main__ import main
from core.config import Settings
from core.curation.labels import set_labels
from core.curation.tags import add_tags
from core.filters import Condition, Filter
from core.interop.objects import category_list
from core.pipeline.detection_info import DEFAULT_IOU, category_ids, match_iou, save_detection_info
from core.store import open_store
from tests.actors import ADMIN
from tests.core.test_object_vectors import LABEL_IDS, PREDICTION_KEYS, _vectors
from tests.core.test_objects_ingest import write_coco

IDS = {1: 17, 2: 3}  # cat, dog renumbered: not the alphabetical 1, 2 an export would assign


def _renumbered_coco(root: Path) -> tuple[Path, Path, Path]:
    instances, results, images = write_coco(root)
    doc = json.loads(instances.read_text())
    doc["categories"] = [{**c, "id": IDS[c["id"]], "supercategory": "animal"} for c in doc["categories"]]
    doc["annotations"] = [{**a, "category_id": IDS[a["category_id"]]} for a in doc["annotations"]]
    instances.write_text(json.dumps(doc))
    results.write_text(json.dumps([{**r, "category_id": IDS[r["category_id"]]} for r in json.loads(results.read_text())]))
    return instances, results, images


def test_the_coco_export_gives_back_the_category_ids_of_the_ingested_file(
        tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from pycocotools.coco import COCO

    instances, results, images = _renumbered_coco(tmp_path / "data" / "coco")
    vectors = tmp_path / "v.parquet"
    ids = [*LABEL_IDS, *PREDICTION_KEYS]
    pq.write_table(pa.table({"id": ids, "embedding": _vectors(len(ids)).tolist()}), vectors)
    assert main(["ingest", "--coco", str(instances), "--predictions", str(results), "--images", str(images),
                 "--object-vectors", str(vectors), "--project", "shop", "--dataset", "val",
                 "--progress", "none"]) == 3  # the reader's two bad boxes
    store = open_store(settings)
    try:
        assert category_ids(store, "shop", ["val"]) == [
            {"id": 3, "name": "dog", "supercategory": "animal"}, {"id": 17, "name": "cat", "supercategory": "animal"}]
        objects = store.payloads("shop", "own", Filter(must=(Condition("kind", equals="object"),)))
        add_tags(store, "shop", list(objects.index), ["fix"], actor=ADMIN)
        relabeled = objects.index[(objects["source"] == "label") & (objects["label"] == "dog")][0]
        set_labels(store, "shop", [relabeled], ["bird"], actor=ADMIN, why="manual")  # a class the file lacks
    finally:
        store.close()
    out = tmp_path / "out" / "fix.json"
    code = main(["export", "--project", "shop", "--objects", "--tag", "fix", "--format", "coco", "--predictions",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr()
    api = COCO(str(out))
    cats = {c["name"]: c["id"] for c in api.loadCats(api.getCatIds())}
    assert cats == {"cat": 17, "dog": 3, "bird": 18}
    names = {c["id"]: c["name"] for c in api.loadCats(api.getCatIds())}
    by_id = {a["embedscope_id"]: names[a["category_id"]] for a in api.loadAnns(api.getAnnIds())}
    assert by_id[relabeled] == "bird" and sorted(set(by_id.values())) == ["bird", "cat", "dog"]
    predicted = json.loads((out.parent / "fix.results.json").read_text())
    assert {names[r["category_id"]] for r in predicted} == {"cat", "dog"}  # same ids in the results file


def test_conflicting_or_missing_category_ids_fall_back_to_numbering(settings: Settings) -> None:
    store = open_store(settings)
    try:
        assert match_iou(store, "p", "a") == DEFAULT_IOU  # nothing recorded
        save_detection_info(store, "p", "a", categories=[{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}], iou=0.7)
        save_detection_info(store, "p", "b", categories=[{"id": 2, "name": "cat"}], iou=0.5)  # cat: 1 in a, 2 in b
        assert match_iou(store, "p", "a") == 0.7
        assert category_ids(store, "p", ["a"]) == [{"id": 1, "name": "cat", "supercategory": ""},
                                                  {"id": 2, "name": "dog", "supercategory": ""}]
        assert category_ids(store, "p", ["a", "b"]) == []
        save_detection_info(store, "p", "b", categories=[], iou=0.5)  # re-ingested from an input without ids: the old ones go
        assert category_ids(store, "p", ["a", "b"]) == category_ids(store, "p", ["a"])
    finally:
        store.close()
    assert category_list(["ant", "cat"]) == [{"id": 1, "name": "ant", "supercategory": ""},
                                             {"id": 2, "name": "cat", "supercategory": ""}]
