"""Read a box manifest (JSONL / Parquet / CSV, one row per image with lists of boxes) into a DetectionSet.

Row layout (README "Detection datasets"): the image column (path, image, uri, ... as for any
manifest), optional id / split / width / height columns, and up to three box lists:
  labels: [{"box": [...], "class": "car", "meta": {...}}, ...]        (ground truth)
  predictions: [{"box": [...], "class": "car", "score": 0.91}, ...]   (a detector's output)
  boxes: [{"box": [...], "class": "car", "source": "prediction", "score": 0.9}, ...]
         (one list for both: "source" is "label" (the default) or "prediction")
A box entry: "box" (or "bbox"), 4 numbers in pixels in box_format ("xywh": [x, y, w, h],
"xyxy": [x1, y1, x2, y2]); "class" (or "label" / "category"); optional "score" (or
"confidence"); optional "meta" (an object); any other key also goes to the object's meta.
A list may also be a JSON string (CSV cells). Every other column is image metadata.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from core.config import Settings
from core.datasets.detections_base import (
    DetectionSet,
    DetObject,
    box_reject,
    check_box_format,
    parse_box,
    parse_score,
    read_size,
)
from core.datasets.images import check_allowed, shown
from core.datasets.manifest import from_manifest
from core.datasets.tables import find_name, json_safe
from core.errors import BadInputError
from core.ids import readable_key
from core.types import LABEL_SOURCE, OBJECT_SOURCES, PREDICTION_SOURCE, Item, Reject

log = logging.getLogger(__name__)

# Box-list columns and the source their boxes have (None: each box says, default "label").
BOX_COLUMNS: dict[str, str | None] = {"labels": LABEL_SOURCE, "predictions": PREDICTION_SOURCE, "boxes": None}
SIZE_COLUMNS: tuple[str, str] = ("width", "height")
_BOX_KEYS: tuple[str, ...] = ("box", "bbox")
_CLASS_KEYS: tuple[str, ...] = ("class", "label", "category")
_SCORE_KEYS: tuple[str, ...] = ("score", "confidence")


def read_box_manifest(path: Path, images_dir: Path | None, *, box_format: str, settings: Settings) -> DetectionSet:
    """Images and their label / prediction boxes from a manifest with one row per image (layout
    in this module's docstring). Relative image paths resolve against images_dir (default: the
    manifest's folder), which must lie under the data roots; every image is checked again
    (under the roots, a readable file). Image key: the id column, else the path as written.
    Index: position in the image's labels (then "boxes" labels), predictions likewise; rejected
    boxes keep their number. Refused, each a named Reject (the image and its other boxes kept):
    a bad box (not 4 numbers, NaN/inf, zero or negative area, more than 1 px outside the image;
    within 1 px it is clipped), a missing class, a bad score or source, a list that is not a list
    of objects; a missing / unreadable image (its boxes go with it). BadInputError (naming file,
    line, column) for a file that is not a manifest, with no image column or duplicate ids.
    """
    fmt = check_box_format(box_format)
    try:
        items = from_manifest(path, settings, base_dir=images_dir)
    except BadInputError as e:
        if "duplicate id" not in str(e):
            raise
        raise BadInputError(f"{e}. A box manifest has ONE row per image, its boxes in the list columns "
                            f"{', '.join(BOX_COLUMNS)}") from e
    if not any(item.uri for item in items):
        raise BadInputError(f"{shown(path)}: a box manifest needs an image column (path, image, uri, ...)")
    det = DetectionSet([], [], [])
    for item in items:
        _row(item, Path(path).name, fmt, settings, det)
    log.info("%s: %s", shown(path), det.counts())
    return det


def _row(item: Item, file: str, fmt: str, settings: Settings, det: DetectionSet) -> None:
    """One manifest row: the image (or its reject) and its boxes."""
    meta = dict(item.meta)
    lists = {name: meta.pop(column) for name in BOX_COLUMNS
             if (column := find_name(list(meta), (name,))) is not None}
    width, height = (meta.pop(column) if (column := find_name(list(meta), (name,))) else None
                     for name in SIZE_COLUMNS)
    where = f"{file}: image {item.key!r}"
    try:
        file_path = check_allowed(item.uri or "", settings)
        size = read_size(file_path, (width, height), settings)
    except BadInputError as e:
        count = sum(len(v) for v in lists.values() if isinstance(v, list))
        tail = f"; its {count} box{'es are' if count != 1 else ' is'} not kept" if count else ""
        det.rejects.append(Reject(item, f"{where}: {e}{tail}"))
        return
    meta.update(width=size[0], height=size[1])
    image = Item(key=item.key, uri=item.uri, label=item.label, prediction=item.prediction,
                 confidence=item.confidence, split=item.split, meta=meta)
    det.images.append(image)
    det.sizes[image.key] = size
    counters = dict.fromkeys(OBJECT_SOURCES, 0)
    for column, source in BOX_COLUMNS.items():
        entries = _entries(lists.get(column))
        if isinstance(entries, str):
            det.rejects.append(box_reject(image, source or LABEL_SOURCE, column, f"{where}, field {column!r}: {entries}"))
            continue
        for n, entry in enumerate(entries):
            ref, at = f"{column}-{n}", f"{where}, {column}[{n}]"
            obj_source = source or _own_source(entry)
            if obj_source not in OBJECT_SOURCES:  # no source: it takes no number in either list
                det.rejects.append(box_reject(image, LABEL_SOURCE, ref, f"{at}, {obj_source}"))
                continue
            index = counters[obj_source]
            counters[obj_source] += 1
            obj = _build(entry, image.key, obj_source, index, fmt, size)
            if isinstance(obj, str):
                det.rejects.append(box_reject(image, obj_source, ref, f"{at}, {obj}"))
            else:
                det.objects.append(obj)


def _entries(value: Any) -> list[Any] | str:
    """The box list of a cell ([] when missing), or why it is not one."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return f"not a list of boxes (a string that is not JSON: {value[:40]!r})"
    if not isinstance(value, list):
        return f"not a list of boxes ({type(value).__name__})"
    return value


def _own_source(entry: Any) -> str:
    """The "source" of an entry of the mixed "boxes" list ("label" when absent), or why it has none."""
    own = entry.get("source", LABEL_SOURCE) if isinstance(entry, dict) else LABEL_SOURCE
    if own is None:  # Parquet fills a struct field some entries lack with null
        return LABEL_SOURCE
    return own if own in OBJECT_SOURCES else f"field 'source': {own!r} is not one of {', '.join(OBJECT_SOURCES)}"


def _build(entry: Any, key: str, source: str, index: int, fmt: str, size: tuple[int, int]) -> DetObject | str:
    """The DetObject of one box entry, or the reason ("field 'x': ...") it is refused."""
    if not isinstance(entry, dict):
        return f"not a box object ({type(entry).__name__}); expected {{\"box\": [...], \"class\": ...}}"
    box_key = find_name(list(entry), _BOX_KEYS) or "box"
    box = parse_box(entry.get(box_key), check_box_format(fmt), size)
    if isinstance(box, str):
        return f"field {box_key!r}: {box}"
    class_key = find_name(list(entry), _CLASS_KEYS) or "class"
    cls = entry.get(class_key)
    if isinstance(cls, bool) or not isinstance(cls, (str, int)) or not str(cls).strip():
        return f"field {class_key!r}: missing or empty class ({cls!r})"
    score_key = find_name(list(entry), _SCORE_KEYS) or "score"
    score = parse_score(entry.get(score_key))
    if isinstance(score, str):
        return f"field {score_key!r}: {score}"
    used = {box_key, class_key, score_key, "source", "meta"}
    meta = {str(k): json_safe(v) for k, v in entry.items() if k not in used}
    if isinstance(entry.get("meta"), dict):
        meta.update({str(k): json_safe(v) for k, v in entry["meta"].items()})
    return DetObject(key, source, index, box, readable_key(str(cls).strip()), score, meta)
