"""Labels matched to predictions per image (greedy by score, COCO-style): a status per box and a per-class table.

Precedence, per image (every label and prediction gets exactly one status):

1. tp: predictions in decreasing score (ties and scoreless ones: input order, scoreless last)
   each take the unmatched label of THEIR class with the highest IoU >= iou (ties: the first
   label). This is COCO's matching, so the tp count is the one COCO evaluation finds.
2. misclassified: the predictions left, in the same order, each take the still unmatched label of
   ANOTHER class with the highest IoU >= iou (no same-class prediction matched that label in 1).
   Both boxes get the status; one prediction per label.
3. duplicate: a prediction left whose IoU >= iou with an already matched label (by 1 or 2, any
   class): a second detection of an object; partner = that label (the highest IoU).
4. poor_localisation: the predictions left each take the unmatched label of their class with the
   highest IoU in [floor, iou) (and > 0): the right object, a loose box. Both boxes get the status.
5. spurious: every prediction left (a false positive); missed: every label left (a false negative).

So a prediction is tp > misclassified > duplicate > poor_localisation > spurious, and a label is
tp > misclassified > poor_localisation > missed. Match.iou: the IoU with the partner; for spurious
and missed boxes the best IoU with any box of the other source (None when the image has none).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.types import LABEL_SOURCE, OBJECT_SOURCES, PREDICTION_SOURCE

if TYPE_CHECKING:  # only the attributes are used: any object with them matches
    from core.datasets.detections import DetObject

TP, MISCLASSIFIED, POOR, SPURIOUS, MISSED, DUPLICATE = (
    "tp", "misclassified", "poor_localisation", "spurious", "missed", "duplicate")
MATCH_STATUSES: tuple[str, ...] = (TP, MISCLASSIFIED, POOR, SPURIOUS, MISSED, DUPLICATE)
# A label fails with these statuses, a prediction with PREDICTION_FAILURES (an error cluster's failures).
LABEL_FAILURES: tuple[str, ...] = (MISCLASSIFIED, POOR, MISSED)
PREDICTION_FAILURES: tuple[str, ...] = (MISCLASSIFIED, POOR, SPURIOUS, DUPLICATE)
TOTAL_ROW = "(all)"
TABLE_COLUMNS: tuple[str, ...] = (
    "class", "labels", "predictions", "tp", "misclassified", "misclassified_predictions",
    "poor_localisation", "missed", "spurious", "duplicate", "precision", "recall")


@dataclass(frozen=True)
class Match:
    """The status of one box: source "label" | "prediction", index (the object's own index),
    status (one of MATCH_STATUSES), iou (with the partner, or the nearest box; None when the image
    has no box of the other source), partner (the index of the matched box of the other source)."""

    source: str
    index: int
    status: str
    iou: float | None
    partner: int | None


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of a (n, 4) with every box of b (m, 4), boxes [x0, y0, x1, y1]. (n, m) float64."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _check(iou: float, floor: float) -> None:
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    if not 0.0 <= floor < iou:
        raise ValueError(f"floor must be in [0, iou={iou}), got {floor}")


def _boxes(objects: Sequence[DetObject]) -> np.ndarray:
    return np.array([[o.box.x0, o.box.y0, o.box.x1, o.box.y1] for o in objects], dtype=np.float64).reshape(-1, 4)


def _score_order(predictions: Sequence[DetObject]) -> list[int]:
    """Prediction positions by decreasing score; equal scores keep input order, scoreless ones last."""
    def key(i: int) -> tuple[int, float]:
        s = predictions[i].score
        return (1, 0.0) if s is None or np.isnan(s) else (0, -float(s))
    return sorted(range(len(predictions)), key=key)  # sorted is stable


def match_image(labels: Sequence[DetObject], predictions: Sequence[DetObject], *, iou: float = 0.5,
                floor: float = 0.1) -> list[Match]:
    """The status of every box of one image (the module docstring's precedence).

    labels, predictions: the image's boxes of each source (DetObject: box, cls, score, index).
    Returns one Match per object, in input order: the labels, then the predictions.
    """
    _check(iou, floor)
    ious = pairwise_iou(_boxes(predictions), _boxes(labels))  # (p, l)
    same = np.array([[p.cls == lab.cls for lab in labels] for p in predictions], dtype=bool).reshape(ious.shape)
    state = _State(ious, _score_order(predictions))
    hit = ious >= iou
    state.step(TP, same & hit)
    state.step(MISCLASSIFIED, ~same & hit)
    state.step(DUPLICATE, hit, taken_labels=True)
    state.step(POOR, same & (ious >= floor) & (ious > 0))
    return state.results(labels, predictions)


class _State:
    """The matching of one image in progress: who is matched to whom, with which status."""

    def __init__(self, ious: np.ndarray, order: list[int]) -> None:
        self.ious, self.order = ious, order
        self.lab_to = np.full(ious.shape[1], -1, dtype=np.int64)  # the prediction matched to each label
        self.pred_to = np.full(ious.shape[0], -1, dtype=np.int64)
        self.lab_status: list[str | None] = [None] * ious.shape[1]
        self.pred_status: list[str | None] = [None] * ious.shape[0]

    def step(self, status: str, allowed: np.ndarray, *, taken_labels: bool = False) -> None:
        """Walk the unmatched predictions in score order; each takes the allowed label of highest
        IoU (the first on ties) among the free labels (one to one: both get the status), or, with
        taken_labels, among the labels matched already (only the prediction gets the status)."""
        for i in self.order:
            if self.pred_status[i] is not None:
                continue
            cand = allowed[i] & ((self.lab_to >= 0) if taken_labels else (self.lab_to < 0))
            if not cand.any():
                continue
            j = int(np.argmax(np.where(cand, self.ious[i], -1.0)))  # argmax keeps the first of equals
            self.pred_status[i], self.pred_to[i] = status, j
            if not taken_labels:
                self.lab_status[j], self.lab_to[j] = status, i

    def results(self, labels: Sequence[DetObject], predictions: Sequence[DetObject]) -> list[Match]:
        out = []
        for j, obj in enumerate(labels):
            partner = int(self.lab_to[j])
            near = self.ious[:, j]
            out.append(_match(LABEL_SOURCE, obj, self.lab_status[j] or MISSED, near, partner, predictions))
        for i, obj in enumerate(predictions):
            partner = int(self.pred_to[i])
            out.append(_match(PREDICTION_SOURCE, obj, self.pred_status[i] or SPURIOUS, self.ious[i], partner,
                              labels))
        return out


def _match(source: str, obj: DetObject, status: str, row: np.ndarray, partner: int,
           others: Sequence[DetObject]) -> Match:
    """partner: position in others (-1 = none); row: IoUs with every box of others."""
    if partner >= 0:
        return Match(source, obj.index, status, float(row[partner]), others[partner].index)
    return Match(source, obj.index, status, float(row.max()) if row.size else None, None)


def match_set(objects: Sequence[DetObject], *, iou: float = 0.5,
              floor: float = 0.1) -> dict[tuple[str, str, int], Match]:
    """match_image on every image of a set. objects: labels and predictions of any images.
    Returns {(image_key, source, index): Match}; ValueError for an unknown source or a key twice."""
    _check(iou, floor)
    by_image: dict[str, tuple[list[DetObject], list[DetObject]]] = defaultdict(lambda: ([], []))
    seen: set[tuple[str, str, int]] = set()
    for obj in objects:
        if obj.source not in OBJECT_SOURCES:
            raise ValueError(f"object source must be one of {OBJECT_SOURCES}, got {obj.source!r}")
        key = (obj.image_key, obj.source, obj.index)
        if key in seen:
            raise ValueError(f"object {key} given twice")
        seen.add(key)
        by_image[obj.image_key][obj.source == PREDICTION_SOURCE].append(obj)
    out: dict[tuple[str, str, int], Match] = {}
    for image, (labels, predictions) in by_image.items():
        for m in match_image(labels, predictions, iou=iou, floor=floor):
            out[(image, m.source, m.index)] = m
    return out


def class_table(objects: Sequence[DetObject], matches: dict[tuple[str, str, int], Match]) -> pd.DataFrame:
    """status_table of objects with their statuses from match_set (KeyError for an object without one)."""
    statuses = [matches[(o.image_key, o.source, o.index)].status for o in objects]
    return status_table([o.cls for o in objects], [o.source for o in objects], statuses)


def status_table(classes: Sequence[Any], sources: Sequence[Any], statuses: Sequence[Any]) -> pd.DataFrame:
    """Per class (sorted by name): labels, predictions (boxes of the class of each source), then
    counts per status: tp, misclassified (labels of the class whose box got a prediction of another
    class), misclassified_predictions (predictions of the class on a label of another class),
    poor_localisation (labels, = predictions of the class with it), missed (labels), spurious and
    duplicate (predictions); precision = tp / predictions, recall = tp / labels (NaN when 0).
    So labels = tp + misclassified + poor_localisation + missed and predictions = tp +
    misclassified_predictions + poor_localisation + spurious + duplicate. classes, sources,
    statuses: (n,) aligned; a box without a status (None) counts in labels/predictions only."""
    frame = pd.DataFrame({"class": [str(c) for c in classes], "source": list(sources), "status": list(statuses)})
    rows = []
    for name, group in frame.groupby("class", sort=True):
        lab, pred = group[group["source"] == LABEL_SOURCE], group[group["source"] == PREDICTION_SOURCE]
        rows.append(_row(str(name), lab["status"], pred["status"]))
    return _finish(pd.DataFrame(rows, columns=list(TABLE_COLUMNS[:-2])))


def _row(name: str, lab: pd.Series, pred: pd.Series) -> dict[str, Any]:
    return {"class": name, "labels": len(lab), "predictions": len(pred), "tp": int((pred == TP).sum()),
            "misclassified": int((lab == MISCLASSIFIED).sum()),
            "misclassified_predictions": int((pred == MISCLASSIFIED).sum()),
            "poor_localisation": int((lab == POOR).sum()), "missed": int((lab == MISSED).sum()),
            "spurious": int((pred == SPURIOUS).sum()), "duplicate": int((pred == DUPLICATE).sum())}


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    counts = table.columns[1:]
    table[counts] = table[counts].astype(np.int64)
    table["precision"] = np.divide(table["tp"], table["predictions"].where(table["predictions"] > 0))
    table["recall"] = np.divide(table["tp"], table["labels"].where(table["labels"] > 0))
    return table


def with_total(table: pd.DataFrame) -> pd.DataFrame:
    """status_table with a last row TOTAL_ROW summing the counts (precision and recall over all boxes)."""
    total = table[list(TABLE_COLUMNS[1:-2])].sum().to_dict()
    rows = pd.DataFrame([{"class": TOTAL_ROW, **total}], columns=list(TABLE_COLUMNS[:-2]))
    return pd.concat([table, _finish(rows)], ignore_index=True)
