"""Saved collections: named sets of points (a search result, an Explore selection) kept in the store."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core import export as _export
from core.auth import Actor, Permission, require
from core.errors import BadInputError, NotFoundError
from core.filters import Filter
from core.store.base import VectorStore
from core.store.documents import FORMAT, Upgrade, read_document
from core.store.names import validate_name
from core.types import DATASET, KEY, Hit

log = logging.getLogger(__name__)

KIND = "collection"  # the store document kind
FORMAT_VERSION = 1  # of the collection document (FORMAT field; layout 1 also wrote "version": 1)
UPGRADES: dict[int, Upgrade] = {}  # a bump needs UPGRADES[old]: collections cannot be recomputed


@dataclass(frozen=True)
class Collection:
    """A saved set of points of one space, in the order they were saved.

    ids: point ids; scores: aligned with ids (None where there is no score);
    refs: (dataset, key) aligned with ids: what each point was, readable after it is deleted;
    query: what made it (e.g. {"type": "text", "text": "...", "filter": [...]}), or None;
    items: only from load(): current payloads indexed by id, in collection order, with a
    "score" column; ids no longer in the store are listed in `missing`.
    """

    name: str
    project: str
    space: str
    ids: list[str]
    scores: list[float | None]
    refs: list[tuple[str | None, str | None]]
    created: str
    description: str = ""
    query: dict[str, Any] | None = None
    items: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def to_doc(self) -> dict[str, Any]:
        return {
            FORMAT: FORMAT_VERSION, "name": self.name, "space": self.space,
            "ids": self.ids, "scores": self.scores, "refs": [list(r) for r in self.refs],
            "created": self.created, "description": self.description, "query": self.query,
        }

    @classmethod
    def from_doc(cls, project: str, doc: dict[str, Any]) -> Collection:
        ids = [str(i) for i in doc.get("ids", [])]
        return cls(
            name=str(doc["name"]), project=project, space=str(doc["space"]), ids=ids,
            scores=list(doc.get("scores") or [None] * len(ids)),
            refs=[(r[0], r[1]) for r in doc.get("refs") or [(None, None)] * len(ids)],
            created=str(doc.get("created", "")), description=str(doc.get("description", "")),
            query=doc.get("query"),
        )


def _checked_name(name: str) -> str:
    """The name without surrounding spaces (typed into a text box), checked by the one name rule
    (core.store.names.validate_name); BadInputError otherwise."""
    return validate_name(name.strip() if isinstance(name, str) else name, "collection name")


def exists(store: VectorStore, project: str, name: str) -> bool:
    """True when the project has a collection of that name."""
    return store.get_document(project, KIND, _checked_name(name)) is not None


def _refs_for(store: VectorStore, project: str, space: str, ids: Sequence[str]) -> list[tuple[str | None, str | None]]:
    # Explore selections come as bare ids: look their (dataset, key) up once, at save time.
    frame = store.payloads(project, space, flt=Filter.ids(ids), fields=[DATASET, KEY])
    found = frame.reindex(list(ids))
    missing = [i for i, ds in zip(ids, found[DATASET], strict=True) if pd.isna(ds)]
    if missing:
        raise NotFoundError(
            f"{len(missing)} id(s) to save are not in space {space!r} of {project!r}: {', '.join(missing[:5])}"
        )
    return list(zip(found[DATASET], found[KEY], strict=True))


def save(
    store: VectorStore,
    project: str,
    name: str,
    ids: Sequence[str],
    *,
    actor: Actor,
    space: str,
    scores: Sequence[float | None] | None = None,
    description: str = "",
    query: dict[str, Any] | None = None,
    overwrite: bool = False,
    refs: Sequence[tuple[str | None, str | None]] | None = None,
) -> Collection:
    """Save ids (of one space) as a named collection; BadInputError if the name is taken.

    overwrite=True replaces an existing collection of that name (never done silently).
    scores / refs, when given, are aligned with ids. Duplicate ids keep their first place.
    PermissionDeniedError unless actor may write collections.
    """
    require(actor, Permission.COLLECTIONS, f"saving collection {name!r} in project {project!r}")
    name = _checked_name(name)
    store.get_space(project, space)  # NotFoundError for an unknown project / space
    order = list(dict.fromkeys(ids))
    if not order:
        raise BadInputError(f"Collection {name!r} would be empty: select or find some points first")
    for given, what in ((scores, "scores"), (refs, "refs")):
        if given is not None and len(given) != len(ids):
            raise ValueError(f"{what} must be aligned with ids ({len(ids)}), got {len(given)}")
    if not overwrite and store.get_document(project, KIND, name) is not None:
        raise BadInputError(
            f"A collection named {name!r} already exists in project {project!r}: "
            "choose another name or pass overwrite=True to replace it"
        )
    first = {i: n for n, i in reversed(list(enumerate(ids)))}  # first position of each id
    kept_scores = [None if scores is None else scores[first[i]] for i in order]
    coll = Collection(
        name=name, project=project, space=space, ids=order,
        scores=[None if v is None else float(v) for v in kept_scores],
        refs=_refs_for(store, project, space, order) if refs is None else [
            (refs[first[i]][0], refs[first[i]][1]) for i in order
        ],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        description=description, query=query,
    )
    store.put_document(project, KIND, name, coll.to_doc())
    log.info("Saved collection %r of %d points in %s/%s", name, len(order), project, space)
    return coll


def save_hits(
    store: VectorStore,
    project: str,
    name: str,
    hits: Sequence[Hit],
    *,
    actor: Actor,
    space: str,
    description: str = "",
    query: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Collection:
    """Save a search result (its ids, scores and the query that made it) as a collection."""
    return save(
        store, project, name, [h.id for h in hits], actor=actor, space=space, scores=[h.score for h in hits],
        refs=[(h.payload.get(DATASET), h.payload.get(KEY)) for h in hits],
        description=description, query=query, overwrite=overwrite,
    )


def _current_items(store: VectorStore, coll: Collection) -> tuple[pd.DataFrame, list[str]]:
    """(payloads indexed by id in collection order with a "score" column, ids no longer stored)."""
    frame = store.payloads(coll.project, coll.space, flt=Filter.ids(coll.ids))
    missing = [i for i in coll.ids if i not in frame.index]
    items = frame.reindex(coll.ids)
    items.index.name = "id"
    items.insert(0, "score", pd.Series(coll.scores, index=coll.ids, dtype="float64"))
    return items, missing


def get(store: VectorStore, project: str, name: str, *, with_items: bool = True) -> Collection:
    """Load a collection; with_items adds its points' current payloads (items, missing)."""
    doc = read_document(store, project, KIND, _checked_name(name), FORMAT_VERSION, UPGRADES)
    if doc is None:
        raise NotFoundError(f"No collection named {name!r} in project {project!r}")
    coll = Collection.from_doc(project, doc)
    if not with_items:
        return coll
    items, missing = _current_items(store, coll)
    if missing:
        log.warning("Collection %r: %d point(s) are no longer in the store", coll.name, len(missing))
    return replace(coll, items=items, missing=missing)


load = get


def list_collections(store: VectorStore, project: str) -> list[Collection]:
    """Every collection of the project (without items), sorted by name."""
    return [get(store, project, key, with_items=False) for key in store.list_documents(project, KIND)]


def delete(store: VectorStore, project: str, name: str, *, actor: Actor) -> None:
    """Delete a collection (the points stay); NotFoundError if there is none of that name,
    PermissionDeniedError unless actor may write collections."""
    require(actor, Permission.COLLECTIONS, f"deleting collection {name!r} of project {project!r}")
    if not store.delete_document(project, KIND, _checked_name(name)):
        raise NotFoundError(f"No collection named {name!r} in project {project!r}")
    log.info("Deleted collection %r of project %s", name, project)


def rename(store: VectorStore, project: str, old: str, new: str, *, actor: Actor,
           overwrite: bool = False) -> Collection:
    """Give a collection a new name; refuses to replace another collection unless overwrite.
    PermissionDeniedError unless actor may write collections."""
    require(actor, Permission.COLLECTIONS, f"renaming collection {old!r} of project {project!r}")
    coll = get(store, project, old, with_items=False)
    new = _checked_name(new)
    if new == coll.name:
        return coll
    if not overwrite and store.get_document(project, KIND, new) is not None:
        raise BadInputError(f"A collection named {new!r} already exists in project {project!r}")
    renamed = replace(coll, name=new)
    store.put_document(project, KIND, new, renamed.to_doc())
    store.delete_document(project, KIND, coll.name)
    return renamed


def export_frame(store: VectorStore, project: str, name: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """The collection's rows for a labeling queue (core.export.EXPORT_COLUMNS + extra)."""
    coll = get(store, project, name)
    assert coll.items is not None
    return _export.export_frame(coll.items, extra)


def export_csv(store: VectorStore, project: str, name: str, path: Path | None = None) -> bytes:
    """The collection as CSV bytes (also written to path when given)."""
    frame = export_frame(store, project, name)
    return _export.write(frame, path, "csv") if path is not None else _export.to_csv(frame)


def export_jsonl(store: VectorStore, project: str, name: str, path: Path | None = None) -> bytes:
    """The collection as JSONL bytes (also written to path when given)."""
    frame = export_frame(store, project, name)
    return _export.write(frame, path, "jsonl") if path is not None else _export.to_jsonl(frame)


def __getattr__(name: str) -> Any:
    # `collections.list(...)` is the contract name (docs/internal-apis.md); served lazily so that
    # `list` inside this module stays the builtin.
    if name == "list":
        return list_collections
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
