"""Detection inputs (core.datasets.detections): COCO instances + results files and box manifests, read
from real PNG files in a temp data root; every kind of bad box becomes a named reject, the rest is kept."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.config import Settings
from core.datasets.detections import (
    Box,
    DetectionSet,
    DetObject,
    parse_box,
    read_box_manifest,
    read_coco,
    read_yolo,
)
from core.errors import BadInputError
from core.ids import object_id

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]


def write_png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A real RGB PNG of width x height random pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def data(settings: Settings, tmp_path: Path) -> Path:
    """The data root with images/a.png (60x40), images/sub/b.png (30x50)."""
    root = tmp_path / "data"
    write_png(root / "images" / "a.png", 60, 40, seed=1)
    write_png(root / "images" / "sub" / "b.png", 30, 50, seed=2)
    return root


def coco(annotations: list[dict[str, Any]], images: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "images": images if images is not None else [
            {"id": 10, "file_name": "a.png", "width": 60, "height": 40},
            {"id": 20, "file_name": "sub/b.png"},  # no size: read from the PNG header
        ],
        "annotations": annotations,
        "categories": CATEGORIES,
    }


def ann(ann_id: int, image_id: int, bbox: Any, category: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": ann_id, "image_id": image_id, "category_id": category, "bbox": bbox, "iscrowd": 0, **extra}


def by_key(det: DetectionSet) -> dict[str, DetObject]:
    return {obj.key: obj for obj in det.objects}


def reject_reasons(det: DetectionSet) -> dict[str, str]:
    return {r.key: r.reason for r in det.rejects}


def test_coco_labels_and_predictions(data: Path, settings: Settings) -> None:
    instances = write_json(data / "instances.json", coco([
        ann(7, 10, [30, 10, 20, 20], category=2, attributes={"occluded": True}),
        ann(3, 10, [1, 2, 10, 5]),  # the lower id: index 0 although listed second
        ann(4, 20, [0, 0, 30, 50]),
    ]))
    results = write_json(data / "results.json", [
        {"image_id": 20, "category_id": 2, "bbox": [2, 3, 4, 5], "score": 0.4},
        {"image_id": 10, "category_id": 1, "bbox": [1, 2, 10, 6], "score": 0.9},
        {"image_id": 20, "category_id": 1, "bbox": [0, 0, 29, 49], "score": 0.8},
    ])
    det = read_coco(instances, data / "images", predictions=results, settings=settings)
    assert det.rejects == []
    assert [item.key for item in det.images] == ["a.png", "sub/b.png"]
    assert det.images[1].uri == str((data / "images" / "sub" / "b.png").resolve())
    assert det.images[0].meta == {"coco_id": 10, "width": 60, "height": 40}
    assert det.sizes == {"a.png": (60, 40), "sub/b.png": (30, 50)}  # b's size from its header
    objects = by_key(det)
    assert set(objects) == {"a.png#label/0", "a.png#label/1", "sub/b.png#label/0", "a.png#prediction/0",
                            "sub/b.png#prediction/0", "sub/b.png#prediction/1"}
    first = objects["a.png#label/0"]
    assert (first.cls, first.box, first.score, first.meta) == ("cat", Box(1, 2, 11, 7), None, {"annotation_id": 3})
    assert objects["a.png#label/1"].cls == "dog"
    assert objects["a.png#label/1"].meta == {"attributes": {"occluded": True}, "annotation_id": 7}
    # predictions: numbered per image in the results file's order, joined by image id
    assert objects["sub/b.png#prediction/0"].cls == "dog" and objects["sub/b.png#prediction/0"].score == 0.4
    assert objects["sub/b.png#prediction/1"].box == Box(0, 0, 29, 49)
    assert objects["a.png#prediction/0"].score == 0.9
    assert det.counts() == {"images": 2, "label": 3, "prediction": 3, "rejects": 0}
    grouped = det.by_image()
    assert [o.key for o in grouped["sub/b.png"]] == ["sub/b.png#label/0", "sub/b.png#prediction/0",
                                                     "sub/b.png#prediction/1"]
    # a rerun reads the same objects, so the object point ids are the same
    again = read_coco(instances, data / "images", predictions=results, settings=settings)
    assert again.objects == det.objects
    ids = {object_id("p", "d", o.image_key, o.source, o.index) for o in det.objects}
    assert len(ids) == len(det.objects)


BAD_BOXES: dict[str, tuple[Any, str]] = {
    "zero width": ([5, 5, 0, 10], "zero or negative area"),
    "negative height": ([5, 5, 10, -3], "zero or negative area"),
    "outside the image": ([50, 5, 20, 10], "outside the image"),
    "NaN": ([5, math.nan, 10, 10], "not a finite number"),
    "infinity": ([5, 5, math.inf, 10], "not a finite number"),
    "three numbers": ([5, 5, 10], "expected 4 numbers"),
    "text": (["5", 5, 10, 10], "not a number"),
    "null": (None, "expected 4 numbers"),
}


@pytest.mark.parametrize("kind", sorted(BAD_BOXES))
def test_coco_bad_box_is_a_named_reject_and_the_rest_is_kept(kind: str, data: Path, settings: Settings) -> None:
    bbox, words = BAD_BOXES[kind]
    instances = write_json(data / "instances.json", coco([ann(1, 10, [1, 1, 5, 5]), ann(2, 10, bbox),
                                                          ann(3, 10, [2, 2, 5, 5])]))
    det = read_coco(instances, data / "images", settings=settings)
    assert [item.key for item in det.images] == ["a.png", "sub/b.png"]
    # the bad box keeps its number (index 1), so fixing it later renumbers nothing
    assert sorted(o.key for o in det.objects) == ["a.png#label/0", "a.png#label/2"]
    reasons = reject_reasons(det)
    assert list(reasons) == ["a.png#label/annotation-2"]
    reason = reasons["a.png#label/annotation-2"]
    assert "instances.json" in reason and "annotation 2" in reason and "field 'bbox'" in reason
    assert words in reason
    assert det.rejects[0].uri == det.images[0].uri


def test_coco_other_annotation_rejects(data: Path, settings: Settings) -> None:
    instances = write_json(data / "instances.json", coco([
        ann(1, 10, [1, 1, 5, 5], category=99),
        ann(2, 404, [1, 1, 5, 5]),
        ann(3, 10, [1, 1, 5, 5], iscrowd=1),
        ann(4, 10, [1, 1, 5, 5]),
        ann(4, 10, [2, 2, 5, 5]),
    ]))
    det = read_coco(instances, data / "images", settings=settings)
    reasons = reject_reasons(det)
    assert "unknown category id 99" in reasons["a.png#label/annotation-1"]
    assert "field 'category_id'" in reasons["a.png#label/annotation-1"]
    assert "unknown image id 404" in reasons["image-id-404#label/annotation-2"]
    assert "a.png#label/annotation-3" not in reasons  # a crowd region: skipped (as COCO's evaluation does)
    assert "duplicate annotation id" in reasons["a.png#label/annotation-4"]
    assert len(det.rejects) == 3
    assert [o.key for o in det.objects] == ["a.png#label/2"]  # the first annotation 4 (input order on ties)
    assert det.objects[0].box == Box(1, 1, 6, 6)


def test_coco_box_within_one_pixel_is_clipped(data: Path, settings: Settings) -> None:
    instances = write_json(data / "instances.json", coco([ann(1, 10, [-0.5, 0, 60.9, 40.5]),
                                                          ann(2, 10, [-1.5, 0, 10, 10])]))
    det = read_coco(instances, data / "images", settings=settings)
    assert [o.box for o in det.objects] == [Box(0, 0, 60, 40)]
    assert "more than 1 px over the edge" in reject_reasons(det)["a.png#label/annotation-2"]


def test_coco_image_rejects_keep_the_other_images(data: Path, settings: Settings, tmp_path: Path) -> None:
    (data / "images" / "broken.png").write_bytes(b"not a png")
    outside = write_png(tmp_path / "outside" / "c.png", 10, 10)
    (data / "images" / "link.png").symlink_to(outside)
    images = [
        {"id": 10, "file_name": "a.png", "width": 60, "height": 40},
        {"id": 11, "file_name": "missing.png", "width": 60, "height": 40},
        {"id": 12, "file_name": "../images/a.png"},
        {"id": 13, "file_name": str(data / "images" / "a.png")},
        {"id": 14, "file_name": "broken.png"},  # no size given: the header is read, and fails
        {"id": 15, "file_name": "link.png"},  # a symlink out of the data roots
        {"id": 10, "file_name": "sub/b.png"},
        {"file_name": "sub/b.png"},
    ]
    instances = write_json(data / "instances.json", coco([ann(1, 11, [1, 1, 5, 5]), ann(2, 11, [1, 1, 5, 5]),
                                                          ann(3, 10, [1, 1, 5, 5])], images))
    results = write_json(data / "results.json", [{"image_id": 11, "category_id": 1, "bbox": [1, 1, 5, 5],
                                                  "score": 0.5}])
    det = read_coco(instances, data / "images", predictions=results, settings=settings)
    assert [item.key for item in det.images] == ["a.png"]
    assert [o.key for o in det.objects] == ["a.png#label/0"]
    reasons = reject_reasons(det)
    assert "file not found" in reasons["missing.png"] and "its 3 boxes are not kept" in reasons["missing.png"]
    assert "images[1]" in reasons["missing.png"]
    assert "inside the images folder" in reasons["../images/a.png"]
    assert "inside the images folder" in reasons[str(data / "images" / "a.png")]
    assert "not a readable image" in reasons["broken.png"]
    assert "outside the allowed data roots" in reasons["link.png"]
    assert "duplicate image id" in reasons["sub/b.png"]
    assert "needs an 'id'" in reasons["images[7]"]
    assert len(det.rejects) == 7  # the missing image's boxes are named in its own reject only


def test_coco_prediction_rejects(data: Path, settings: Settings) -> None:
    instances = write_json(data / "instances.json", coco([]))
    results = write_json(data / "results.json", [
        {"image_id": 10, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.7},
        {"image_id": 77, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.7},
        {"image_id": 10, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.7},
        {"image_id": 10, "category_id": 1, "bbox": [1, 1, 5, 5], "score": math.nan},
        {"image_id": 10, "category_id": 1, "bbox": [1, 1, 5, 5], "score": "high"},
        {"image_id": 10, "category_id": 1, "bbox": [1, 1, 0, 5], "score": 0.2},
        {"image_id": 10, "category_id": 2, "bbox": [1, 1, 5, 5], "score": 0.6},
    ])
    det = read_coco(instances, data / "images", predictions=results, settings=settings)
    assert [(o.key, o.cls, o.score) for o in det.objects] == [("a.png#prediction/0", "cat", 0.7),
                                                              ("a.png#prediction/5", "dog", 0.6)]
    reasons = reject_reasons(det)
    assert "unknown image id 77" in reasons["image-id-77#prediction/result-1"]
    assert "results.json" in reasons["image-id-77#prediction/result-1"]
    assert "unknown category id 3" in reasons["a.png#prediction/result-2"]
    assert "field 'score'" in reasons["a.png#prediction/result-3"]
    assert "field 'score'" in reasons["a.png#prediction/result-4"]
    assert "zero or negative area" in reasons["a.png#prediction/result-5"]


def test_coco_files_that_are_not_coco(data: Path, settings: Settings, tmp_path: Path) -> None:
    good = write_json(data / "instances.json", coco([]))
    (data / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BadInputError, match="bad.json: not valid JSON"):
        read_coco(data / "bad.json", data / "images", settings=settings)
    with pytest.raises(BadInputError, match="not a COCO instances file"):
        read_coco(write_json(data / "list.json", []), data / "images", settings=settings)
    with pytest.raises(BadInputError, match="not a COCO results file"):
        read_coco(good, data / "images", predictions=write_json(data / "r.json", {"x": 1}), settings=settings)
    with pytest.raises(BadInputError, match="'categories' must be a list"):
        read_coco(write_json(data / "nocat.json", {"images": []}), data / "images", settings=settings)
    with pytest.raises(BadInputError, match="file not found"):
        read_coco(data / "nope.json", data / "images", settings=settings)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(BadInputError, match="outside the allowed data roots"):
        read_coco(good, tmp_path / "elsewhere", settings=settings)


def manifest_rows(fmt: str) -> list[dict[str, Any]]:
    """Two images' boxes in box format fmt (the same boxes in both formats)."""
    def box(x: float, y: float, w: float, h: float) -> list[float]:
        return [x, y, w, h] if fmt == "xywh" else [x, y, x + w, y + h]

    return [
        {"image": "images/a.png", "split": "train", "camera": "north",
         "labels": [{"box": box(1, 2, 10, 5), "class": "cat", "meta": {"occluded": True}},
                    {"box": box(30, 10, 20, 20), "class": "dog"}],
         "predictions": [{"box": box(1, 2, 10, 6), "class": "cat", "score": 0.9}]},
        {"image": "images/sub/b.png", "split": "test", "camera": "south", "width": 30, "height": 50,
         "boxes": [{"box": box(0, 0, 30, 50), "class": "cat", "source": "prediction", "score": 0.8},
                   {"box": box(2, 3, 4, 5), "class": "dog"}]},
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_manifest_xywh_and_xyxy_read_the_same_boxes(data: Path, settings: Settings) -> None:
    xywh = read_box_manifest(write_jsonl(data / "m1.jsonl", manifest_rows("xywh")), None, box_format="xywh",
                             settings=settings)
    xyxy = read_box_manifest(write_jsonl(data / "m2.jsonl", manifest_rows("xyxy")), None, box_format="xyxy",
                             settings=settings)
    assert xywh.rejects == [] and xyxy.rejects == []
    assert xywh.objects == xyxy.objects
    objects = by_key(xywh)
    assert set(objects) == {"images/a.png#label/0", "images/a.png#label/1", "images/a.png#prediction/0",
                            "images/sub/b.png#prediction/0", "images/sub/b.png#label/0"}
    assert objects["images/a.png#label/0"].box == Box(1, 2, 11, 7)
    assert objects["images/a.png#label/0"].meta == {"occluded": True}
    assert objects["images/sub/b.png#label/0"].box == Box(2, 3, 6, 8)
    assert objects["images/sub/b.png#prediction/0"].score == 0.8
    assert [(i.key, i.split, i.meta) for i in xywh.images] == [
        ("images/a.png", "train", {"camera": "north", "width": 60, "height": 40}),
        ("images/sub/b.png", "test", {"camera": "south", "width": 30, "height": 50}),
    ]
    # the same xywh boxes read as xyxy give other (here: refused) boxes: the format is not guessed
    wrong = read_box_manifest(data / "m1.jsonl", None, box_format="xyxy", settings=settings)
    assert wrong.objects != xywh.objects and wrong.rejects


def test_manifest_parquet_matches_jsonl(data: Path, settings: Settings) -> None:
    rows = manifest_rows("xywh")
    pd.DataFrame(rows).to_parquet(data / "m.parquet")
    from_parquet = read_box_manifest(data / "m.parquet", data, box_format="xywh", settings=settings)
    from_jsonl = read_box_manifest(write_jsonl(data / "m.jsonl", rows), None, box_format="xywh", settings=settings)
    assert from_parquet.rejects == []
    # Parquet fills absent struct fields with nulls; the boxes, classes, scores are the same
    assert [(o.key, o.box, o.cls, o.score) for o in from_parquet.objects] == \
        [(o.key, o.box, o.cls, o.score) for o in from_jsonl.objects]
    assert [i.key for i in from_parquet.images] == [i.key for i in from_jsonl.images]


def test_manifest_rejects_are_named(data: Path, settings: Settings) -> None:
    rows = [
        {"image": "images/a.png", "labels": [
            {"box": [1, 1, 5, 5], "class": "cat"},
            {"box": [1, 1, 0, 5], "class": "cat"},
            {"box": [1, 1, 5, 5]},
            {"box": [1, 1, 5, 5], "class": "cat", "score": "sure"},
            {"bbox": [1, 1, 500, 5], "label": "dog"},
            [1, 1, 5, 5],
            {"box": [1, 1, 5, 5], "class": "dog"},
        ], "predictions": "nope", "boxes": [{"box": [1, 1, 5, 5], "class": "cat", "source": "gt"}]},
        {"image": "images/missing.png", "labels": [{"box": [1, 1, 5, 5], "class": "cat"}]},
    ]
    det = read_box_manifest(write_jsonl(data / "m.jsonl", rows), None, box_format="xywh", settings=settings)
    assert [i.key for i in det.images] == ["images/a.png"]
    assert [o.key for o in det.objects] == ["images/a.png#label/0", "images/a.png#label/6"]
    reasons = reject_reasons(det)
    key = "images/a.png#label/labels-"
    assert "labels[1], field 'box': zero or negative area" in reasons[key + "1"]
    assert "field 'class': missing" in reasons[key + "2"]
    assert "field 'score': not a number" in reasons[key + "3"]
    assert "field 'bbox': outside the image" in reasons[key + "4"]
    assert "not a box object" in reasons[key + "5"]
    assert "field 'predictions': not a list of boxes" in reasons["images/a.png#prediction/predictions"]
    assert "field 'source': 'gt'" in reasons["images/a.png#label/boxes-0"]
    assert "file not found" in reasons["images/missing.png"]
    assert all(r.startswith("m.jsonl: image ") for r in reasons.values())


def test_manifest_csv_cells_hold_json_lists(data: Path, settings: Settings) -> None:
    frame = pd.DataFrame([{"path": "images/a.png",
                           "labels": json.dumps([{"box": [1, 2, 3, 4], "class": 7}])}])
    frame.to_csv(data / "m.csv", index=False)
    det = read_box_manifest(data / "m.csv", None, box_format="xyxy", settings=settings)
    assert [(o.key, o.cls, o.box) for o in det.objects] == [("images/a.png#label/0", "7", Box(1, 2, 3, 4))]


def test_manifest_needs_images_and_a_known_box_format(data: Path, settings: Settings) -> None:
    text = write_jsonl(data / "t.jsonl", [{"text": "hello", "labels": []}])
    with pytest.raises(BadInputError, match="needs an image column"):
        read_box_manifest(text, None, box_format="xywh", settings=settings)
    one_row_per_box = write_jsonl(data / "long.jsonl", [{"image": "images/a.png", "labels": []}] * 2)
    with pytest.raises(BadInputError, match="ONE row per image"):
        read_box_manifest(one_row_per_box, None, box_format="xywh", settings=settings)
    with pytest.raises(ValueError, match="box_format"):
        read_box_manifest(text, None, box_format="cxcywh", settings=settings)


def test_box_rules() -> None:
    assert parse_box([0, 0, 10, 10], "xyxy", (10, 10)) == Box(0, 0, 10, 10)
    assert parse_box([0, 0, 11.5, 10], "xyxy", (10, 10)) == "outside the image: [x0 0, y0 0, x1 11.5, y1 10] " \
        "in a 10x10 image (more than 1 px over the edge; wrong box format or image size?)"
    assert isinstance(parse_box([True, 0, 1, 1], "xywh", (10, 10)), str)
    box = Box(1, 2, 4, 8)
    assert (box.width, box.height, box.area, box.to_list(), box.to_xywh()) == (3, 6, 18, [1, 2, 4, 8], [1, 2, 3, 6])
    with pytest.raises(ValueError):
        Box(1, 1, 1, 2)
    with pytest.raises(ValueError):
        DetObject("a", "ground-truth", 0, box, "cat")


def test_yolo_folders(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "data" / "yolo"
    write_png(root / "images" / "train" / "a.png", 60, 40)
    write_png(root / "images" / "train" / "b.png", 30, 50)
    (root / "images" / "train" / "c.png").write_bytes(b"broken")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "classes.txt").write_text("cat\ndog\n", encoding="utf-8")
    # a.png: box (x 6..18, y 4..12) as cx cy w h normalised; then an unknown class; then 4 fields; then a dog
    (root / "labels" / "train" / "a.txt").write_text(
        "0 0.2 0.2 0.2 0.2\n7 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1\n\n1 0.5 0.5 1.0 1.0\n", encoding="utf-8")
    (root / "labels" / "train" / "c.txt").write_text("0 0.5 0.5 0.1 0.1\n", encoding="utf-8")
    (root / "labels" / "train" / "gone.txt").write_text("0 0.5 0.5 0.1 0.1\n", encoding="utf-8")
    preds = tmp_path / "data" / "preds" / "train"
    preds.mkdir(parents=True)
    (preds / "b.txt").write_text("1 0.5 0.5 0.5 0.5 0.75\n0 0.5 0.5 2 2 0.5\n", encoding="utf-8")
    det = read_yolo(root / "images", predictions_dir=tmp_path / "data" / "preds", settings=settings)
    assert [(i.key, i.label) for i in det.images] == [("train/a.png", None), ("train/b.png", None)]
    assert det.sizes == {"train/a.png": (60, 40), "train/b.png": (30, 50)}
    objects = by_key(det)
    assert sorted(objects) == ["train/a.png#label/0", "train/a.png#label/3", "train/b.png#prediction/0"]
    first = objects["train/a.png#label/0"]
    assert (first.cls, first.box) == ("cat", Box(6, 4, 18, 12))
    assert objects["train/a.png#label/3"].box == Box(0, 0, 60, 40)
    assert (objects["train/b.png#prediction/0"].cls, objects["train/b.png#prediction/0"].score) == ("dog", 0.75)
    reasons = reject_reasons(det)
    assert "a.txt: line 2" in reasons["train/a.png#label/line-2"] and "unknown class id 7" in \
        reasons["train/a.png#label/line-2"]
    assert "expected 5 values" in reasons["train/a.png#label/line-3"]
    assert "outside the image" in reasons["train/b.png#prediction/line-2"]
    assert "not a readable image" in reasons["train/c.png"]
    assert "no image for this box file" in reasons["train/gone.txt"]
    assert len(det.rejects) == 5


def test_the_readme_manifest_example_reads(settings: Settings, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Detection datasets"):]
    example = json.loads(section[section.index("```json") + 7:section.index("```", section.index("```json") + 7)])
    root = tmp_path / "data"
    write_png(root / "street" / "0001.jpg", 400, 300)
    det = read_box_manifest(write_jsonl(root / "boxes.jsonl", [example]), root, box_format="xywh", settings=settings)
    assert det.rejects == []
    assert [(o.key, o.cls) for o in det.objects] == [
        ("street/0001.jpg#label/0", "car"), ("street/0001.jpg#label/1", "person"),
        ("street/0001.jpg#prediction/0", "car"), ("street/0001.jpg#prediction/1", "dog")]
    assert det.objects[0].meta == {"occluded": True}
    assert det.images[0].meta["camera"] == "north" and det.images[0].split == "val"


def test_coco_predictions_as_a_coco_file_with_scores(data: Path, settings: Settings) -> None:
    instances = write_json(data / "instances.json", coco([]))
    exported = write_json(data / "preds.json", {  # another tool's ids: mapped by file_name and name
        "images": [{"id": 1, "file_name": "sub/b.png"}, {"id": 2, "file_name": "a.png"}],
        "categories": [{"id": 5, "name": "dog"}, {"id": 6, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 2, "category_id": 5, "bbox": [1, 1, 5, 5], "score": 0.6},
                        {"id": 2, "image_id": 1, "category_id": 6, "bbox": [1, 1, 5, 5], "score": 0.3},
                        {"id": 3, "image_id": 3, "category_id": 6, "bbox": [1, 1, 5, 5], "score": 0.3}],
    })
    det = read_coco(instances, data / "images", predictions=exported, settings=settings)
    assert [(o.key, o.cls, o.score) for o in det.objects] == [("a.png#prediction/0", "dog", 0.6),
                                                              ("sub/b.png#prediction/0", "cat", 0.3)]
    assert [r.key for r in det.rejects] == ["image-id-3#prediction/result-2"]


def test_yolo_class_names_from_a_data_yaml(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "data" / "ds"
    write_png(root / "images" / "a.png", 20, 20)
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n", encoding="utf-8")
    (root / "data.yaml").write_text("path: .\nnames:\n  0: person\n  1: bicycle\n", encoding="utf-8")
    det = read_yolo(root / "images", settings=settings)
    assert [(o.key, o.cls, o.box) for o in det.objects] == [("a.png#label/0", "bicycle", Box(5, 5, 15, 15))]
    (root / "data.yaml").write_text("names: 3\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="'names' must be"):
        read_yolo(root / "images", settings=settings)
    assert read_yolo(root / "images", classes=["a", "b"], settings=settings).objects[0].cls == "b"


def test_coco_text_that_is_not_utf8_is_named_not_a_crash(data: Path, settings: Settings) -> None:
    doc = coco([ann(1, 10, [1, 1, 5, 5])])
    doc["images"].append({"id": 30, "file_name": "bad\ud800.png", "width": 5, "height": 5})
    doc["categories"][0]["name"] = "c\ud800t"
    (data / "instances.json").write_text(json.dumps(doc), encoding="utf-8")  # json escapes the surrogate
    det = read_coco(data / "instances.json", data / "images", settings=settings)
    assert [o.cls for o in det.objects] == ["c%ED%A0%80t"]
    assert "not a valid file name" in reject_reasons(det)["bad%ED%A0%80.png"]
