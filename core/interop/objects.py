"""Export of detection objects: which objects (tag, corrected, finding, collection) and their COCO / CSV / JSONL files.

COCO (https://cocodataset.org/#format-data): one image entry per parent image of the exported
objects (its key as file_name, size from the image header), categories with the ids the dataset
came with (a COCO ingest keeps them: core.pipeline.detection_info; else numbered from 1), and one
annotation per label box with its real bbox [x, y, w, h] in pixels. Prediction boxes go to a
COCO *results* file beside it (a list of {image_id, category_id, bbox, score}, what detectors
write), written when asked for or when the selection is predictions only (missing labels,
background). Every image and annotation carries "embedscope_id" (its point id), as the other exports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core import collections, export
from core.config import Settings
from core.datasets.detections import Box
from core.errors import BadInputError, NotFoundError
from core.filters import Condition, Filter, objects_only
from core.interop.coco import image_size as coco_image_size
from core.interop.coco import info_block
from core.interop.exporting import ExportFiles, UrlOptions, json_bytes
from core.interop.rows import ID_FIELD, text_or_none
from core.interop.selection import current_items
from core.search.objects import OBJECT_COLUMNS
from core.store.base import VectorStore
from core.types import BOX, CONFIDENCE, DATASET, KEY, LABEL, PARENT, PREDICTION, SOURCE, TAGS, URI

log = logging.getLogger(__name__)

# --finding of objects -> the object analysis' finder (core.pipeline.analyse_objects.findings_frame).
OBJECT_FINDINGS: dict[str, str] = {"mislabeled-boxes": "mislabel", "missing-labels": "missing",
                                   "background": "background"}
PREDICTION_FINDINGS = ("missing-labels", "background")  # their objects are predictions only
OBJECT_EXTRA: tuple[str, ...] = (*OBJECT_COLUMNS, "suggested_label", "tags")


def _objects_among(store: VectorStore, project: str, space: str, ids: Sequence[str]) -> list[str]:
    """The ids that are detection objects (core.filters.objects_only, applied in the store), in order."""
    if not ids:
        return []
    found = set(store.payloads(project, space, flt=objects_only(Filter.ids(list(ids))), fields=[KEY]).index)
    return [i for i in ids if i in found]


def from_tag(store: VectorStore, project: str, space: str, tag: str) -> pd.DataFrame:
    """The objects carrying `tag`, ordered by dataset and key (current payloads, "score" NaN)."""
    frame = store.payloads(project, space, flt=objects_only(Filter(must=(Condition(TAGS, equals=tag),))))
    if frame.empty:
        raise NotFoundError(f"No detection object of space {space!r} in project {project!r} is tagged {tag!r}")
    frame = frame.sort_values([c for c in (DATASET, KEY) if c in frame.columns], kind="stable")
    return current_items(store, project, space, list(frame.index))


def from_corrected(store: VectorStore, project: str, space: str) -> pd.DataFrame:
    """The corrected objects (label changed since ingest, or marked reviewed), by dataset and key."""
    from core.curation.corrected import corrected_ids  # lazily: curation is only needed here

    ids = _objects_among(store, project, space, sorted(corrected_ids(store, project, space)))
    frame = current_items(store, project, space, ids)
    if frame.empty:
        raise NotFoundError(f"No detection object of space {space!r} in project {project!r} was corrected "
                            "or reviewed")
    return frame.sort_values([c for c in (DATASET, KEY) if c in frame.columns], kind="stable")


def from_collection(store: VectorStore, project: str, name: str) -> tuple[str, pd.DataFrame]:
    """(space, objects) of a saved collection: its detection objects, in its order."""
    coll = collections.get(store, project, name)
    assert coll.items is not None
    keep = _objects_among(store, project, coll.space, [str(i) for i in coll.items.index if i not in set(coll.missing)])
    frame = coll.items.loc[keep]
    if frame.empty:
        raise NotFoundError(f"Collection {name!r} holds no detection object still in the store")
    return coll.space, frame


def from_finding(store: VectorStore, project: str, space: str, finding: str, *,
                 datasets: Sequence[str] | None = None, cache_dir: Path | None = None) -> pd.DataFrame:
    """The flagged objects of a finder of the persisted object analysis, most likely first, with the
    finder's score (and the suggested class of mislabeled boxes)."""
    from core.pipeline.analyse_objects import findings_frame, load_object_analysis  # lazily: sklearn

    if finding not in OBJECT_FINDINGS:
        raise ValueError(f"finding must be one of {tuple(OBJECT_FINDINGS)}, got {finding!r}")
    result = load_object_analysis(store, project, space, datasets, cache_dir=cache_dir)
    if result is None:
        raise NotFoundError(f"Space {space!r} of project {project!r} has no persisted object analysis for these "
                            f"datasets: run `embedscope analyse --objects --project {project} --space {space}` first")
    if result.stale:
        log.warning("The object analysis of %s/%s is older than the data: boxes are exported as they are now",
                    project, space)
    rows = findings_frame(result)
    rows = rows[(rows["finder"] == OBJECT_FINDINGS[finding]) & rows["flagged"].astype(bool)]
    items = current_items(store, project, space, rows["id"].tolist(), rows["score"].tolist())
    if finding == "mislabeled-boxes":
        items["suggested_label"] = rows.set_index("id")["suggested_label"].reindex(items.index)
    return items


# -- files -----------------------------------------------------------------------------------------
def object_frame(objects: pd.DataFrame) -> pd.DataFrame:
    """The CSV / JSONL table of objects: core.export's columns, then the object payload columns."""
    return export.export_frame(objects, [c for c in OBJECT_EXTRA if c in objects.columns or c in OBJECT_COLUMNS])


def object_class(row: pd.Series) -> str | None:
    """The class of an object: a label box's label, a prediction's predicted class."""
    return text_or_none(row.get(PREDICTION if row.get(SOURCE) == "prediction" else LABEL))


def _bbox(value: Any) -> list[float] | None:
    """[x, y, w, h] of a stored [x0, y0, x1, y1] box; None for a box that is not four finite numbers."""
    try:
        return Box(*(float(v) for v in value)).to_xywh()
    except (TypeError, ValueError):
        return None


@dataclass
class CocoObjects:
    """The COCO instances document, the results list (None when not written) and the objects left
    out (no readable parent image, or no usable box), named dataset/key."""

    doc: dict[str, Any]
    results: list[dict[str, Any]] | None
    skipped: list[str] = field(default_factory=list)


def to_coco_objects(objects: pd.DataFrame, *, size_of: Callable[[str | None], tuple[int, int] | None],
                    predictions: bool, description: str = "",
                    url_of: Callable[[pd.Series], str | None] | None = None,
                    categories: Sequence[Mapping[str, Any]] = ()) -> CocoObjects:
    """COCO instances (label boxes) and, when predictions, a results list (prediction boxes) of
    objects (payloads indexed by point id; PARENT, BOX, SOURCE and the class fields).
    categories: the dataset's own ({"id", "name", "supercategory"}, core.pipeline.detection_info): kept
    whole, with their ids; a class they lack (a new label) gets the next free id."""
    several = objects[DATASET].nunique() > 1 if DATASET in objects.columns else False
    classes = sorted({c for _, row in objects.iterrows() if (c := object_class(row)) is not None})
    listed = category_list(classes, categories)
    category = {str(c["name"]): c["id"] for c in listed}
    image_ids: dict[str, int] = {}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    for pid, row in objects.iterrows():
        dataset, key = text_or_none(row.get(DATASET)), text_or_none(row.get(KEY)) or str(pid)
        parent, bbox, cls = text_or_none(row.get(PARENT)), _bbox(row.get(BOX)), object_class(row)
        is_prediction = row.get(SOURCE) == "prediction"
        if is_prediction and not predictions:
            continue
        size = size_of(text_or_none(row.get(URI))) if parent not in image_ids else None
        if parent is None or bbox is None or cls is None or (parent not in image_ids and size is None):
            skipped.append(f"{dataset}/{key}")
            continue
        if parent not in image_ids:
            assert size is not None
            image_key = key.split("#", 1)[0]
            image_ids[parent] = len(images) + 1
            image: dict[str, Any] = {"id": image_ids[parent], "file_name": f"{dataset}/{image_key}" if several else image_key,
                     "width": size[0], "height": size[1], ID_FIELD: parent, DATASET: dataset, KEY: image_key}
            url = url_of(row) if url_of is not None else None
            if url:
                image["coco_url"] = url
            images.append(image)
        entry: dict[str, Any] = {"image_id": image_ids[parent], "category_id": category[cls], "bbox": bbox,
                                 "area": bbox[2] * bbox[3], ID_FIELD: str(pid)}
        if is_prediction:
            score = row.get(CONFIDENCE)
            results.append({**entry, "score": None if pd.isna(score) else float(score)})
        else:
            annotations.append({"id": len(annotations) + 1, **entry, "iscrowd": 0, "segmentation": []})
    doc = {"info": info_block(description or "embedscope export of detection objects"), "licenses": [],
           "images": images, "annotations": annotations,
           "categories": listed}
    return CocoObjects(doc, results if predictions else None, skipped)


def category_list(classes: Sequence[str], given: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """The COCO categories of `classes`: the given ones with their ids (all of them, so a labeling tool
    sees the dataset's whole class list), then each class they lack numbered after the largest
    integer id (from 1 in name order when none is given)."""
    out = [{"id": c["id"], "name": str(c["name"]), "supercategory": str(c.get("supercategory") or "")}
           for c in given]
    known = {c["name"] for c in out}
    ints = [c["id"] for c in out if isinstance(c["id"], int) and not isinstance(c["id"], bool)]
    start = max(ints, default=0) + 1
    new = [name for name in classes if name not in known]
    out += [{"id": start + n, "name": name, "supercategory": ""} for n, name in enumerate(new)]
    return out



OBJECT_FORMATS: tuple[str, ...] = ("coco", "csv", "jsonl")


def build_objects(settings: Settings, project: str, space: str, objects: pd.DataFrame, fmt: str, *, stem: str,
                  predictions: bool = False, urls: UrlOptions | None = None,
                  categories: Sequence[Mapping[str, Any]] = ()) -> ExportFiles:
    """The files of an export of objects: coco -> <stem>.coco.json (label boxes; categories: the
    datasets' own class ids, core.pipeline.detection_info.category_ids) and, with predictions,
    <stem>.results.json (prediction boxes with scores); csv / jsonl -> one row per object with
    the object payload columns."""
    if fmt not in OBJECT_FORMATS:
        raise ValueError(f"fmt must be one of {OBJECT_FORMATS}, got {fmt!r}")
    if objects.empty:
        raise BadInputError("Nothing to export: the selection holds no detection object still in the store")
    if fmt != "coco":
        frame = object_frame(objects)
        return ExportFiles([(f"{stem}.{fmt}", export.to_csv(frame) if fmt == "csv" else export.to_jsonl(frame))],
                           [f"{len(frame)} objects"])
    urls = urls or UrlOptions()
    made = to_coco_objects(objects, size_of=lambda uri: coco_image_size(uri, settings), predictions=predictions,
                           url_of=urls.url, description=f"embedscope {project}/{space} objects",
                           categories=categories)
    doc = made.doc
    if not doc["images"]:
        raise BadInputError("Nothing to export as COCO: none of the objects has a readable image file"
                            + ("" if predictions else " and a label box (add --predictions for prediction boxes)"))
    files = [(f"{stem}.coco.json", json_bytes(doc))]
    notes = [f"{len(doc['images'])} images, {len(doc['annotations'])} label boxes, {len(doc['categories'])} classes"]
    if made.results is not None:
        files.append((f"{stem}.results.json", json_bytes(made.results)))
        notes.append(f"{len(made.results)} prediction boxes (COCO results, with scores)")
    left = int((objects.get(SOURCE) == "prediction").sum()) if not predictions and SOURCE in objects else 0
    if left:
        notes.append(f"{left} prediction box(es) left out: add --predictions for a results file")
    if made.skipped:
        notes.append(f"{len(made.skipped)} object(s) without a readable image or a usable box left out: "
                     + ", ".join(made.skipped[:5]))
    return ExportFiles(files, notes)
