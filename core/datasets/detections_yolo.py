"""Read a YOLO txt dataset (images folder, one .txt of normalised boxes per image, classes.txt) into a DetectionSet."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from core.config import Settings
from core.datasets.detections_base import DetectionSet, DetObject, box_reject, images_root, parse_box
from core.datasets.folder import from_image_folder
from core.datasets.images import image_size, shown
from core.datasets.tables import check_utf8
from core.errors import BadInputError
from core.ids import readable_key
from core.types import LABEL_SOURCE, PREDICTION_SOURCE, Item, Reject

log = logging.getLogger(__name__)

CLASSES_FILE = "classes.txt"
# Where the class names are looked for, in this order (in labels_dir, its parent, images_dir's parent).
CLASS_FILES: tuple[str, ...] = (CLASSES_FILE, "data.yaml", "dataset.yaml")


def read_yolo(images_dir: Path, *, labels_dir: Path | None = None, predictions_dir: Path | None = None,
              classes: Path | Sequence[str] | None = None, settings: Settings) -> DetectionSet:
    """Images under images_dir (recursive) with boxes from YOLO txt files.

    A txt file per image, same relative path with .txt, under labels_dir (default: images_dir with
    its last "images" folder named "labels", as Ultralytics lays datasets out, else images_dir
    itself): one box per line, "class cx cy w h", normalised to the image size (0..1).
    predictions_dir: the same layout for a detector's output, "class cx cy w h score" per line.
    classes: a classes.txt (one name per line, line n = class id n), an Ultralytics data.yaml
    (its `names`) or the names; default: the first of CLASS_FILES in labels_dir, its parent or
    images_dir's parent. Index: the line's position in
    its file. Refused, each a named Reject naming the txt file, line and field: a malformed line,
    an unknown class id, a bad box (as for COCO: 1 px tolerance, then clipped) or score, a txt
    file with no image; an unreadable image (its boxes go with it).
    """
    root = images_root(images_dir, settings)
    labels_root = Path(labels_dir).expanduser().resolve() if labels_dir is not None else _labels_folder(root)
    names = _class_names(classes, [labels_root, labels_root.parent, root.parent])
    det = DetectionSet([], [], [])
    items = from_image_folder(root, settings)  # sub-folder names are splits here, not image labels
    for item in items:
        _image(dataclasses.replace(item, label=None), labels_root, predictions_dir, names, settings, det)
    for folder in (labels_root, Path(predictions_dir) if predictions_dir else None):
        if folder is not None:
            _orphans(folder, root, {item.key for item in items}, det.rejects)
    log.info("%s: %s", shown(root), det.counts())
    return det


def yolo_images(folder: Path) -> Path:
    """The images folder of a YOLO dataset named by `folder`: folder/images when it is the dataset's
    root (images/ + labels/, as Ultralytics lays it out), else folder itself."""
    return folder / "images" if (folder / "images").is_dir() else folder


def _labels_folder(images: Path) -> Path:
    parts = list(images.parts)
    for n in range(len(parts) - 1, -1, -1):
        if parts[n] == "images":
            candidate = Path(*parts[:n], "labels", *parts[n + 1:])
            if candidate.is_dir():
                return candidate
            break
    return images


def _class_names(classes: Path | Sequence[str] | None, look_in: list[Path]) -> list[str]:
    """The class names: given, or from classes.txt (one per line) / an Ultralytics data.yaml (names)."""
    if classes is not None and not isinstance(classes, (str, Path)):
        return [str(name) for name in classes]
    path = Path(classes) if classes is not None else next(
        (folder / name for folder in look_in for name in CLASS_FILES if (folder / name).is_file()), None)
    if path is None:
        raise BadInputError(f"no {' / '.join(CLASS_FILES)} found (looked in {', '.join(shown(p) for p in look_in)}); "
                            "name the class names file (one name per line)")
    if not path.is_file():
        raise BadInputError(f"{shown(path)}: file not found")
    check_utf8(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_names(path, text)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _yaml_names(path: Path, text: str) -> list[str]:
    """`names` of an Ultralytics dataset YAML: a list, or {id: name} with ids 0..n-1."""
    import yaml  # a dependency of transformers; imported here, the only YAML read of core

    try:
        names = (yaml.safe_load(text) or {}).get("names")
    except (yaml.YAMLError, AttributeError) as e:
        raise BadInputError(f"{shown(path)}: not a dataset YAML with a 'names' entry ({e})") from e
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        return [str(names[i]) for i in range(len(names))]
    if isinstance(names, list) and names:
        return [str(name) for name in names]
    raise BadInputError(f"{shown(path)}: 'names' must be a list of class names or {{0: name, 1: ...}}")


def _image(item: Item, labels: Path, predictions: Path | None, names: list[str], settings: Settings,
           det: DetectionSet) -> None:
    stem = Path(item.key).with_suffix(".txt")
    files = {LABEL_SOURCE: labels / stem, PREDICTION_SOURCE: Path(predictions) / stem if predictions else None}
    try:
        size = image_size(item.uri or "", settings)
    except BadInputError as e:
        det.rejects.append(Reject(item, f"{e}; its boxes are not kept"))
        return
    det.images.append(dataclasses.replace(item, meta={**item.meta, "width": size[0], "height": size[1]}))
    det.sizes[item.key] = size
    for source, txt in files.items():
        if txt is not None and txt.is_file():
            _boxes(item, txt, source, names, size, det)


def _boxes(item: Item, txt: Path, source: str, names: list[str], size: tuple[int, int], det: DetectionSet) -> None:
    check_utf8(txt)
    lines = [(n, line.split()) for n, line in enumerate(txt.read_text(encoding="utf-8-sig").splitlines(), 1)
             if line.strip()]
    for index, (number, fields) in enumerate(lines):
        obj = _line(fields, item.key, source, index, names, size)
        if isinstance(obj, str):
            reason = f"{txt.name}: line {number} (image {item.key!r}), {obj}"
            det.rejects.append(box_reject(item, source, f"line-{number}", reason))
        else:
            det.objects.append(obj)


def _line(fields: list[str], key: str, source: str, index: int, names: list[str],
          size: tuple[int, int]) -> DetObject | str:
    wanted = 6 if source == PREDICTION_SOURCE else 5
    if len(fields) not in (wanted, 5, 6):
        return f"expected {wanted} values (class cx cy w h{' score' if wanted == 6 else ''}), got {len(fields)}"
    try:
        cls_id = int(fields[0])
    except ValueError:
        return f"field 'class': {fields[0]!r} is not a class id"
    if not 0 <= cls_id < len(names):
        return f"field 'class': unknown class id {cls_id} ({len(names)} classes)"
    try:
        cx, cy, w, h, *rest = (float(v) for v in fields[1:])
    except ValueError:
        return f"field 'box': not numbers ({' '.join(fields[1:5])!r})"
    score = rest[0] if rest and source == PREDICTION_SOURCE else None
    if score is not None and not math.isfinite(score):
        return f"field 'score': {score} (not a finite number)"
    width, height = size
    box = parse_box([(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height], "xywh", size)
    if isinstance(box, str):
        return f"field 'box': {box}"
    return DetObject(key, source, index, box, names[cls_id], score)


def _orphans(folder: Path, root: Path, keys: set[str], rejects: list[Reject]) -> None:
    """A txt file with no image beside it: named, since its boxes silently vanishing is a data bug."""
    if folder.resolve() == root or not folder.is_dir():
        return  # txt files next to the images: an image without boxes is fine, a stray txt too
    images = {str(Path(key).with_suffix("")) for key in keys}
    for txt in sorted(folder.rglob("*.txt")):
        relative = txt.relative_to(folder).with_suffix("")
        if txt.name != CLASSES_FILE and str(relative) not in images:
            rejects.append(Reject(Item(key=readable_key(relative.as_posix() + ".txt")),
                                  f"{txt.name}: no image for this box file under the images folder"))
