"""One imported label (what a labeling tool's file says about one item) and the cell rules shared by the readers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from core.export import FORMULA_START

# The field every export writes next to the item (Label Studio task data / meta, COCO image, CSV
# column), so an import matches an item by its point id even when the tool renames files.
ID_FIELD = "embedscope_id"


@dataclass(frozen=True)
class ImportedLabel:
    """One item's label as a labeling tool's file gives it.

    point: our point id when the file carries it (None otherwise); dataset / key: the item's
    dataset and key when the file carries them (key alone: matched in the dataset the user names);
    label: the label chosen, None when the item was not labeled (skipped, cancelled, empty);
    where: the place in the file, for messages ("task 3", "row 7", "image 12").
    """

    point: str | None
    dataset: str | None
    key: str | None
    label: str | None
    where: str

    @property
    def name(self) -> str:
        """How to name the item to a person: dataset/key, the key, or the point id."""
        if self.key is not None:
            return f"{self.dataset}/{self.key}" if self.dataset else self.key
        return self.point or self.where


def point_or_none(value: Any) -> str | None:
    """value when it is a point id (a UUID string), else None: Label Studio's own integer task
    ids, or a CSV "id" column of another tool, are not ours."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def text_or_none(value: Any) -> str | None:
    """A cell or JSON value as text; None for null / empty / NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip() if not isinstance(value, str) else value.strip()
    return text or None


def unguarded(value: str | None) -> str | None:
    """A cell as exported before core.export.guard_cell prefixed "'" to keep a spreadsheet from
    running it ("'=x" -> "=x"); any other value unchanged."""
    if value is not None and value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value
