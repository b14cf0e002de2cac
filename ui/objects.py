"""Detection objects on the Explore map, the pure part: the match-status palette, the class column, boxes.

No streamlit here (ui.objects_view draws): the logic is tested without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.types import BOX, CONFIDENCE, LABEL, LABEL_SOURCE, MATCH, PARENT, PREDICTION, SOURCE

CLASS = "class"  # the object's class whatever its source: the label of a label box, else the prediction
# Match statuses (core.analysis.box_matching.MATCH_STATUSES) with a colour that says what they mean,
# in draw order: correct boxes underneath, errors on top.
MATCH_COLOURS: dict[str, str] = {
    "tp": "#2ca02c",                 # green: label and prediction agree
    "duplicate": "#8c564b",          # brown: a second prediction of one object
    "poor_localisation": "#bcbd22",  # olive: right class, box off
    "misclassified": "#9467bd",      # purple: overlaps a label of another class
    "spurious": "#ff7f0e",           # orange: a prediction with no object
    "missed": "#d62728",             # red: a label no prediction found
}
UNMATCHED_COLOUR = "#7f7f7f"  # a status this palette does not know (a newer matcher)


@dataclass(frozen=True)
class DrawnBox:
    """One box to draw on its image: pixels, whether it is a label (solid) or a prediction (dashed)."""

    point: str
    box: tuple[float, float, float, float]
    is_label: bool
    cls: str
    status: str | None
    score: float | None

    @property
    def colour(self) -> str:
        return MATCH_COLOURS.get(self.status or "", UNMATCHED_COLOUR)


def as_box(value: Any) -> tuple[float, float, float, float] | None:
    """[x0, y0, x1, y1] (a list, tuple or numpy array after a Parquet round trip) as floats, or None
    when it is not four finite numbers with x1 > x0 and y1 > y0."""
    if value is None or isinstance(value, (str, bytes, dict)):
        return None
    try:
        numbers = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    if numbers.shape != (4,) or not np.isfinite(numbers).all():
        return None
    x0, y0, x1, y1 = (float(v) for v in numbers)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def class_column(frame: pd.DataFrame) -> pd.Series | None:
    """Per object row: its class (label of a label box, prediction of a predicted one); None
    without a SOURCE column (a map of images)."""
    if SOURCE not in frame.columns:
        return None
    label = frame[LABEL] if LABEL in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    pred = frame[PREDICTION] if PREDICTION in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    source = frame[SOURCE]
    values = np.where((source == LABEL_SOURCE).to_numpy(), label.to_numpy(dtype=object), pred.to_numpy(dtype=object))
    values[source.isna().to_numpy()] = None  # images next to objects in one frame have no class
    return pd.Series(values, index=frame.index, name=CLASS, dtype=object)


def boxes_of_parent(frame: pd.DataFrame, parent: str) -> list[DrawnBox]:
    """Every object of `frame` (indexed by point id) on the image `parent`, labels first."""
    if PARENT not in frame.columns or BOX not in frame.columns:
        return []
    rows = frame[frame[PARENT].to_numpy(dtype=object) == parent]
    return [b for b in (drawn_box(str(pid), row) for pid, row in rows.iterrows()) if b is not None]


def drawn_box(point: str, row: pd.Series | dict[str, Any]) -> DrawnBox | None:
    """The DrawnBox of one object payload, or None without a usable box."""
    box = as_box(row.get(BOX))
    if box is None:
        return None
    is_label = row.get(SOURCE) == LABEL_SOURCE
    cls = row.get(LABEL) if is_label else row.get(PREDICTION)
    score = row.get(CONFIDENCE)
    status = row.get(MATCH)
    return DrawnBox(point, box, is_label, "" if _null(cls) else str(cls), None if _null(status) else str(status),
                    None if score is None or _null(score) else float(score))


def _null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
