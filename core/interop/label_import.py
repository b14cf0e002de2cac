"""Import corrected labels from a labeling tool's file: read it, preview what changes, apply through the curation API."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.auth import Actor, Permission, require
from core.curation.points import current_payloads
from core.errors import BadInputError, NotFoundError
from core.ids import point_id
from core.interop import coco, labelstudio
from core.interop.rows import ID_FIELD, ImportedLabel, point_or_none, text_or_none, unguarded
from core.store.base import VectorStore
from core.types import DATASET, KEY, LABEL

if TYPE_CHECKING:
    from core.curation.history import HistoryEntry

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("auto", "labelstudio", "coco", "csv")


def detect_format(data: bytes, name: str) -> str:
    """"csv" for a .csv / .tsv name, else from the JSON: a list is a Label Studio export, an object
    with "images" a COCO file; BadInputError naming the file otherwise."""
    if name.lower().endswith((".csv", ".tsv")):
        return "csv"
    parsed = _json(data, name)
    if isinstance(parsed, list):
        return "labelstudio"
    if isinstance(parsed, dict) and "images" in parsed:
        return "coco"
    raise BadInputError(f"{name}: neither a Label Studio export (a JSON list of tasks), a COCO file (a JSON "
                        "object with 'images') nor a .csv file")


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise BadInputError(f"{name}: not UTF-8 text ({e})") from e
    except json.JSONDecodeError as e:
        raise BadInputError(f"{name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e


def read_labels(data: bytes, name: str, fmt: str = "auto") -> list[ImportedLabel]:
    """The labels a file gives, one per task / image / row, in file order. fmt: one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    fmt = detect_format(data, name) if fmt == "auto" else fmt
    if fmt == "csv":
        return parse_csv(data, name)
    parsed = _json(data, name)
    return labelstudio.parse_export(parsed, name) if fmt == "labelstudio" else coco.parse_coco(parsed, name)


def parse_csv(data: bytes, name: str) -> list[ImportedLabel]:
    """Rows of a CSV with a "label" column and "embedscope_id" / "id" (point ids) or "key" (with
    "dataset" optional): our own export, a Label Studio CSV export or a hand-made sheet. Cells a
    spreadsheet guard prefixed with "'" are read back as exported."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False,
                            sep="\t" if name.lower().endswith(".tsv") else ",", encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise BadInputError(f"{name}: not a readable CSV file ({e})") from e
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if LABEL not in columns:
        raise BadInputError(f"{name}: no 'label' column (columns: {', '.join(map(str, frame.columns))})")
    ids = [c for c in (ID_FIELD, "id") if c in columns]
    if not ids and KEY not in columns:
        raise BadInputError(f"{name}: needs an 'id' / '{ID_FIELD}' column or a 'key' column to match items")
    out = []
    for n, row in enumerate(frame.to_dict("records")):
        cell = {k: unguarded(text_or_none(row[c])) for k, c in columns.items()}
        point = next((p for p in (point_or_none(cell.get(c)) for c in ids) if p), None)
        out.append(ImportedLabel(point, cell.get(DATASET), cell.get(KEY), cell.get(LABEL), f"row {n + 2}"))
    return out


@dataclass(frozen=True)
class PreviewRow:
    """One matched item: its point, dataset, key, current label (old) and the file's (new)."""

    point: str
    dataset: str | None
    key: str | None
    old: str | None
    new: str
    where: str


@dataclass
class ImportPreview:
    """What an import would do: changed and unchanged items, rows naming no known item (unknown)
    and rows that give no label (not labeled in the tool: left alone)."""

    source: str
    changed: list[PreviewRow] = field(default_factory=list)
    unchanged: list[PreviewRow] = field(default_factory=list)
    unknown: list[ImportedLabel] = field(default_factory=list)
    unlabeled: list[ImportedLabel] = field(default_factory=list)

    def summary(self) -> str:
        """'3 changed, 17 unchanged, 1 unknown, 2 without a label' (from <source>)."""
        return (f"{len(self.changed)} changed, {len(self.unchanged)} unchanged, {len(self.unknown)} unknown, "
                f"{len(self.unlabeled)} without a label (from {self.source})")

    def frame(self) -> pd.DataFrame:
        """One row per file row: status (changed / unchanged / unknown / no label), dataset, key,
        old, new, where; changes first."""
        rows: list[tuple[str, str | None, str | None, str | None, str | None, str]] = [
            ("changed", r.dataset, r.key, r.old, r.new, r.where) for r in self.changed]
        rows += [("unchanged", r.dataset, r.key, r.old, r.new, r.where) for r in self.unchanged]
        rows += [("unknown", u.dataset, u.key or u.point, None, u.label, u.where) for u in self.unknown]
        rows += [("no label", u.dataset, u.key or u.point, None, None, u.where) for u in self.unlabeled]
        return pd.DataFrame(rows, columns=["status", "dataset", "key", "old", "new", "where"])


def _candidates(project: str, row: ImportedLabel, dataset: str | None) -> list[str]:
    """Point ids the row may name, best first: its own id; (its dataset or `dataset`, key); and
    for a "dataset/key" file name (a COCO export spanning datasets), that split."""
    found = [row.point] if row.point else []
    if row.key is not None:
        ds = row.dataset or dataset
        if ds:
            found.append(point_id(project, ds, row.key))
        if row.dataset is None and "/" in row.key:
            head, tail = row.key.split("/", 1)
            found.append(point_id(project, head, tail))
    return found


def preview_import(store: VectorStore, project: str, labels: Sequence[ImportedLabel], *,
                   dataset: str | None = None, source: str = "") -> ImportPreview:
    """Match each row to an item (by point id, else by (dataset, key); `dataset` for rows that name
    none) and compare labels. A point named twice keeps the file's last label."""
    preview = ImportPreview(source)
    if project not in store.list_projects():
        raise NotFoundError(f"No project named {project!r} in the store")
    wanted = [(row, _candidates(project, row, dataset)) for row in labels]
    # Read across the project's spaces (core.curation.points: the rule set_labels itself uses).
    current = current_payloads(store, project, [p for _, cands in wanted for p in cands], [LABEL], missing_ok=True)
    matched: dict[str, PreviewRow] = {}
    for row, cands in wanted:
        if row.label is None:
            preview.unlabeled.append(row)
            continue
        pid = next((p for p in cands if p in current.index), None)
        if pid is None:
            preview.unknown.append(row)
            continue
        now = current.loc[pid]
        if pid in matched:
            log.warning("%s: %s names %s again: its label %r replaces %r", source, row.where, pid, row.label,
                        matched[pid].new)
        matched[pid] = PreviewRow(pid, text_or_none(now[DATASET]), text_or_none(now[KEY]),
                                  text_or_none(now[LABEL]), row.label, row.where)
    for item in matched.values():
        (preview.unchanged if item.old == item.new else preview.changed).append(item)
    return preview


def apply_import(store: VectorStore, project: str, preview: ImportPreview, *, actor: Actor,
                 note: str = "") -> HistoryEntry | None:
    """Write the preview's changes through the curation API (one history entry, why "import");
    None when nothing changes. PermissionDeniedError unless actor may relabel."""
    from core.curation.labels import set_labels

    require(actor, Permission.RELABEL, f"importing labels into project {project!r}")
    if not preview.changed:
        return None
    return set_labels(store, project, [r.point for r in preview.changed], [r.new for r in preview.changed],
                      actor=actor, why="import", note=note or f"imported from {preview.source}")
