"""A small detection store for UI tests: real PNG scenes with coloured boxes, their image points and
object points with the issue-12 payload (kind "object", parent, box, source, match, iou, box_area)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.config import Settings
from core.ids import object_id, point_id
from core.linalg import l2_normalise
from core.types import SpaceInfo

PROJECT, SPACE, DATASET = "scenes", "colours", "street"
WIDTH, HEIGHT = 96, 72
SIDE = 8  # vectors: the SIDE x SIDE RGB picture of an image or a crop, L2-normalised
CLASSES = {"car": (220, 40, 40), "bike": (40, 60, 220)}


@dataclass
class Scenes:
    """What seed_scenes wrote: ids of the images and objects, each object's status / box / class."""

    project: str = PROJECT
    space: str = SPACE
    dataset: str = DATASET
    images: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    box: dict[str, list[float]] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    cls: dict[str, str] = field(default_factory=dict)


def _vector(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize((SIDE, SIDE)), dtype=np.float32).ravel() + 1.0


def _scene(i: int) -> tuple[Image.Image, list[tuple[str, int, list[float], str, str, float | None]]]:
    """Image i and its boxes: (source, index, box, class, status, score). Two labels, two predictions:
    a true positive pair; then a missed label + a spurious prediction (even i) or a misclassified pair."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (120 + 10 * i, 150, 110))
    draw = ImageDraw.Draw(image)
    c0, c1 = ("car", "bike") if i % 2 == 0 else ("bike", "car")
    a = [8.0 + i, 8.0, 40.0 + i, 36.0]
    b = [52.0, 30.0, 88.0, 66.0 - i]
    draw.rectangle(a, fill=CLASSES[c0])
    draw.rectangle(b, fill=CLASSES[c1])
    boxes: list[tuple[str, int, list[float], str, str, float | None]] = [
        ("label", 0, a, c0, "tp", None), ("prediction", 0, [a[0] + 1, a[1] + 1, a[2], a[3]], c0, "tp", 0.9)]
    if i % 2 == 0:
        boxes += [("label", 1, b, c1, "missed", None),
                  ("prediction", 1, [30.0, 40.0, 46.0, 60.0], c0, "spurious", 0.35)]
    else:
        boxes += [("label", 1, b, c1, "misclassified", None), ("prediction", 1, b, c0, "misclassified", 0.6)]
    return image, boxes


def seed_scenes(settings: Settings, n_images: int = 8, *, object_space: str | None = None) -> Scenes:
    """Write n_images scenes under the demo root (thumbnails and crops are served from there) and
    their points into the store of `settings` (closed again before returning). object_space: the
    objects go to a space of their own (as ROI object vectors go to "<space>-roi"), the images stay."""
    from core.store import open_store

    scenes = Scenes()
    folder = settings.demo_dir / PROJECT / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    ids, vectors, payloads = [], [], []
    for i in range(n_images):
        image, boxes = _scene(i)
        key = f"scene_{i:02d}.png"
        path: Path = folder / key
        image.save(path)
        parent = point_id(PROJECT, DATASET, key)
        scenes.images.append(parent)
        ids.append(parent)
        vectors.append(_vector(image))
        payloads.append({"dataset": DATASET, "key": key, "uri": str(path), "text": None, "label": None,
                         "prediction": None, "confidence": None, "split": None, "meta": {}, "kind": "item"})
        for source, index, box, cls, status, score in boxes:
            oid = object_id(PROJECT, DATASET, key, source, index)
            is_label = source == "label"
            ids.append(oid)
            vectors.append(_vector(image.crop(tuple(int(v) for v in box))))
            payloads.append({
                "dataset": DATASET, "key": f"{key}#{source}/{index}", "uri": str(path), "text": None,
                "kind": "object", "parent": parent, "box": box, "source": source,
                "label": cls if is_label else None, "prediction": None if is_label else cls,
                "confidence": score, "split": None, "match": status, "iou": 0.9 if status == "tp" else None,
                "match_id": None, "box_area": (box[2] - box[0]) * (box[3] - box[1]), "meta": {"scene": i}})
            scenes.objects.append(oid)
            scenes.status[oid], scenes.parent[oid], scenes.box[oid] = status, parent, box
            scenes.source[oid], scenes.cls[oid] = source, cls
    store = open_store(settings)
    try:
        store.ensure_space(PROJECT, SpaceInfo(SPACE, SIDE * SIDE * 3, "vector", description="tiny RGB (test)"))
        unit = l2_normalise(np.stack(vectors).astype(np.float32))
        is_object = np.array([p["kind"] == "object" for p in payloads])
        target = object_space or SPACE
        if object_space is not None:
            store.ensure_space(PROJECT, SpaceInfo(object_space, SIDE * SIDE * 3, "vector", description="objects"))
        for where, rows in ((SPACE, ~is_object), (target, is_object)):
            store.upsert(PROJECT, where, [i for i, r in zip(ids, rows, strict=True) if r], unit[rows],
                         [p for p, r in zip(payloads, rows, strict=True) if r])
    finally:
        store.close()
    return scenes
