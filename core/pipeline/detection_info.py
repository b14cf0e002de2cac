"""What a detection dataset came with, kept as a store document: its own class ids (COCO category ids, so exports
give them back) and the IoU its boxes were matched at (so a relabeled box is re-matched alike)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from core.store.base import VectorStore
from core.store.documents import FORMAT, read_document

log = logging.getLogger(__name__)

KIND = "detection"  # one document per detection dataset, keyed by its name
FORMAT_VERSION = 1
DEFAULT_IOU = 0.5  # core.analysis.box_matching's default: datasets ingested before this document existed


def save_detection_info(store: VectorStore, project: str, dataset: str, *, categories: Sequence[Mapping[str, Any]],
                        iou: float) -> None:
    """Remember the dataset's class ids ({"id", "name", "supercategory"} each; [] for an input that
    numbers no classes: it replaces what an earlier ingest of that dataset name left, so those ids
    are never given to another input's classes) and the IoU its labels and predictions were matched at."""
    doc = {FORMAT: FORMAT_VERSION, "iou": float(iou),
           "categories": [{"id": c["id"], "name": str(c["name"]), "supercategory": str(c.get("supercategory") or "")}
                          for c in categories]}
    store.put_document(project, KIND, dataset, doc)


def match_iou(store: VectorStore, project: str, dataset: str) -> float:
    """The IoU the dataset's boxes were matched at when ingested (DEFAULT_IOU when not recorded)."""
    doc = read_document(store, project, KIND, dataset, FORMAT_VERSION)
    value = (doc or {}).get("iou")
    return float(value) if isinstance(value, (int, float)) and 0 < value <= 1 else DEFAULT_IOU


def category_ids(store: VectorStore, project: str, datasets: Sequence[str]) -> list[dict[str, Any]]:
    """The class ids the datasets came with, merged ({"id", "name", "supercategory"}, by id); [] when none
    was kept or two datasets number classes differently (one name with two ids, or one id with two
    names): then an export numbers the classes itself."""
    by_name: dict[str, dict[str, Any]] = {}
    by_id: dict[Any, str] = {}
    for dataset in sorted(set(datasets)):
        doc = read_document(store, project, KIND, dataset, FORMAT_VERSION)
        for entry in (doc or {}).get("categories") or []:
            name, cid = str(entry.get("name")), entry.get("id")
            if (name in by_name and by_name[name]["id"] != cid) or by_id.get(cid, name) != name:
                log.warning("datasets %s number the class %r differently: exporting with new category ids",
                            ", ".join(datasets), name)
                return []
            by_name.setdefault(name, {"id": cid, "name": name, "supercategory": entry.get("supercategory") or ""})
            by_id[cid] = name
    return sorted(by_name.values(), key=lambda c: (str(type(c["id"])), c["id"]))
