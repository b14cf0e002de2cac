"""Read COCO detection files: instances JSON (images, boxes, categories) and a detector's results JSON."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.datasets.detections_base import (
    DetectionSet,
    DetObject,
    box_reject,
    image_file,
    image_item,
    images_root,
    parse_box,
    parse_score,
    read_size,
)
from core.datasets.detections_results import load_json, load_results
from core.datasets.images import shown
from core.datasets.tables import json_safe
from core.errors import BadInputError
from core.ids import readable_key
from core.types import LABEL_SOURCE, PREDICTION_SOURCE, Item, Reject

log = logging.getLogger(__name__)

# Annotation fields that are not object metadata (geometry, ids, or too large for a payload).
_NOT_META = frozenset({"id", "image_id", "category_id", "bbox", "score", "segmentation", "area", "iscrowd",
                       "keypoints", "num_keypoints"})
Raw = dict[str, Any]


@dataclass
class _Images:
    """The images of an instances file: kept ones by COCO id, and the ids of refused ones."""

    kept: dict[Any, tuple[Item, tuple[int, int]]]
    refused: set[Any]


def read_coco(instances: Path, images_dir: Path, *, predictions: Path | None = None,
              settings: Settings) -> DetectionSet:
    """Images, label boxes and (optionally) predicted boxes of a COCO dataset.

    instances: a COCO instances JSON (images with id / file_name / width / height, annotations
    with bbox [x, y, w, h] in pixels, category_id, iscrowd; categories id -> name). predictions:
    a COCO results JSON as detectors write it (a list of {image_id, category_id, bbox, score}),
    joined by image_id and category_id to the instances file, or a COCO file whose annotations
    carry scores (its own image / category ids mapped through file_name / name). Images resolve
    under images_dir (file_name relative to it; no absolute path or '..'), which must lie under
    the data roots.
    Image key: file_name (posix); meta: coco_id, width, height. Label index: rank by annotation
    id among the image's annotations; prediction index: rank in the results file's order.
    Crowd regions (iscrowd=1) are skipped, as COCO's evaluation does (logged; they keep their number).
    Refused (each a named Reject, the image and its other boxes kept): a bad box (not 4 numbers,
    NaN/inf, zero or negative area, more than 1 px outside the image: within 1 px it is clipped),
    an unknown category or image id, a bad score, a duplicate annotation id; a missing /
    unreadable / outside-the-roots image (its boxes go with it).
    BadInputError naming the file when a file is not COCO JSON at all.
    """
    root = images_root(images_dir, settings)
    doc = load_json(instances, dict, "a COCO instances file (a JSON object with images, annotations, categories)")
    categories = _categories(doc, instances)
    labels_by_image = _group(_entries(doc, "annotations", instances, required=False), "image_id")
    results = load_results(predictions, doc) if predictions is not None else []
    preds_by_image = _group(results, "image_id")
    rejects: list[Reject] = []
    images = _images(doc, instances, root, settings, (labels_by_image, preds_by_image), rejects)
    objects: list[DetObject] = []
    crowds = sum(_labels(image_id, anns, images, categories, instances.name, objects, rejects)
                 for image_id, anns in labels_by_image.items())
    for image_id, found in preds_by_image.items():
        if predictions is not None:
            _predictions(image_id, found, images, categories, predictions.name, objects, rejects)
    det = DetectionSet([item for item, _ in images.kept.values()], objects, rejects,
                       {item.key: size for item, size in images.kept.values()}, _category_list(doc, categories))
    log.info("%s: %s; %d crowd regions (iscrowd=1) skipped", shown(instances), det.counts(), crowds)
    return det


def _entries(doc: Raw, name: str, path: Path, *, required: bool = True) -> list[Any]:
    value = doc.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise BadInputError(f"{shown(path)}: {name!r} must be a list (a COCO instances file has images, "
                            "annotations and categories)")
    return value


def _categories(doc: Raw, path: Path) -> dict[Any, str]:
    """{category id: name}; BadInputError naming the entry for one without an id (boxes need them)."""
    found: dict[Any, str] = {}
    for n, entry in enumerate(_entries(doc, "categories", path)):
        if not isinstance(entry, dict) or not _is_id(entry.get("id")):
            raise BadInputError(f"{shown(path)}: categories[{n}] has no integer or string 'id'")
        name = entry.get("name")
        text = str(name).strip() if isinstance(name, (str, int)) and not isinstance(name, bool) else ""
        found[entry["id"]] = readable_key(text or str(entry["id"]))
    return found


def _category_list(doc: Raw, names: dict[Any, str]) -> list[dict[str, Any]]:
    """The categories as the file numbers them ({"id", "name", "supercategory"}), for exports to give back."""
    supers = {entry["id"]: entry.get("supercategory") for entry in doc.get("categories") or []
              if isinstance(entry, dict) and _is_id(entry.get("id"))}
    return [{"id": cid, "name": name, "supercategory": s if isinstance(s := supers.get(cid), str) else ""}
            for cid, name in names.items()]


def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and bool(value))


def _group(entries: list[Any], field: str) -> dict[Any, list[tuple[int, Any]]]:
    """(position, entry) by entry[field]; entries that are not objects or lack the field -> key None."""
    grouped: dict[Any, list[tuple[int, Any]]] = defaultdict(list)
    for n, entry in enumerate(entries):
        key = entry.get(field) if isinstance(entry, dict) else None
        grouped[key if _is_id(key) else None].append((n, entry))
    return grouped


def _images(doc: Raw, path: Path, root: Path, settings: Settings,
            boxes: tuple[dict[Any, list[tuple[int, Any]]], ...], rejects: list[Reject]) -> _Images:
    images = _Images({}, set())
    keys: set[str] = set()
    for n, entry in enumerate(_entries(doc, "images", path)):
        image_id = entry.get("id") if isinstance(entry, dict) else None
        name = entry.get("file_name") if isinstance(entry, dict) else None
        where = f"{path.name}: images[{n}]"
        if not _is_id(image_id) or not isinstance(name, str) or not name.strip():
            rejects.append(Reject(Item(key=f"images[{n}]"), f"{where}: needs an 'id' and a 'file_name'"))
            continue
        key = readable_key(name.replace("\\", "/"))
        problem = ("duplicate image id" if image_id in images.kept or image_id in images.refused else
                   "duplicate file_name" if key in keys else None)
        try:
            if problem:
                raise BadInputError(f"{problem} (id {image_id!r}, file_name {shown(key)!r})")
            file = image_file(root, name, settings)
            size = read_size(file, (entry.get("width"), entry.get("height")), settings)
        except BadInputError as e:
            dropped = sum(len(group.get(image_id, ())) for group in boxes) if not problem else 0
            tail = f"; its {dropped} box{'es are' if dropped != 1 else ' is'} not kept" if dropped else ""
            rejects.append(Reject(Item(key=key), f"{where} (id {image_id!r}): {e}{tail}"))
            if not problem:
                images.refused.add(image_id)
            continue
        keys.add(key)
        images.kept[image_id] = (image_item(file, key, {"coco_id": image_id, "width": size[0], "height": size[1]}),
                                 size)
    return images


def _labels(image_id: Any, anns: list[tuple[int, Any]], images: _Images, categories: dict[Any, str],
            file: str, objects: list[DetObject], rejects: list[Reject]) -> int:
    """The label boxes of one image, numbered by annotation id (then position: ids may be absent).
    Returns how many crowd regions were skipped."""
    if image_id in images.refused:
        return 0  # counted in the image's own reject
    order = sorted(anns, key=lambda pa: (0, pa[1]["id"], pa[0]) if _has_int_id(pa[1]) else (1, 0, pa[0]))
    seen: set[Any] = set()
    crowds = 0
    for index, (n, ann) in enumerate(order):
        ref = f"annotation-{ann['id']}" if isinstance(ann, dict) and _is_id(ann.get("id")) else f"annotations[{n}]"
        where = f"{file}: annotation {ann['id']!r}" if ref.startswith("annotation-") else f"{file}: annotations[{n}]"
        ann_id = ann.get("id") if isinstance(ann, dict) else None
        problem = _image_problem(image_id, images, "image_id")
        if problem is None and ann_id is not None and ann_id in seen:
            problem = "field 'id': duplicate annotation id"
        seen.add(ann_id)
        if problem is None and ann.get("iscrowd") in (1, True):
            crowds += 1  # COCO's evaluation ignores crowd regions: not one object, and no error either
            continue
        image = images.kept[image_id][0] if image_id in images.kept else f"image-id-{image_id}"
        obj = problem or _object(ann, image_id, images, categories, LABEL_SOURCE, index, None)
        if isinstance(obj, str):
            rejects.append(box_reject(image, LABEL_SOURCE, ref, f"{where} ({_name(image)}), {obj}"))
        else:
            objects.append(obj)
    return crowds


def _predictions(image_id: Any, found: list[tuple[int, Any]], images: _Images, categories: dict[Any, str],
                 file: str, objects: list[DetObject], rejects: list[Reject]) -> None:
    """The predicted boxes of one image, numbered in the results file's order."""
    if image_id in images.refused:
        return
    for index, (n, result) in enumerate(found):
        problem = _image_problem(image_id, images, "image_id")
        score: float | None | str = None
        if problem is None:
            score = parse_score(result.get("score"))
            problem = f"field 'score': {score}" if isinstance(score, str) else None
        image = images.kept[image_id][0] if image_id in images.kept else f"image-id-{image_id}"
        obj = problem or _object(result, image_id, images, categories, PREDICTION_SOURCE, index,
                                 score if isinstance(score, float) else None)
        if isinstance(obj, str):
            reason = f"{file}: result [{n}] ({_name(image)}), {obj}"
            rejects.append(box_reject(image, PREDICTION_SOURCE, f"result-{n}", reason))
        else:
            objects.append(obj)


def _has_int_id(ann: Any) -> bool:
    return isinstance(ann, dict) and isinstance(ann.get("id"), int) and not isinstance(ann.get("id"), bool)


def _name(image: Item | str) -> str:
    """How a reason names the image: "image 'a.jpg'", or "image-id-99" for an id the file lacks."""
    return f"image {image.key!r}" if isinstance(image, Item) else image


def _image_problem(image_id: Any, images: _Images, field: str) -> str | None:
    if image_id is None:
        return f"field {field!r}: missing or not an integer / string id"
    if image_id not in images.kept:
        return f"field {field!r}: unknown image id {image_id!r} (not in the instances file's images)"
    return None


def _object(entry: Raw, image_id: Any, images: _Images, categories: dict[Any, str], source: str, index: int,
            score: float | None) -> DetObject | str:
    """The DetObject of one annotation / result, or the reason ("field 'x': ...") it is refused."""
    item, size = images.kept[image_id]
    category = entry.get("category_id")
    if not _is_id(category) or category not in categories:
        return f"field 'category_id': unknown category id {category!r}"
    box = parse_box(entry.get("bbox"), "xywh", size)
    if isinstance(box, str):
        return f"field 'bbox': {box}"
    meta = {str(k): json_safe(v) for k, v in entry.items() if k not in _NOT_META}
    if source == LABEL_SOURCE and "id" in entry:
        meta["annotation_id"] = json_safe(entry["id"])
    return DetObject(item.key, source, index, box, categories[category], score, meta)
