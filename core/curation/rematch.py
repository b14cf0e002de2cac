"""Re-match an image's label and prediction boxes after a label box changed class: the stored match status,
IoU and partner of every box of that image recomputed (core.analysis.box_matching) from the stored boxes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from core.analysis.box_matching import Match, match_image
from core.curation.points import current_payloads, missing
from core.datasets.detections import Box, DetObject
from core.filters import Condition, Filter, objects_only
from core.ids import object_id
from core.pipeline.detection_info import match_iou
from core.store.base import VectorStore
from core.types import (
    BOX,
    CONFIDENCE,
    DATASET,
    IOU,
    KEY,
    KIND,
    LABEL,
    LABEL_SOURCE,
    MATCH,
    MATCH_ID,
    OBJECT_KIND,
    PARENT,
    PREDICTION,
    PREDICTION_SOURCE,
    SOURCE,
)

log = logging.getLogger(__name__)

_FIELDS = [DATASET, KEY, PARENT, SOURCE, BOX, LABEL, PREDICTION, CONFIDENCE, MATCH, IOU, MATCH_ID]
_OTHER = {LABEL_SOURCE: PREDICTION_SOURCE, PREDICTION_SOURCE: LABEL_SOURCE}
_CHUNK = 512  # parents per store filter


def rematch_objects(store: VectorStore, project: str, points: Sequence[str]) -> int:
    """Recompute MATCH / IOU / MATCH_ID of every box of the images holding a label box among `points`
    (their labels just changed), at the IoU their dataset was ingested with; points that are not
    label boxes are ignored. A label box without a class (its label cleared) is matched to nothing.
    Returns how many object points changed (written in every space, as set_payload does)."""
    spaces = store.list_spaces(project)
    if not points or not any(store.count(project, s.name, objects_only()) for s in spaces):
        return 0  # no detection objects in the project (a classification relabel): nothing to read
    changed = current_payloads(store, project, points, [KIND, SOURCE, PARENT], missing_ok=True)
    if changed.empty or KIND not in changed.columns:
        return 0
    boxes = changed[(changed[KIND] == OBJECT_KIND) & (changed[SOURCE] == LABEL_SOURCE)]
    parents = sorted({str(p) for p in boxes[PARENT] if not missing(p)})
    if not parents:
        return 0
    ids: list[str] = []
    values: list[dict[str, Any]] = []
    ious: dict[str, float] = {}
    for _, frame in _objects_of(store, project, parents).groupby(PARENT, sort=False):
        dataset = str(frame[DATASET].iloc[0])
        if dataset not in ious:
            ious[dataset] = match_iou(store, project, dataset)
        for pid, value in _image_matches(project, frame, ious[dataset]).items():
            ids.append(pid)
            values.append(value)
    if ids:
        store.set_payload(project, ids, values)
    log.info("re-matched the boxes of %d image(s) of %s: %d box(es) changed", len(parents), project, len(ids))
    return len(ids)


def _objects_of(store: VectorStore, project: str, parents: list[str]) -> pd.DataFrame:
    """The stored boxes of these images (each image read from the first space holding its boxes)."""
    frames: list[pd.DataFrame] = []
    remaining = set(parents)
    for info in store.list_spaces(project):
        for start in range(0, len(parents), _CHUNK):
            wanted = tuple(p for p in parents[start:start + _CHUNK] if p in remaining)
            if not wanted:
                continue
            flt = objects_only(Filter(must=(Condition(PARENT, one_of=wanted),)))
            frame = store.payloads(project, info.name, flt, fields=_FIELDS)
            if not frame.empty:
                frames.append(frame.reindex(columns=_FIELDS))
                remaining -= set(frame[PARENT].astype(str))
    return pd.concat(frames) if frames else pd.DataFrame(columns=_FIELDS)


def _image_matches(project: str, frame: pd.DataFrame, iou: float) -> dict[str, dict[str, Any]]:
    """{point id: new MATCH / IOU / MATCH_ID} of one image's boxes whose values differ from the stored ones."""
    objects: dict[tuple[str, int], tuple[str, DetObject | None]] = {}
    for pid, row in frame.iterrows():
        parsed = _object(row)
        if parsed is not None:
            objects[(parsed.source, parsed.index)] = (str(pid), parsed if parsed.cls else None)
    labels = [o for _, o in objects.values() if o is not None and o.source == LABEL_SOURCE]
    predictions = [o for _, o in objects.values() if o is not None and o.source == PREDICTION_SOURCE]
    found: dict[tuple[str, int], Match] = {(m.source, m.index): m
                                           for m in match_image(labels, predictions, iou=iou)}
    dataset = str(frame[DATASET].iloc[0])
    out: dict[str, dict[str, Any]] = {}
    for (source, index), (pid, obj) in objects.items():
        match = found.get((source, index))
        partner = None
        if match is not None and match.partner is not None and obj is not None:
            partner = object_id(project, dataset, obj.image_key, _OTHER[source], match.partner)
        value = {MATCH: None if match is None else match.status,
                 IOU: None if match is None or match.iou is None else float(match.iou), MATCH_ID: partner}
        if _differs(frame.loc[pid], value):
            out[pid] = value
    return out


def _object(row: pd.Series) -> DetObject | None:
    """The DetObject of a stored box (its key "<image key>#<source>/<index>"; class "" when it has none),
    or None for a payload that is not one (logged)."""
    key = str(row.get(KEY) or "")
    image_key, _, rest = key.rpartition("#")
    source, _, index = rest.partition("/")
    cls = row.get(LABEL if source == LABEL_SOURCE else PREDICTION)
    score = row.get(CONFIDENCE)
    try:
        box = Box(*(float(v) for v in row.get(BOX)))
        return DetObject(image_key, source, int(index), box, "" if missing(cls) else str(cls),
                         None if missing(score) else float(score))
    except (TypeError, ValueError) as e:
        log.warning("cannot re-match the stored box %r: %s", key, e)
        return None


def _differs(row: pd.Series, value: dict[str, Any]) -> bool:
    for name, new in value.items():
        old = row.get(name)
        old = None if missing(old) else old
        if isinstance(new, float) and isinstance(old, (int, float)):
            if abs(float(old) - new) > 1e-9:
                return True
        elif old != new:
            return True
    return False
