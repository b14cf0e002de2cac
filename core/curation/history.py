"""The append-only curation history of a project: one store document per operation, with its rows.

Every change to a label, the tags or the review state of points is one entry (kind "history",
key = the entry id, sortable by time), whatever the number of points: a bulk accept of 10k
suggestions is one document of 10k rows, stored column by column. Entries are never rewritten:
an undo is a new entry naming the one it undoes (`undoes`), and `undone_by` is derived when the
history is read. Entries being immutable, a process keeps the ones it has read and fetches only
new keys (reading the history is one listing of keys plus the entries not seen before).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.auth.identity import who_am_i  # noqa: F401  (kept here for older callers)
from core.store.base import VectorStore
from core.store.documents import FORMAT, load_versioned

log = logging.getLogger(__name__)

KIND = "history"  # the store document kind
FORMAT_VERSION = 1
FIELDS = ("label", "tags", "reviewed")  # the payload fields an entry can change (core.types names)
WHYS = ("manual", "finding", "import", "undo")
_CACHE_LIMIT = 4096  # entries kept in memory per process (immutable, so never stale)
_cache: dict[tuple[str, str, str], HistoryEntry] = {}


@dataclass(frozen=True)
class HistoryRow:
    """One point's change: its id, (dataset, item key) readable after it is deleted, old and new value."""

    point: str
    dataset: str
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class HistoryEntry:
    """One operation: entry id (sortable by time), at (ISO 8601 UTC), who, field (one of FIELDS),
    why (one of WHYS), note, rows; undoes: the entry this one undoes; undone_by: the undo entry
    that reverted this one (None when in effect)."""

    entry: str
    at: str
    who: str
    field: str
    why: str
    note: str
    rows: tuple[HistoryRow, ...]
    undoes: str | None = None
    undone_by: str | None = None

    def to_doc(self) -> dict[str, Any]:
        columns = {name: [getattr(r, name) for r in self.rows] for name in ("point", "dataset", "key", "old", "new")}
        return {FORMAT: FORMAT_VERSION, "entry": self.entry, "at": self.at, "who": self.who, "field": self.field,
                "why": self.why, "note": self.note, "undoes": self.undoes, "rows": columns}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> HistoryEntry:
        c = doc["rows"]
        rows = tuple(HistoryRow(*values) for values in zip(c["point"], c["dataset"], c["key"], c["old"], c["new"],
                                                            strict=True))
        return cls(entry=str(doc["entry"]), at=str(doc["at"]), who=str(doc["who"]), field=str(doc["field"]),
                   why=str(doc["why"]), note=str(doc.get("note", "")), rows=rows, undoes=doc.get("undoes"))


def check_who(who: str) -> None:
    """ValueError unless who is non-empty text (checked before anything is written)."""
    if not who or not isinstance(who, str):
        raise ValueError("history entries need a who (an Actor's name: core.auth)")


def new_entry_id(now: datetime | None = None) -> str:
    """A fresh entry id that sorts by time: 20261130T131742123456Z-<6 hex>."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:6]}"


def append_entry(store: VectorStore, project: str, *, field: str, why: str, who: str, rows: Sequence[HistoryRow],
                 note: str = "", undoes: str | None = None) -> HistoryEntry:
    """Write one new entry (after its changes were written to the points) and return it."""
    if field not in FIELDS:
        raise ValueError(f"history field must be one of {FIELDS}, got {field!r}")
    if why not in WHYS:
        raise ValueError(f"history why must be one of {WHYS}, got {why!r}")
    check_who(who)
    now = datetime.now(UTC)
    entry = HistoryEntry(new_entry_id(now), now.isoformat(timespec="seconds"), who, field, why, note,
                         tuple(rows), undoes)
    store.put_document(project, KIND, entry.entry, entry.to_doc())
    _remember(store, project, entry)
    log.info("history %s of %s: %s %s of %d point(s) by %s", entry.entry, project, why, field, len(rows), who)
    return entry


def _remember(store: VectorStore, project: str, entry: HistoryEntry) -> None:
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[(store.describe(), project, entry.entry)] = entry


def all_entries(store: VectorStore, project: str) -> list[HistoryEntry]:
    """Every entry of the project, oldest first, with undone_by filled in."""
    where = store.describe()
    entries = []
    for key in store.list_documents(project, KIND):
        entry = _cache.get((where, project, key))
        if entry is None:
            doc = load_versioned(KIND, key, store.get_document(project, KIND, key), FORMAT_VERSION)
            if doc is None:  # deleted between the listing and the read
                continue
            entry = HistoryEntry.from_doc(doc)
            _remember(store, project, entry)
        entries.append(entry)
    return _with_undone_by(entries)


def _with_undone_by(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """undone_by of each entry: the undo entry that reverted it, unless that undo was undone itself
    (a redo), which puts the entry back in effect."""
    by_id = {e.entry: e for e in entries}
    undone: dict[str, str] = {}
    for e in entries:  # oldest first: later undos win
        if e.undoes is None:
            continue
        undone[e.undoes] = e.entry
        target = by_id.get(e.undoes)
        if target is not None and target.undoes is not None and undone.get(target.undoes) == target.entry:
            del undone[target.undoes]  # undoing an undo re-applies what it had undone
    return [replace(e, undone_by=undone.get(e.entry)) for e in entries]


def read_history(store: VectorStore, project: str, *, dataset: str | None = None, key: str | None = None,
                 limit: int | None = None) -> list[HistoryEntry]:
    """The entries of a project, newest first; with dataset and/or key only the entries touching
    those items, each holding only their rows. limit: at most that many entries."""
    entries = all_entries(store, project)[::-1]
    if dataset is not None or key is not None:
        narrowed = []
        for e in entries:
            rows = tuple(r for r in e.rows if (dataset is None or r.dataset == dataset) and (key is None or r.key == key))
            if rows:
                narrowed.append(replace(e, rows=rows))
        entries = narrowed
    return entries[:limit] if limit is not None else entries


def find_entry(entries: Sequence[HistoryEntry], entry: str) -> HistoryEntry | None:
    """The entry with this id, or the only one whose id starts with it (a prefix typed on the CLI)."""
    exact = [e for e in entries if e.entry == entry]
    if exact:
        return exact[0]
    prefixed = [e for e in entries if e.entry.startswith(entry)]
    return prefixed[0] if len(prefixed) == 1 else None
