"""COCO files for classification: images, categories and one image-level annotation per labeled image.

Convention (COCO itself has no image-level label): the "labels" task of Datumaro, which CVAT uses
to import and export COCO (datumaro/plugins/data_formats/coco, CocoTask.labels): an annotation
{"id", "image_id", "category_id"} with no "bbox" and no "segmentation" is the image's class.
Reading, an image's last such annotation (highest id) wins; box or mask annotations are ignored.
Each image also carries "embedscope_id", "dataset" and "key" (extra fields COCO readers keep or
ignore) and, when known, its URL as "coco_url". Format: https://cocodataset.org/#format-data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from core.config import Settings
from core.datasets import images
from core.errors import BadInputError
from core.interop.rows import ID_FIELD, ImportedLabel, point_or_none, text_or_none
from core.types import DATASET, KEY, LABEL, URI

log = logging.getLogger(__name__)


@dataclass
class CocoExport:
    """The COCO document and the items left out (no readable image file), named dataset/key."""

    doc: dict[str, Any]
    skipped: list[str] = field(default_factory=list)


def image_size(uri: str | None, settings: Settings) -> tuple[int, int] | None:
    """(width, height) from the image file's header (under the allowed roots), None when there
    is no readable image: COCO needs both."""
    if not uri:
        return None
    try:
        return images.image_size(uri, settings)
    except BadInputError as e:
        log.warning("COCO export: no size for %s (%s)", uri, e)
        return None


def to_coco(items: pd.DataFrame, classes: Sequence[str], *, size_of: Callable[[str | None], tuple[int, int] | None],
            url_of: Callable[[pd.Series], str | None] | None = None, description: str = "") -> CocoExport:
    """A COCO document of items (payloads indexed by point id): one image per item with a readable
    image, categories numbered from 1 in `classes` order, one image-level annotation per labeled
    item. file_name is the key, or "dataset/key" when the items span several datasets."""
    several = items[DATASET].nunique() > 1 if DATASET in items.columns else False
    category = {name: n for n, name in enumerate(classes, start=1)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    skipped: list[str] = []
    for pid, row in items.iterrows():
        dataset, key = text_or_none(row.get(DATASET)), text_or_none(row.get(KEY)) or str(pid)
        size = size_of(text_or_none(row.get(URI)))
        if size is None:
            skipped.append(f"{dataset}/{key}")
            continue
        image = {"id": len(images) + 1, "file_name": f"{dataset}/{key}" if several else key,
                 "width": size[0], "height": size[1], ID_FIELD: str(pid), DATASET: dataset, KEY: key}
        url = url_of(row) if url_of is not None else None
        if url:
            image["coco_url"] = url
        images.append(image)
        label = text_or_none(row.get(LABEL))
        if label is not None and label in category:
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"],
                                "category_id": category[label], "iscrowd": 0})
    doc = {"info": info_block(description or "embedscope export"), "licenses": [], "images": images, "annotations": annotations,
           "categories": [{"id": n, "name": name, "supercategory": ""} for name, n in category.items()]}
    return CocoExport(doc, skipped)


def info_block(description: str) -> dict[str, Any]:
    """The "info" entry of a COCO document written now."""
    return {"description": description, "version": "1.0", "year": datetime.now(UTC).year,
            "date_created": datetime.now(UTC).isoformat(timespec="seconds")}


def _list(doc: dict[str, Any], name: str, source: str) -> list[dict[str, Any]]:
    value = doc.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadInputError(f"{source}: '{name}' must be a list of objects")
    return value


def _field(entry: dict[str, Any], name: str, source: str, where: str) -> Any:
    if name not in entry:
        raise BadInputError(f"{source}: {where}: missing '{name}'")
    return entry[name]


def parse_coco(doc: Any, source: str) -> list[ImportedLabel]:
    """The image-level labels of a COCO document, one per image, in file order (label None for an
    image without an image-level annotation). BadInputError naming the file, the entry and the
    field for a document that is not COCO."""
    if not isinstance(doc, dict) or "images" not in doc:
        raise BadInputError(f"{source}: a COCO file is a JSON object with 'images', 'annotations' and 'categories'")
    names = {_field(c, "id", source, f"category {n}"): str(_field(c, "name", source, f"category {n}"))
             for n, c in enumerate(_list(doc, "categories", source))}
    chosen: dict[Any, tuple[Any, str]] = {}
    for n, ann in enumerate(_list(doc, "annotations", source)):
        where = f"annotation {n} (id {ann.get('id')})"
        if ann.get("bbox") or ann.get("segmentation"):
            continue  # an object, not the image's class
        image_id, cat = _field(ann, "image_id", source, where), _field(ann, "category_id", source, where)
        if cat not in names:
            raise BadInputError(f"{source}: {where}: category_id {cat!r} is not in 'categories'")
        order = ann.get("id", n)
        if image_id not in chosen or _sortable(order) >= _sortable(chosen[image_id][0]):
            chosen[image_id] = (order, names[cat])
    out = []
    for n, image in enumerate(_list(doc, "images", source)):
        where = f"image {n} (id {image.get('id')})"
        image_id = _field(image, "id", source, where)
        key = text_or_none(image.get(KEY)) or text_or_none(_field(image, "file_name", source, where))
        label = chosen[image_id][1] if image_id in chosen else None
        out.append(ImportedLabel(point_or_none(image.get(ID_FIELD)), text_or_none(image.get(DATASET)), key,
                                 label, where))
    return out


def _sortable(value: Any) -> tuple[int, float | str]:
    # Annotation ids are numbers in COCO, but a hand-written file may use text: compare within a kind.
    return (0, float(value)) if isinstance(value, (int, float)) else (1, str(value))
