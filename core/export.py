"""Export search results and collections as CSV / JSONL rows ready for a labeling queue.

Every CSV cell written by the project goes through guard_cell (to_csv and csv_row use it): a text
cell that a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import BadInputError
from core.types import (
    CONFIDENCE,
    DATASET,
    KEY,
    LABEL,
    META,
    PREDICTION,
    SPLIT,
    TEXT,
    URI,
    Hit,
)

log = logging.getLogger(__name__)

# The columns of every export, in this order; `extra` payload fields come after them.
EXPORT_COLUMNS: tuple[str, ...] = (
    "id", URI, LABEL, PREDICTION, "score", DATASET, KEY, SPLIT, TEXT, CONFIDENCE,
)
FORMATS: tuple[str, ...] = ("csv", "jsonl")
# A text cell starting with one of these is run as a formula by Excel / LibreOffice / Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ...except a plain number written as text ("-0.5", "+3e5"): a spreadsheet reads it as that number.
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def guard_cell(value: Any) -> Any:
    """A text value a spreadsheet would evaluate, prefixed with "'"; anything else unchanged.

    Only strings are guarded: numbers (-0.5), None and NaN stay what they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def guard_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame with guard_cell applied to the header and every text (object) column."""
    out = frame.copy()
    out.columns = [guard_cell(str(c)) for c in out.columns]
    for position, dtype in enumerate(out.dtypes):
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            out.isetitem(position, out.iloc[:, position].map(guard_cell, na_action="ignore"))
    return out


def csv_row(values: Iterable[Any]) -> list[Any]:
    """One row for a csv.writer, every cell guarded (for writers that do not build a frame)."""
    return [guard_cell(v) for v in values]


def _payload_value(payload: dict[str, Any], field: str) -> Any:
    """payload[field], following `meta.<name>` into the nested metadata object."""
    if field.startswith(f"{META}.") and field not in payload:
        meta = payload.get(META) or {}
        return meta.get(field[len(META) + 1:]) if isinstance(meta, dict) else None
    return payload.get(field)


def hits_frame(hits: Sequence[Hit], extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per hit, best first: EXPORT_COLUMNS then the `extra` payload fields ("meta.x")."""
    columns = list(EXPORT_COLUMNS) + [f for f in extra if f not in EXPORT_COLUMNS]
    rows = []
    for hit in hits:
        row = {name: _payload_value(hit.payload, name) for name in columns}
        row["id"], row["score"] = hit.id, float(hit.score)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def export_frame(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Any frame of items (id as a column or as the index) reduced to the export columns.

    Columns the frame lacks are added empty, so every export has the same header.
    """
    data = frame if "id" in frame.columns else frame.rename_axis("id").reset_index()
    columns = list(EXPORT_COLUMNS) + [f for f in extra if f not in EXPORT_COLUMNS]
    out = pd.DataFrame({name: data[name] if name in data.columns else None for name in columns})
    return out.reset_index(drop=True)


def _clean(value: Any) -> Any:
    # JSON has no NaN: missing values (None, NaN, NA) become null.
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _clean(value.item())  # numpy scalars -> Python
    return value


def to_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a header row, no index column, formula-like text cells guarded (guard_cell).

    Pass an export_frame / hits_frame, or any frame (the error-clusters table).
    """
    # CRLF rows (RFC 4180): the csv module then quotes a cell holding a bare "\r" too, which a
    # spreadsheet would otherwise read as a row break starting a new, unguarded cell.
    return guard_frame(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def to_jsonl(frame: pd.DataFrame) -> bytes:
    """One JSON object per line (UTF-8, nulls for missing values)."""
    lines = [
        json.dumps({col: _clean(val) for col, val in zip(frame.columns, row, strict=True)}, ensure_ascii=False)
        for row in frame.itertuples(index=False, name=None)
    ]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def format_for(path: Path) -> str:
    """"csv" or "jsonl" from a file name; BadInputError for any other suffix."""
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix)
    if fmt is None:
        raise BadInputError(f"Cannot export to {str(path)!r}: the file name must end in .csv or .jsonl")
    return fmt


def to_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """The frame encoded as "csv" or "jsonl"."""
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "jsonl":
        return to_jsonl(frame)
    raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")


def write(frame: pd.DataFrame, path: Path, fmt: str | None = None) -> bytes:
    """Write the frame to path (format fmt, else from the suffix; folders created); return the bytes."""
    data = to_bytes(frame, fmt or format_for(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as e:
        raise BadInputError(f"Cannot write the export file {str(path)!r}: {e}") from e
    log.info("Exported %d rows to %s", len(frame), path)
    return data
