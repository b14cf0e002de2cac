"""Read a manifest (CSV / Parquet / JSONL, one row per item) into Items with labels and metadata."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.datasets.folder import check_root_allowed
from core.datasets.images import local_path, path_problem, shown, stored_uri, url_scheme
from core.datasets.tables import Table, as_text, find_column, is_missing, json_safe, read_table
from core.errors import BadInputError
from core.ids import readable_key
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
    require_content: bool = True,
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

    require_content=False (own vectors carry the embeddings): a manifest of ids, labels and
    metadata only, with no image or text column, is accepted; it then needs an id column.
    A path no file system can hold (a NUL byte, a name over 255 bytes) is kept as written and
    logged with its line: that row is rejected at ingest, the others are read.
    """
    if base_dir is not None and root is not None and Path(base_dir) != Path(root):
        raise ValueError("pass base_dir or its alias root, not both")
    table = read_table(path)
    base = Path(base_dir or root or table.path.parent).expanduser()
    base = check_root_allowed(base, settings) if settings is not None else base.resolve()
    columns = _resolve_columns(
        table, path_column, text_column, id_column,
        {"label": label_column, "prediction": prediction_column,
         "confidence": confidence_column, "split": split_column}, require_content,
    )
    items = _items(table, columns, base)
    content = (f"images from column {columns.path!r}" if columns.path else
               f"text from {columns.text!r}" if columns.text else f"ids from {columns.id!r}")
    log.info("%s: %d rows (%s)", table.path, len(items), content)
    return items


def require_reachable(items: Sequence[Item], settings: Settings, manifest: Path | str) -> None:
    """BadInputError when the manifest's items have local image paths and none of them lies under
    settings.allowed_roots: the ingest could store nothing, so say so before a model is loaded,
    naming the way out. Some paths outside (others inside) are rejected one by one at ingest."""
    local: list[Path] = []
    for item in items:
        if item.uri and url_scheme(item.uri) in (None, "file") and path_problem(item.uri) is None:
            try:
                local.append(local_path(item.uri))
            except BadInputError:
                continue  # rejected with its reason at ingest
    roots = settings.allowed_roots
    if not local or any(path.is_relative_to(root) for path in local for root in roots):
        return
    raise BadInputError(
        f"{manifest}: none of its {len(local)} image paths is under the allowed data roots "
        f"({', '.join(str(r) for r in roots)}); e.g. {shown(local[0])}. Name their folder with "
        "--data-root DIR (this run) or add it to the setting EMBEDSCOPE_DATA_ROOTS"
    )


def _resolve_columns(
    table: Table, path_column: str | None, text_column: str | None, id_column: str | None,
    roles: dict[str, str | None], require_content: bool = True,
) -> Columns:
    """Explicit names must exist (BadInputError); defaults are used only when present."""
    def pick(explicit: str | None, candidates: tuple[str, ...]) -> str | None:
        return table.column(explicit) if explicit is not None else find_column(table.frame, candidates)

    path_col = pick(path_column, PATH_COLUMNS if text_column is None else ())
    text_col = pick(text_column, TEXT_COLUMNS if path_col is None else ())
    id_col = pick(id_column, ID_COLUMNS)
    if path_col is None and text_col is None and not require_content and id_col is None:
        raise BadInputError(
            f"{table.path}: no id column ({', '.join(ID_COLUMNS)}) to join with the embeddings file; "
            f"columns are: {', '.join(map(str, table.frame.columns))}. Name one with --id-column"
        )
    if path_col is None and text_col is None and require_content:
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
    return Columns(path=path_col, text=text_col, id=id_col, **found)


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
            uri=_uri(table, row, columns, raw_path, base) if raw_path else None,
            text=as_text(record[columns.text]) if columns.text else None,
            label=as_text(record[columns.label]) if columns.label else None,
            prediction=as_text(record[columns.prediction]) if columns.prediction else None,
            confidence=_confidence(table, columns.confidence, record, row),
            split=as_text(record[columns.split]) if columns.split else None,
            meta={readable_key(str(name)): json_safe(record[name]) for name in meta_columns},
        ))
    return items


def _key(table: Table, columns: Columns, record: dict[Any, Any], row: int, raw_path: str | None) -> str:
    if columns.id is not None:
        key = as_text(record[columns.id])
        if key is None:
            raise BadInputError(f"{table.path}: {table.where(row)} has no id (column {columns.id!r})")
        return key
    return raw_path if raw_path else f"row-{row}"


def _uri(table: Table, row: int, columns: Columns, raw: str, base: Path) -> str:
    """An absolute local path (relative ones against base; file:// URIs percent-decoded), or a URL
    kept as written (load_image rejects it, naming its scheme). A path no file system can hold is
    kept as written too: its row is rejected at ingest, and logged here with its line."""
    problem = path_problem(raw)
    if problem is not None:
        log.warning("%s: %s, column %r: %s; the row will be rejected", table.path, table.where(row),
                    columns.path, problem)
        return raw
    scheme = url_scheme(raw)
    if scheme is not None and scheme != "file":
        return raw
    try:
        local = local_path(raw)
    except BadInputError as e:  # a file:// URI of another host, or decoding to an impossible path
        log.warning("%s: %s, column %r: %s; the row will be rejected", table.path, table.where(row),
                    columns.path, e)
        return raw
    return stored_uri((local if local.is_absolute() else base / local).resolve())


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
