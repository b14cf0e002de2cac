"""Read a manifest (CSV / Parquet / JSONL, one row per item) into Items with labels and metadata."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core.config import Settings
from core.datasets.folder import check_root_allowed
from core.datasets.tables import Table, as_text, find_column, is_missing, json_safe, read_table
from core.errors import BadInputError
from core.types import Item

log = logging.getLogger(__name__)

# Auto-detected (case-insensitive, in this order) when no column is named explicitly.
PATH_COLUMNS: tuple[str, ...] = (
    "path", "uri", "image", "filepath", "file_path", "image_path", "filename", "file", "url", "image_url",
)
TEXT_COLUMNS: tuple[str, ...] = ("text", "sentence", "content", "body", "document")
ID_COLUMNS: tuple[str, ...] = ("id", "key", "item_id")

DEFAULT_ROLES: dict[str, str] = {
    "label": "label", "prediction": "prediction", "confidence": "confidence", "split": "split",
}


@dataclass(frozen=True)
class Columns:
    """Which column plays which role (None: no such column)."""

    path: str | None
    text: str | None
    id: str | None
    label: str | None
    prediction: str | None
    confidence: str | None
    split: str | None

    def roles(self) -> set[str]:
        return {c for c in vars(self).values() if c is not None}


def from_manifest(
    path: Path | str,
    settings: Settings | None = None,
    *,
    base_dir: Path | str | None = None,
    root: Path | str | None = None,
    path_column: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    label_column: str | None = "label",
    prediction_column: str | None = "prediction",
    confidence_column: str | None = "confidence",
    split_column: str | None = "split",
) -> list[Item]:
    """Items from a .csv / .tsv / .parquet / .jsonl manifest, in file order.

    The image column (path, uri, image, filepath, ... auto-detected) or the text column (text,
    sentence, ...) must exist. Relative paths resolve against base_dir (alias: root), else the
    manifest's folder; http(s) and other URLs are kept as they are. key: the id column (id, key,
    item_id, or id_column) when there is one, else the path as written, else "row-<n>" (0-based).
    label / prediction / confidence / split come from those columns when present (None
    disables one); every other column goes to meta with JSON-safe values. With settings, the
    base folder must be under settings.allowed_roots (each image is checked again at load).
    Raises BadInputError naming the file, line and column for unreadable files, unknown
    explicit columns, non-numeric confidences, and missing or duplicate ids.
    """
    if base_dir is not None and root is not None and Path(base_dir) != Path(root):
        raise ValueError("pass base_dir or its alias root, not both")
    table = read_table(path)
    base = Path(base_dir or root or table.path.parent).expanduser()
    base = check_root_allowed(base, settings) if settings is not None else base.resolve()
    columns = _resolve_columns(
        table, path_column, text_column, id_column,
        {"label": label_column, "prediction": prediction_column,
         "confidence": confidence_column, "split": split_column},
    )
    items = _items(table, columns, base)
    log.info("%s: %d rows (%s)", table.path, len(items),
             f"images from column {columns.path!r}" if columns.path else f"text from {columns.text!r}")
    return items


def _resolve_columns(
    table: Table, path_column: str | None, text_column: str | None, id_column: str | None,
    roles: dict[str, str | None],
) -> Columns:
    """Explicit names must exist (BadInputError); defaults are used only when present."""
    def pick(explicit: str | None, candidates: tuple[str, ...]) -> str | None:
        return table.column(explicit) if explicit is not None else find_column(table.frame, candidates)

    path_col = pick(path_column, PATH_COLUMNS if text_column is None else ())
    text_col = pick(text_column, TEXT_COLUMNS if path_col is None else ())
    if path_col is None and text_col is None:
        raise BadInputError(
            f"{table.path}: no image column ({', '.join(PATH_COLUMNS)}) and no text column "
            f"({', '.join(TEXT_COLUMNS)}); columns are: {', '.join(map(str, table.frame.columns))}. "
            "Name one with --path-column or --text-column"
        )
    found: dict[str, str | None] = {}
    for role, name in roles.items():
        if name is None:
            found[role] = None
        elif name == DEFAULT_ROLES[role]:
            found[role] = find_column(table.frame, (name,))
        else:
            found[role] = table.column(name)
    return Columns(path=path_col, text=text_col, id=pick(id_column, ID_COLUMNS), **found)


def _items(table: Table, columns: Columns, base: Path) -> list[Item]:
    meta_columns = [c for c in table.frame.columns if str(c) not in columns.roles()]
    seen: dict[str, int] = {}
    items: list[Item] = []
    for row, record in enumerate(table.frame.to_dict("records")):
        raw_path = as_text(record[columns.path]) if columns.path else None
        key = _key(table, columns, record, row, raw_path)
        if key in seen:
            raise BadInputError(
                f"{table.path}: duplicate id {key!r} in {table.where(seen[key])} and {table.where(row)}"
                + (f" (column {columns.id!r})" if columns.id else " (use an id column to tell them apart)")
            )
        seen[key] = row
        items.append(Item(
            key=key,
            uri=_uri(raw_path, base) if raw_path else None,
            text=as_text(record[columns.text]) if columns.text else None,
            label=as_text(record[columns.label]) if columns.label else None,
            prediction=as_text(record[columns.prediction]) if columns.prediction else None,
            confidence=_confidence(table, columns.confidence, record, row),
            split=as_text(record[columns.split]) if columns.split else None,
            meta={str(name): json_safe(record[name]) for name in meta_columns},
        ))
    return items


def _key(table: Table, columns: Columns, record: dict[Any, Any], row: int, raw_path: str | None) -> str:
    if columns.id is not None:
        key = as_text(record[columns.id])
        if key is None:
            raise BadInputError(f"{table.path}: {table.where(row)} has no id (column {columns.id!r})")
        return key
    return raw_path if raw_path else f"row-{row}"


def _uri(raw: str, base: Path) -> str:
    """An absolute local path (relative ones against base), or a URL kept as written."""
    parsed = urlparse(raw)
    if parsed.scheme == "file" or len(parsed.scheme) <= 1:  # one letter: a Windows drive
        local = Path(parsed.path if parsed.scheme == "file" else raw).expanduser()
        return str((local if local.is_absolute() else base / local).resolve())
    return raw


def _confidence(table: Table, column: str | None, record: dict[Any, Any], row: int) -> float | None:
    if column is None or is_missing(record[column]):
        return None
    value = record[column]
    try:
        number = float(value)
    except (TypeError, ValueError) as e:
        raise BadInputError(
            f"{table.path}: {table.where(row)}, column {column!r}: confidence {value!r} is not a number"
        ) from e
    if number != number:  # NaN written as text
        return None
    return number
