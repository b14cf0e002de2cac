"""Detection ingest with a real tiny CLIP and real stores: image + object points, matching, resume, rejects, CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core import thumbnails
from core.analysis.box_matching import MATCH_STATUSES
from core.config import Settings
from core.datasets.detections import Box, DetectionSet, DetObject, read_coco
from core.datasets.images import load_image
from core.embedders.objects import embed_image_objects
from core.filters import Condition, Filter
from core.ids import object_id, point_id
from core.pipeline.objects_ingest import ingest_detections
from core.store.base import VectorStore
from core.types import ITEM_KIND, OBJECT_KIND, Item
from tests.actors import ADMIN
from tests.core.test_cli import run_cli
from tests.core.test_ingest import CountingEmbedder

SIZE = 64
CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
# Per image: label boxes (annotation id, class id, [x, y, w, h]) and predictions (class id, [x, y, w, h], score).
LABELS: dict[str, list[tuple[int, int, list[float]]]] = {
    "a.png": [(1, 1, [4, 4, 20, 20])],
    "b.png": [(2, 2, [10, 10, 30, 30]), (3, 1, [40, 0, 20, 20])],
    "c.png": [(4, 1, [0, 0, 32, 32]), (5, 2, [32, 32, 30, 30])],
    "d.png": [(6, 1, [8, 8, 16, 16]), (7, 1, [5, 5, 0, 10]), (8, 2, [100, 100, 10, 10])],  # 7, 8: bad boxes
}
PREDICTIONS: dict[str, list[tuple[int, list[float], float]]] = {
    "a.png": [(1, [4, 4, 20, 20], 0.9), (2, [40, 40, 16, 16], 0.8)],
    "b.png": [(1, [10, 10, 30, 30], 0.7)],
    "c.png": [(1, [0, 0, 32, 32], 0.95), (1, [1, 1, 32, 32], 0.6), (2, [40, 40, 24, 24], 0.5)],
}
# The statuses counted by hand (box_matching's rules): a: tp pair + a spurious prediction; b: a
# misclassified pair + a missed cat; c: a tp pair, a duplicate prediction, a poorly localised dog pair
# (IoU 484 / 992 = 0.49); d: a missed cat (its two bad boxes are rejected by the reader).
EXPECTED = {"tp": 4, "misclassified": 2, "poor_localisation": 2, "spurious": 1, "missed": 2, "duplicate": 1}
N_LABELS, N_PREDICTIONS = 6, 6


def write_coco(root: Path) -> tuple[Path, Path, Path]:
    """Four 64 px PNGs (distinct noise) + instances and results JSON; returns (instances, results, images dir)."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations, results = [], [], []
    for image_id, name in enumerate(sorted(LABELS), start=1):
        pixels = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images_dir / name)
        images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
        annotations += [{"id": ann, "image_id": image_id, "category_id": cat, "bbox": bbox, "iscrowd": 0,
                         "area": bbox[2] * bbox[3]} for ann, cat, bbox in LABELS[name]]
        results += [{"image_id": image_id, "category_id": cat, "bbox": bbox, "score": score}
                    for cat, bbox, score in PREDICTIONS.get(name, [])]
    instances, predictions = root / "instances.json", root / "results.json"
    instances.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    predictions.write_text(json.dumps(results))
    return instances, predictions, images_dir


@pytest.fixture
def coco(settings: Settings, tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_coco(tmp_path / "data" / "coco")


def _objects(store: VectorStore, space: str) -> Any:
    return store.payloads("p", space, Filter(must=(Condition("kind", equals=OBJECT_KIND),)))


def test_coco_ingest_stores_every_box_with_its_parent_and_match(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, coco: tuple[Path, Path, Path]) -> None:
    instances, results, images_dir = coco
    det = read_coco(instances, images_dir, predictions=results, settings=settings)
    seen: list[tuple[int, int]] = []
    report = ingest_detections(store, "p", "val", det, clip, settings=settings, batch_size=2,
                               progress=lambda done, total: seen.append((done, total)), actor=ADMIN)

    space = clip.name
    assert (report.images, report.labels, report.predictions) == (4, N_LABELS, N_PREDICTIONS)
    assert report.statuses == EXPECTED and report.stored == 4 + N_LABELS + N_PREDICTIONS
    assert report.status == "partial" and {r.key.split("#")[0] for r in report.rejects} == {"d.png"}
    assert len(report.rejects) == 2 and report.rejects_path is not None
    assert seen[0] == (0, 4) and seen[-1] == (4, 4) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert store.count("p", space) == 4 + N_LABELS + N_PREDICTIONS
    images = store.payloads("p", space, Filter(must=(Condition("kind", equals=ITEM_KIND),)))
    assert sorted(images["key"]) == sorted(LABELS)  # d.png kept despite its bad boxes
    objects = _objects(store, space)
    assert Counter(objects["match"]) == Counter({k: v for k, v in EXPECTED.items() if v})
    by_key = {row["key"]: (pid, row) for pid, row in objects.iterrows()}
    for pid, row in by_key.values():
        image_key, rest = row["key"].split("#")
        source, index = rest.split("/")
        assert pid == object_id("p", "val", image_key, source, int(index))
        assert row["parent"] == point_id("p", "val", image_key) and row["source"] == source
        assert row["uri"] == images.loc[row["parent"], "uri"]
        x0, y0, x1, y1 = row["box"]
        assert row["box_area"] == pytest.approx((x1 - x0) * (y1 - y0)) and row["box_area"] > 0
        if source == "label":
            assert row["label"] in {"cat", "dog"} and pd.isna(row["prediction"]) and pd.isna(row["confidence"])
        else:
            assert pd.isna(row["label"]) and row["prediction"] in {"cat", "dog"} and 0 < row["confidence"] <= 1
        if isinstance(row["match_id"], str):  # the partner is a stored box of the other source, same image
            partner = objects.loc[row["match_id"]]
            assert partner["parent"] == row["parent"] and partner["source"] != source
        assert row["match"] in MATCH_STATUSES
    # The hand-made cases, box by box.
    assert by_key["a.png#prediction/1"][1]["match"] == "spurious"
    tp_label_id, tp_label = by_key["a.png#label/0"]
    assert tp_label["match"] == "tp" and tp_label["iou"] == pytest.approx(1.0)
    assert by_key["a.png#prediction/0"][1]["match_id"] == tp_label_id
    assert by_key["c.png#label/1"][1]["iou"] == pytest.approx(484 / 992)
    assert by_key["c.png#prediction/1"][1]["match"] == "duplicate"
    # A crop thumbnail per object, keyed by its point id, is what the map reads.
    for pid, row in by_key.values():
        data = thumbnails.object_thumbnail(settings, pid, None, None)
        assert data is not None, row["key"]
    # Object vectors are embed_image_objects' crop vectors (the model's vectors of the crops), in the image space.
    c_boxes = [obj for obj in det.objects if obj.image_key == "c.png"]
    ids, vectors = store.vectors("p", space, [by_key[obj.key][0] for obj in c_boxes])
    expected = embed_image_objects(clip.inner, load_image(images.set_index("key").loc["c.png", "uri"], settings),
                                   [obj.box for obj in c_boxes], mode="crop", margin=0.1)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_an_interrupted_object_ingest_resumes_and_stores_nothing_twice(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, coco: tuple[Path, Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    instances, results, images_dir = coco
    det = read_coco(instances, images_dir, predictions=results, settings=settings)
    real = clip.embed_preprocessed
    calls: list[int] = []  # rows per model call: an image point, then that image's crops (batch_size=1)

    def embed(batch: np.ndarray, progress: Any = None) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 6:
            raise KeyboardInterrupt  # c.png's crops: after its image point was stored
        return real(batch)

    monkeypatch.setattr(clip, "embed_preprocessed", embed)
    with pytest.raises(KeyboardInterrupt):
        ingest_detections(store, "p", "val", det, clip, settings=settings, batch_size=1, actor=ADMIN)
    boxes = {name: len(LABELS[name]) - (2 if name == "d.png" else 0) + len(PREDICTIONS.get(name, []))
             for name in LABELS}
    assert calls == [1, boxes["a.png"], 1, boxes["b.png"], 1, boxes["c.png"]]
    stored_before = store.count("p", clip.name)
    assert stored_before == 3 + boxes["a.png"] + boxes["b.png"]  # a, b whole; c's image point only

    calls.clear()
    report = ingest_detections(store, "p", "val", det, clip, settings=settings, batch_size=1, actor=ADMIN)
    # Only what is missing reaches the model: c's crops, then d's image and its crop.
    assert calls == [boxes["c.png"], 1, boxes["d.png"]]
    assert (report.skipped, report.stored) == (stored_before, sum(calls))
    assert store.count("p", clip.name) == 4 + N_LABELS + N_PREDICTIONS
    assert report.statuses == EXPECTED  # counted over every stored box, before and now

    calls.clear()
    again = ingest_detections(store, "p", "val", det, clip, settings=settings, actor=ADMIN)
    assert calls == [] and again.stored == 0 and store.count("p", clip.name) == 4 + N_LABELS + N_PREDICTIONS


def test_a_box_outside_its_image_is_rejected_by_name_and_the_image_kept(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    Image.fromarray(np.full((SIZE, SIZE, 3), 90, dtype=np.uint8)).save(folder / "x.png")
    image = Item(key="x.png", uri=str(folder / "x.png"))
    good, outside = Box(2, 2, 30, 30), Box(200, 200, 240, 240)  # e.g. a reader that trusted a wrong size
    det = DetectionSet([image, Item(key="gone.png", uri=str(folder / "gone.png"))], [
        DetObject("x.png", "label", 0, good, "cat"), DetObject("x.png", "label", 1, outside, "cat"),
        DetObject("x.png", "prediction", 0, good, "cat", 0.9), DetObject("gone.png", "label", 0, good, "dog"),
    ], [])
    report = ingest_detections(store, "p", "d", det, clip, settings=settings, actor=ADMIN)
    reasons = {r.key: r.reason for r in report.rejects}
    assert set(reasons) == {"x.png#label/1", "gone.png", "gone.png#label/0"}
    assert "cannot be cropped" in reasons["x.png#label/1"] and "file not found" in reasons["gone.png#label/0"]
    assert (report.images, report.labels, report.predictions, report.status) == (2, 1, 1, "partial")
    assert sorted(store.payloads("p", clip.name)["key"]) == ["x.png", "x.png#label/0", "x.png#prediction/0"]
    assert report.statuses["tp"] == 2 and report.statuses["missed"] == 0


def test_cli_ingests_a_coco_set_with_predictions(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_clip_dir: Path) -> None:
    instances, results, images_dir = write_coco(tmp_path / "coco")
    bad = json.loads(instances.read_text())
    bad["annotations"] = [a for a in bad["annotations"] if a["id"] not in (7, 8)]
    instances.write_text(json.dumps(bad))  # a clean set: exit 0
    code, out, err = run_cli(capsys, "ingest", "--coco", instances, "--predictions", results, "--images", images_dir,
                             "--project", "shop", "--dataset", "val", "--model", tiny_clip_dir,
                             "--progress", "none")
    assert code == 0, err
    (line,) = out.strip().splitlines()
    assert f"4 images, {N_LABELS + N_PREDICTIONS} objects ({N_LABELS} labels / {N_PREDICTIONS} predictions)" in line
    assert all(f"{status} {n}" in line for status, n in EXPECTED.items()) and "0 rejected (ok)" in line
    code, _, err = run_cli(capsys, "ingest", "--coco", instances, "--project", "shop", "--dataset", "val")
    assert code == 2 and "--images" in err
    code, _, err = run_cli(capsys, "ingest", "--predictions", results, "--images", images_dir,
                           "--project", "shop", "--dataset", "val")
    assert code == 2 and "--predictions goes with --coco" in err


def test_roi_objects_go_to_their_own_space_next_to_the_image_points(
        store: VectorStore, settings: Settings, tiny_clip_dir: Path, coco: tuple[Path, Path, Path]) -> None:
    from core.embedders import load_embedder
    from core.embedders.objects import object_space_info

    instances, results, images_dir = coco
    det = read_coco(instances, images_dir, predictions=results, settings=settings)
    embedder = load_embedder(str(tiny_clip_dir), "image", batch_size=8)
    report = ingest_detections(store, "p", "val", det, embedder, mode="roi", settings=settings, actor=ADMIN)
    roi = object_space_info(embedder, "roi").name
    assert report.object_space == roi != report.space and f"objects {roi}" in report.summary()
    assert store.count("p", report.space) == 4 and store.count("p", roi) == N_LABELS + N_PREDICTIONS
    parents = set(_objects(store, roi)["parent"])
    assert parents == set(store.payloads("p", report.space).index)  # each image holds boxes
    assert report.statuses == EXPECTED


def test_cli_ingests_a_box_manifest_in_xyxy(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            tiny_clip_dir: Path) -> None:
    _, _, images_dir = write_coco(tmp_path / "shop")
    rows = [{"image": "a.png", "labels": [{"box": [4, 4, 24, 24], "class": "cat"}],
             "predictions": [{"box": [4, 4, 24, 24], "class": "cat", "score": 0.9},
                             {"box": [40, 40, 56, 56], "class": "dog", "score": 0.3}]},
            {"image": "b.png", "labels": [{"box": [10, 10, 40, 40], "class": "dog"},
                                          {"box": [30, 30, 10, 50], "class": "dog"}]}]  # x2 < x1: rejected
    manifest = tmp_path / "shop" / "boxes.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, err = run_cli(capsys, "ingest", "--boxes", manifest, "--images", images_dir, "--box-format", "xyxy",
                             "--project", "shop", "--dataset", "prod", "--model", tiny_clip_dir, "--progress", "none")
    assert code == 3, err  # partial: one bad box, named
    assert "2 images, 4 objects (2 labels / 2 predictions)" in out and "tp 2" in out and "missed 1" in out
    assert "spurious 1" in out and "rejected b.png#label" in out


def write_yolo(root: Path) -> Path:
    """A YOLO dataset (Ultralytics layout: images/ + labels/ + data.yaml) and a predictions folder root/preds:
    a: a tp pair + a spurious dog; b: a misclassified pair + a label line with an unknown class id (line 2)."""
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(root / "images" / f"{name}.png")
    (root / "data.yaml").write_text("names:\n  0: cat\n  1: dog\n")
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("0 0.25 0.25 0.25 0.25\n")
    (root / "labels" / "b.txt").write_text("1 0.5 0.5 0.5 0.5\n7 0.5 0.5 0.1 0.1\n")  # line 2: unknown class
    (root / "preds").mkdir()
    (root / "preds" / "a.txt").write_text("0 0.25 0.25 0.25 0.25 0.9\n1 0.8 0.8 0.2 0.2 0.4\n")
    (root / "preds" / "b.txt").write_text("0 0.5 0.5 0.5 0.5 0.7\n")
    return root


def test_cli_ingests_a_yolo_folder_with_predictions(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    tiny_clip_dir: Path) -> None:
    from core.config import load_settings
    from core.store import open_store

    root = write_yolo(tmp_path / "yolo")
    code, out, err = run_cli(capsys, "ingest", "--yolo", root, "--predictions", root / "preds", "--project", "y",
                             "--dataset", "val", "--model", tiny_clip_dir, "--progress", "none")
    assert code == 3, err  # partial: the bad line is named
    assert "2 images, 5 objects (2 labels / 3 predictions)" in out
    assert "tp 2" in out and "misclassified 2" in out and "spurious 1" in out
    assert "rejected b.png#label/line-2: b.txt: line 2" in out and "unknown class id 7" in out
    store = open_store(load_settings())
    try:
        (space,) = store.list_spaces("y")
        payloads = store.payloads("y", space.name)
    finally:
        store.close()
    objects = payloads[payloads["kind"] == OBJECT_KIND]
    assert sorted(objects["key"]) == ["a.png#label/0", "a.png#prediction/0", "a.png#prediction/1",
                                      "b.png#label/0", "b.png#prediction/0"]
    images = {point_id("y", "val", key) for key in ("a.png", "b.png")}
    assert set(payloads[payloads["kind"] == ITEM_KIND].index) == images and set(objects["parent"]) == images
    status = dict(zip(objects["key"], objects["match"], strict=True))
    assert status["a.png#label/0"] == status["a.png#prediction/0"] == "tp"
    assert status["b.png#label/0"] == status["b.png#prediction/0"] == "misclassified"
    assert status["a.png#prediction/1"] == "spurious"
    labelled = objects.set_index("key")
    assert labelled.loc["b.png#label/0", "label"] == "dog" and labelled.loc["b.png#prediction/0", "prediction"] == "cat"
    code, _, err = run_cli(capsys, "ingest", "--yolo", root, "--images", root / "images", "--project", "y",
                           "--dataset", "val")
    assert code == 2 and "--yolo does not go with --images" in err
