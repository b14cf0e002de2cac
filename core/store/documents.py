"""The documents area: JSON documents keyed by (project, kind, key), stored as Qdrant points.

Both adapters keep documents inside Qdrant (one extra shard / collection with a 1-d dummy
vector), so a server deployment keeps all state on the server. A document is serialised to
JSON and cut into chunks of CHUNK_CHARS characters (a 100k-point 2-D map is a few MB), each
chunk one point tagged with a fresh `version`; a small "head" point names the current version.
A put writes the new chunks first, then the head, then deletes older chunks, so a reader never
assembles a half-written document.

Every persisted document carries its kind's format version in FORMAT, and every reader goes
through load_versioned() (the one checked loader): a newer format is refused by name, an older
one is upgraded step by step.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.errors import StoreTooNewError
from core.filters import Condition, Filter

if TYPE_CHECKING:
    from core.store.base import VectorStore

CHUNK_CHARS = 1_000_000
_NAMESPACE = uuid.UUID("0b7c8f0e-3f4a-4e44-9d7b-2f3b1d6f9a10")
# Payload fields of document points (all keyword-indexed but PART and DATA).
PROJECT, KIND, KEY, VERSION, ROLE, PART, DATA = "project", "kind", "key", "version", "role", "part", "data"
HEAD, CHUNK = "head", "chunk"  # values of ROLE (a keyword: Qdrant Edge cannot match booleans)
KEYWORD_DOC_FIELDS = (PROJECT, KIND, KEY, VERSION, ROLE)
FORMAT = "format"  # the field of every persisted document holding its kind's format version
LEGACY_FORMAT = 1  # documents written before formats were recorded (schema 1) are format 1
# upgrades[n] turns a document of format n into format n + 1; None means "stale: recompute it".
Upgrade = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def format_of(doc: dict[str, Any]) -> int:
    """The format version a document was written in (LEGACY_FORMAT when it carries none)."""
    value = doc.get(FORMAT, LEGACY_FORMAT)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"document format must be an int, got {value!r}")
    return value


def load_versioned(kind: str, key: str, doc: dict[str, Any] | None, current: int,
                   upgrades: Mapping[int, Upgrade] | None = None) -> dict[str, Any] | None:
    """The one checked loader of persisted documents: doc as format `current` (None stays None).

    A newer format raises StoreTooNewError naming the kind, key and both versions. An older one
    is upgraded one step at a time through upgrades; a step may return None (the document is a
    stale result: recompute it). A missing step is a programmer mistake (ValueError).
    """
    if doc is None:
        return None
    found = format_of(doc)
    if found > current:
        raise StoreTooNewError(
            f"The {kind} document {key!r} was written in format {found} by a newer embedscope; this one "
            f"reads up to format {current}. Upgrade embedscope to read it."
        )
    while found < current:
        step = (upgrades or {}).get(found)
        if step is None:
            raise ValueError(f"no upgrade of {kind} documents from format {found} to {found + 1}")
        upgraded = step(dict(doc))
        if upgraded is None:
            return None
        doc, found = {**upgraded, FORMAT: found + 1}, found + 1
    return doc


def read_document(store: VectorStore, project: str, kind: str, key: str, current: int,
                  upgrades: Mapping[int, Upgrade] | None = None) -> dict[str, Any] | None:
    """store.get_document through load_versioned (what every pipeline reader calls)."""
    return load_versioned(kind, key, store.get_document(project, kind, key), current, upgrades)


class DocBackend(Protocol):
    """The three raw point operations an adapter provides for its documents shard/collection."""

    def doc_upsert(self, points: list[tuple[str, dict[str, Any]]]) -> None: ...

    def doc_scroll(self, flt: Filter) -> list[tuple[str, dict[str, Any]]]: ...

    def doc_delete(self, flt: Filter) -> None: ...


def _json_default(value: Any) -> Any:
    # numpy values are common in results (coords, scores); store them as plain JSON.
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _doc_filter(project: str, kind: str, key: str | None = None, **extra: Any) -> Filter:
    fields = {PROJECT: project, KIND: kind, **({KEY: key} if key is not None else {}), **extra}
    return Filter(must=tuple(Condition(k, equals=v) for k, v in fields.items()))


class DocumentArea:
    """put / get / list / delete of JSON documents over a DocBackend."""

    def __init__(self, backend: DocBackend) -> None:
        self._backend = backend

    def put(self, project: str, kind: str, key: str, doc: dict[str, Any]) -> None:
        """Store doc (JSON-serialisable; numpy values are converted), replacing the old one."""
        try:
            text = json.dumps(doc, default=_json_default, separators=(",", ":"))
        except TypeError as e:
            raise ValueError(f"Document {kind}/{key} of project {project!r} is not JSON: {e}") from e
        version = uuid.uuid4().hex
        chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
        base = {PROJECT: project, KIND: kind, KEY: key, VERSION: version}
        points = [
            (self._id(project, kind, key, f"{version}/{i}"), {**base, ROLE: CHUNK, PART: i, DATA: chunk})
            for i, chunk in enumerate(chunks)
        ]
        for start in range(0, len(points), 4):  # a few MB per request at most
            self._backend.doc_upsert(points[start : start + 4])
        head = {**base, ROLE: HEAD, PART: len(chunks)}
        self._backend.doc_upsert([(self._id(project, kind, key, "head"), head)])
        stale = _doc_filter(project, kind, key, **{ROLE: CHUNK})
        self._backend.doc_delete(Filter(stale.must, (Condition(VERSION, equals=version),)))

    def get(self, project: str, kind: str, key: str) -> dict[str, Any] | None:
        """The stored document or None."""
        heads = self._backend.doc_scroll(_doc_filter(project, kind, key, **{ROLE: HEAD}))
        if not heads:
            return None
        head = heads[0][1]
        parts = self._backend.doc_scroll(_doc_filter(project, kind, key, **{ROLE: CHUNK, VERSION: head[VERSION]}))
        parts.sort(key=lambda p: int(p[1][PART]))
        if len(parts) != int(head[PART]):
            raise RuntimeError(f"Document {kind}/{key} of {project!r} has {len(parts)}/{head[PART]} chunks")
        result: dict[str, Any] = json.loads("".join(str(p[1][DATA]) for p in parts))
        return result

    def list(self, project: str, kind: str) -> list[str]:
        """Keys of the documents of one kind, sorted."""
        heads = self._backend.doc_scroll(_doc_filter(project, kind, **{ROLE: HEAD}))
        return sorted(str(p[KEY]) for _, p in heads)

    def delete(self, project: str, kind: str, key: str) -> bool:
        """Delete one document; True if it existed."""
        existed = bool(self._backend.doc_scroll(_doc_filter(project, kind, key, **{ROLE: HEAD})))
        self._backend.doc_delete(_doc_filter(project, kind, key))
        return existed

    def index(self) -> builtins.list[tuple[str, str, str]]:  # `list` is a method here
        """(project, kind, key) of every document in the store, sorted."""
        heads = self._backend.doc_scroll(Filter(must=(Condition(ROLE, equals=HEAD),)))
        return sorted((str(p[PROJECT]), str(p[KIND]), str(p[KEY])) for _, p in heads)

    def delete_project(self, project: str) -> None:
        """Delete every document of a project."""
        self._backend.doc_delete(Filter(must=(Condition(PROJECT, equals=project),)))

    @staticmethod
    def _id(project: str, kind: str, key: str, part: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{project}\x00{kind}\x00{key}\x00{part}"))
