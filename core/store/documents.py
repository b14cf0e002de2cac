"""The documents area: JSON documents keyed by (project, kind, key), stored as Qdrant points.

Both adapters keep documents inside Qdrant (one extra shard / collection with a 1-d dummy
vector), so a server deployment keeps all state on the server. A document is serialised to
JSON and cut into chunks of CHUNK_CHARS characters (a 100k-point 2-D map is a few MB), each
chunk one point tagged with a fresh `version`; a small "head" point names the current version.
A put writes the new chunks first, then the head, then deletes older chunks, so a reader never
assembles a half-written document.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol

import numpy as np

from core.filters import Condition, Filter

CHUNK_CHARS = 1_000_000
_NAMESPACE = uuid.UUID("0b7c8f0e-3f4a-4e44-9d7b-2f3b1d6f9a10")
# Payload fields of document points (all keyword-indexed but PART and DATA).
PROJECT, KIND, KEY, VERSION, ROLE, PART, DATA = "project", "kind", "key", "version", "role", "part", "data"
HEAD, CHUNK = "head", "chunk"  # values of ROLE (a keyword: Qdrant Edge cannot match booleans)
KEYWORD_DOC_FIELDS = (PROJECT, KIND, KEY, VERSION, ROLE)


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

    def delete_project(self, project: str) -> None:
        """Delete every document of a project."""
        self._backend.doc_delete(Filter(must=(Condition(PROJECT, equals=project),)))

    @staticmethod
    def _id(project: str, kind: str, key: str, part: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{project}\x00{kind}\x00{key}\x00{part}"))
