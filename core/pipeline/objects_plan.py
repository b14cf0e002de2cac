"""What a detection ingest stores: object payloads, the report, and the plan of what a (resumed) run lacks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.analysis.box_matching import MATCH_STATUSES, Match
from core.datasets.detections import DetObject
from core.ids import object_id, point_id
from core.pipeline.rejects import IngestReport
from core.types import (
    BOX,
    BOX_AREA,
    CONFIDENCE,
    DATASET,
    IOU,
    KEY,
    KIND,
    LABEL,
    LABEL_SOURCE,
    MATCH,
    MATCH_ID,
    META,
    OBJECT_KIND,
    PARENT,
    PREDICTION,
    PREDICTION_SOURCE,
    SOURCE,
    SPLIT,
    TEXT,
    URI,
    Item,
    Reject,
)

# Match.partner is an index among the boxes of the other source of the same image.
_OTHER = {LABEL_SOURCE: PREDICTION_SOURCE, PREDICTION_SOURCE: LABEL_SOURCE}


@dataclass
class DetectionReport(IngestReport):
    """An IngestReport over image and object points together (total = images + boxes read, bad boxes
    included; stored / skipped / rejects count points of both kinds), plus what the objects are.

    images: images in the input; labels / predictions: object points of each source in the space
    after the run (stored now or before); statuses: match status -> those object points."""

    images: int = 0
    object_space: str = ""  # where the object points went: `space`, or "<space>-roi" (ROI mode)
    labels: int = 0
    predictions: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line, e.g. "shop/val [clip]: 4 images, 11 objects (6 labels / 5 predictions), 15 stored,
        0 already stored, 1 rejected (partial); tp 3, misclassified 1, ..."."""
        counts = ", ".join(f"{s} {self.statuses.get(s, 0)}" for s in MATCH_STATUSES)
        where = self.space if self.object_space in ("", self.space) else f"{self.space}, objects {self.object_space}"
        return (f"{self.project}/{self.dataset} [{where}]: {self.images} images, "
                f"{self.labels + self.predictions} objects ({self.labels} labels / {self.predictions} predictions), "
                f"{self.stored} stored, {self.skipped} already stored, {len(self.rejects)} rejected "
                f"({self.status}); {counts}")


def object_reject(obj: DetObject, uri: str | None, reason: str) -> Reject:
    """The reject of one box, named by its object key (the CSV's key column) and image uri."""
    return Reject(Item(key=obj.key, uri=uri), reason)


def object_payload(dataset: str, ids: ObjectIds, image: Item, obj: DetObject, match: Match | None) -> dict[str, Any]:
    """The payload of one object point: an item's fields (label for a label box; prediction and
    confidence for a predicted one) plus kind "object", parent (the image's point id), box [x0, y0, x1,
    y1] in pixels, source, match status / iou / match_id (the partner's point id), box_area; the
    image's uri and split are inherited."""
    box = obj.box
    labelled = obj.source == LABEL_SOURCE
    partner = None
    if match is not None and match.partner is not None:
        partner = ids.object(obj.image_key, _OTHER.get(obj.source, obj.source), match.partner)
    return {
        DATASET: dataset, KEY: obj.key, URI: image.uri, TEXT: None,
        LABEL: obj.cls if labelled else None, PREDICTION: None if labelled else obj.cls,
        CONFIDENCE: None if obj.score is None else float(obj.score), SPLIT: image.split, META: dict(obj.meta),
        KIND: OBJECT_KIND, PARENT: ids.image(obj.image_key), SOURCE: obj.source,
        BOX: [float(v) for v in box.to_list()], BOX_AREA: float(box.area),
        MATCH: None if match is None else match.status,
        IOU: None if match is None or match.iou is None else float(match.iou),
        MATCH_ID: partner,
    }


@dataclass(frozen=True)
class ObjectIds:
    """The deterministic point ids of one dataset's images and objects."""

    project: str
    dataset: str

    def image(self, key: str) -> str:
        return point_id(self.project, self.dataset, key)

    def object(self, key: str, source: str, index: int) -> str:
        return object_id(self.project, self.dataset, key, source, index)


@dataclass
class Todo:
    """One image with something missing from the space: its image point (image_missing) and / or
    some of its object points (boxes: (object point id, object))."""

    pid: str
    item: Item
    image_missing: bool
    boxes: list[tuple[str, DetObject]]


def group_objects(images: Sequence[Item], objects: Sequence[DetObject],
                  rejects: list[Reject]) -> dict[str, list[DetObject]]:
    """Objects by image key; a box whose image is not among `images`, or whose (source, index)
    repeats, becomes a reject (appended) naming it."""
    uris = {item.key: item.uri for item in images}
    by_image: dict[str, list[DetObject]] = {key: [] for key in uris}
    seen: set[tuple[str, str, int]] = set()
    for obj in objects:
        ident = (obj.image_key, obj.source, obj.index)
        if obj.image_key not in by_image:
            rejects.append(object_reject(obj, None, f"no image with key {obj.image_key!r} (or it was rejected)"))
        elif ident in seen:
            rejects.append(object_reject(obj, uris[obj.image_key], "repeated object: another box of this image "
                                         "has the same source and index"))
        else:
            seen.add(ident)
            by_image[obj.image_key].append(obj)
    return by_image


def plan(images: Sequence[Item], by_image: Mapping[str, list[DetObject]], ids: ObjectIds,
         have: set[str]) -> list[Todo]:
    """The images with something not in `have` (the ids already stored), in input order."""
    todo: list[Todo] = []
    for item in images:
        pid = ids.image(item.key)
        boxes = [(oid, obj) for obj in by_image.get(item.key, [])
                 if (oid := ids.object(item.key, obj.source, obj.index)) not in have]
        if pid not in have or boxes:
            todo.append(Todo(pid, item, pid not in have, boxes))
    return todo


def count_objects(report: DetectionReport, kept: Sequence[DetObject], matches: Mapping[tuple[str, str, int], Match],
                  rejected: set[str]) -> None:
    """Fill the report's labels / predictions / statuses from the objects now in the space (`kept`
    less the object keys in `rejected`)."""
    stored = [obj for obj in kept if obj.key not in rejected]
    sources = Counter(obj.source for obj in stored)
    report.labels, report.predictions = sources[LABEL_SOURCE], sources[PREDICTION_SOURCE]
    statuses = Counter(m.status for obj in stored if (m := matches.get((obj.image_key, obj.source, obj.index))))
    report.statuses = {status: statuses.get(status, 0) for status in MATCH_STATUSES}
