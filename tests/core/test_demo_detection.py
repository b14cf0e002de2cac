"""The detection demo: deterministic scenes from bundled photos and digits, planted errors as specified,
COCO files that pycocotools and read_coco load, and an ingest whose match statuses find what was planted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from core.config import load_settings
from core.demo_detection import (
    DETECTION_PROJECT,
    build_scenes,
    detection_folder,
    load_detection_demo,
    read_planted,
    write_demo,
)
from core.demo_detection_boxes import SIZE, iou
from core.demo_detection_scenes import LOOSE_IOU, OBJECTS_PER_SCENE, RATES, TIGHT_IOU, Scene, planted_counts
from core.store.base import VectorStore

# The match status each planted kind must get (core.analysis.box_matching's precedence).
EXPECTED_STATUS = {
    "wrong_class": "misclassified", "wrong_prediction": "misclassified", "missing_box": "spurious",
    "spurious": "spurious", "loose_box": "poor_localisation", "missed": "missed", "duplicate": "duplicate",
}


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return build_scenes(200, seed=0)


def test_layout_is_deterministic_for_a_seed(scenes: list[Scene]) -> None:
    assert build_scenes(200, seed=0) == scenes
    assert build_scenes(200, seed=1) != scenes


def test_boxes_lie_inside_the_scenes(scenes: list[Scene]) -> None:
    for scene in scenes:
        assert OBJECTS_PER_SCENE[0] <= len(scene.objects) <= OBJECTS_PER_SCENE[1]
        for box in [o.box for o in scene.objects] + [a.box for a in scene.labels + scene.predictions]:
            assert 0 <= box[0] < box[2] <= SIZE and 0 <= box[1] < box[3] <= SIZE, (scene.name, box)


def test_planted_counts_follow_the_rates(scenes: list[Scene]) -> None:
    objects = sum(len(s.objects) for s in scenes)
    assert planted_counts(scenes) == {kind: round(rate * objects) for kind, rate in RATES.items()}
    # At most one planted kind per true object, and never on an object that overlaps another.
    kinds: dict[tuple[str, int], list[str]] = {}
    for scene in scenes:
        for a in scene.labels + scene.predictions:
            if a.kind and a.truth is not None:
                kinds.setdefault((scene.name, a.truth), []).append(a.kind)
                assert not scene.objects[a.truth].overlaps
    assert all(len(set(k)) == 1 for k in kinds.values())


def test_planted_boxes_have_their_geometry(scenes: list[Scene]) -> None:
    for scene in scenes:
        truth = [o.box for o in scene.objects]
        for label in scene.labels:
            overlap = iou(label.box, truth[label.truth])  # type: ignore[index]
            assert LOOSE_IOU[0] <= overlap <= LOOSE_IOU[1] if label.kind == "loose_box" else overlap == 1.0
        labelled = {a.truth for a in scene.labels}
        for p in scene.predictions:
            if p.kind == "spurious":
                assert p.truth is None and max(iou(p.box, t) for t in truth) == 0.0
            elif p.kind != "duplicate":
                assert iou(p.box, truth[p.truth]) >= TIGHT_IOU  # type: ignore[index]
            if p.kind == "missing_box":
                assert p.truth not in labelled


def test_files_load_with_pycocotools_and_read_coco(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from core.datasets.detections import read_coco

    files = write_demo(tmp_path / "det", n_scenes=12, seed=0)
    again = write_demo(tmp_path / "det2", n_scenes=12, seed=0)
    for name in ("images/scene-0003.png", "instances.json", "results.json", "planted.json"):
        assert (files.folder / name).read_bytes() == (again.folder / name).read_bytes(), name
    coco = COCO(str(files.instances))
    results = coco.loadRes(str(files.predictions))
    scenes = build_scenes(12, seed=0)
    assert len(coco.getImgIds()) == 12
    assert len(coco.getAnnIds()) == sum(len(s.labels) for s in scenes)
    assert len(results.getAnnIds()) == sum(len(s.predictions) for s in scenes)
    settings = load_settings(data_roots=(tmp_path,))
    det = read_coco(files.instances, files.images, predictions=files.predictions, settings=settings)
    assert det.rejects == []
    assert det.counts() == {"images": 12, "label": len(coco.getAnnIds()), "prediction": len(results.getAnnIds()),
                            "rejects": 0}
    keys = {obj.key for obj in det.objects}
    planted = read_planted(files.folder)
    assert set(planted) <= keys and len(planted) == sum(planted_counts(scenes).values())


def test_demo_ingests_and_the_match_statuses_find_what_was_planted(store: VectorStore) -> None:
    settings = load_settings()
    reports = load_detection_demo(store, settings, with_pretrained=False, n_scenes=24)
    assert [r.status for r in reports] == ["ok"]
    space = reports[0].space
    payloads = store.payloads(DETECTION_PROJECT, space, fields=("key", "kind", "match", "parent"))
    objects = payloads[payloads["kind"] == "object"]
    assert len(objects) == sum(len(s.labels) + len(s.predictions) for s in build_scenes(24, seed=0))
    assert set(objects["parent"]) <= set(payloads.index)
    status = dict(zip(objects["key"], objects["match"], strict=True))
    planted = read_planted(detection_folder(settings))
    assert Counter(planted.values()).keys() == RATES.keys()
    wrong = {key: (kind, status[key]) for key, kind in planted.items() if status[key] != EXPECTED_STATUS[kind]}
    assert not wrong
    # Nothing else fails: a wrong class (either side) or a loose box fails both boxes of its pair.
    counts = Counter(planted.values())
    failing = sum(s != "tp" for s in status.values())
    assert failing == len(planted) + counts["wrong_class"] + counts["wrong_prediction"] + counts["loose_box"]
    again = load_detection_demo(store, settings, with_pretrained=False, n_scenes=24)
    assert again[0].stored == 0 and again[0].skipped == reports[0].stored


def test_cli_demo_detection(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import core.demo_detection
    from core.__main__ import main

    monkeypatch.setattr(core.demo_detection, "N_SCENES", 6)
    assert main(["demo", "--detection", "--no-pretrained", "--progress", "none"]) == 0
    out = capsys.readouterr().out
    assert "demo-detection/scenes [pixels]: 6 images" in out and "'demo-detection'" in out
    planted = json.loads((detection_folder(load_settings()) / "planted.json").read_text())
    assert planted["scenes"] == 6
