"""Export of detection objects: COCO with the stored boxes (checked by pycocotools), CSV / JSONL, a finding's boxes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core import collections
from core.__main__ import main
from core.config import Settings
from core.curation.labels import set_labels
from core.curation.tags import add_tags
from core.store import open_store
from tests.actors import ADMIN, user
from tests.object_scenes import HEIGHT, WIDTH, Scenes, seed_scenes

P, SPACE = "scenes", "colours"


@pytest.fixture
def scenes(settings: Settings) -> Scenes:
    return seed_scenes(settings, 12)


def _export(tmp_path: Path, *args: str, name: str = "objects.json") -> tuple[int, Path]:
    out = tmp_path / "out" / name
    return main(["export", "--project", P, "--out", str(out), *args]), out


def _xywh(box: list[float]) -> list[float]:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def test_coco_export_of_tagged_objects_has_the_stored_boxes(tmp_path: Path, settings: Settings, scenes: Scenes,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from pycocotools.coco import COCO

    tagged = scenes.objects[:10]  # the boxes of the first 2-3 scenes, labels and predictions
    store = open_store(settings)
    try:
        add_tags(store, P, tagged, ["fix"], actor=user("test"))
    finally:
        store.close()
    code, out = _export(tmp_path, "--format", "coco", "--objects", "--tag", "fix", "--predictions")
    printed = capsys.readouterr().out
    assert code == 0, printed
    api = COCO(str(out))
    labels = [i for i in tagged if scenes.source[i] == "label"]
    predictions = [i for i in tagged if scenes.source[i] == "prediction"]
    parents = {scenes.parent[i] for i in tagged}
    images = api.loadImgs(api.getImgIds())
    assert {img["embedscope_id"] for img in images} == parents
    assert all((img["width"], img["height"]) == (WIDTH, HEIGHT) for img in images)
    image_of = {img["id"]: img["embedscope_id"] for img in images}
    cats = {c["id"]: c["name"] for c in api.loadCats(api.getCatIds())}
    anns = api.loadAnns(api.getAnnIds())
    assert sorted(a["embedscope_id"] for a in anns) == sorted(labels)
    for ann in anns:
        oid = ann["embedscope_id"]
        assert ann["bbox"] == pytest.approx(_xywh(scenes.box[oid]))
        assert cats[ann["category_id"]] == scenes.cls[oid] and image_of[ann["image_id"]] == scenes.parent[oid]
    # Predictions: a COCO results file beside it, with scores; pycocotools loads it against the instances.
    results_path = out.with_name("objects.results.json")
    found = api.loadRes(str(results_path))
    results = found.loadAnns(found.getAnnIds())
    assert sorted(r["embedscope_id"] for r in results) == sorted(predictions)
    for r in results:
        assert r["bbox"] == pytest.approx(_xywh(scenes.box[r["embedscope_id"]])) and 0 < r["score"] <= 1
    # A collection of images and boxes: --objects exports its boxes only.
    store = open_store(settings)
    try:
        collections.save(store, P, "mixed", [scenes.images[0], *tagged[:3]], space=SPACE, actor=ADMIN)
    finally:
        store.close()
    code, out = _export(tmp_path, "--format", "csv", "--objects", "--collection", "mixed", name="mixed.csv")
    assert code == 0 and list(pd.read_csv(out)["id"]) == tagged[:3]
    # Without --predictions the predictions are left out, and the output says so.
    code, _ = _export(tmp_path, "--format", "coco", "--objects", "--tag", "fix", name="labels.json")
    assert code == 0 and "prediction box(es) left out" in capsys.readouterr().out
    assert not (tmp_path / "out" / "labels.results.json").exists()


def test_csv_and_jsonl_of_corrected_objects(tmp_path: Path, settings: Settings, scenes: Scenes,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fixed = next(i for i in scenes.objects if scenes.source[i] == "label" and scenes.status[i] == "misclassified")
    store = open_store(settings)
    try:
        new = "bike" if scenes.cls[fixed] == "car" else "car"
        set_labels(store, P, [fixed], [new], actor=user("test"), why="manual")
    finally:
        store.close()
    code, out = _export(tmp_path, "--format", "jsonl", "--objects", "--corrected", name="fixed.jsonl")
    assert code == 0, capsys.readouterr().err
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["id"] == fixed and row["label"] == new and row["box"] == scenes.box[fixed]
    # Re-matched on relabel (core.curation.rematch): two classes, so the new one is its prediction's.
    assert row["source"] == "label" and row["match"] == "tp" and row["parent"] == scenes.parent[fixed]
    code, out = _export(tmp_path, "--format", "csv", "--objects", "--corrected", name="fixed.csv")
    frame = pd.read_csv(out)
    assert code == 0 and list(frame["id"]) == [fixed] and {"box", "match", "box_area", "parent"} <= set(frame.columns)
    # Objects are exported as objects only: a Label Studio file of boxes is not offered.
    code, _ = _export(tmp_path, "--format", "labelstudio", "--objects", "--corrected")
    assert code == 1 and "--objects exports as coco, csv, jsonl" in capsys.readouterr().err


def test_a_finding_of_the_object_analysis_exports_its_flagged_boxes(tmp_path: Path, settings: Settings,
                                                                    scenes: Scenes,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from core.pipeline.analyse_objects import findings_frame, run_object_analysis

    code, _ = _export(tmp_path, "--format", "csv", "--finding", "background", name="none.csv")
    assert code == 1 and "analyse --objects" in capsys.readouterr().err  # not analysed yet
    store = open_store(settings)
    try:
        rows = findings_frame(run_object_analysis(store, P, SPACE, actor=ADMIN))
    finally:
        store.close()
    flagged = rows[(rows["finder"] == "background") & rows["flagged"]]
    assert len(flagged)  # the scenes' spurious predictions on plain background
    code, out = _export(tmp_path, "--format", "csv", "--finding", "background", name="background.csv")
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(out)
    assert list(frame["id"]) == list(flagged["id"])  # most likely first
    assert frame["score"].tolist() == pytest.approx(flagged["score"].tolist())
    assert set(frame["source"]) == {"prediction"}
    # As COCO: the boxes are predictions, so they go to the results file without asking.
    code, out = _export(tmp_path, "--format", "coco", "--finding", "background", name="bg.json")
    assert code == 0, capsys.readouterr().err
    results = json.loads(out.with_name("bg.results.json").read_text())
    assert [r["embedscope_id"] for r in results] == list(flagged["id"])
    # A finder that flagged nothing says so instead of writing an empty file.
    if not (rows[rows["finder"] == "mislabel"]["flagged"]).any():
        code, _ = _export(tmp_path, "--format", "csv", "--finding", "mislabeled-boxes", name="m.csv")
        assert code == 1 and "Nothing to export" in capsys.readouterr().err
