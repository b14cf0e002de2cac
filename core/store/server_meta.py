"""The server adapter's store metadata, kept as small points in its documents collection: the
schema stamp (core.store.schema) and the revision tokens (core.store.revisions).

Each is one point with a fixed id, so reading it is one retrieve, never a scan. Their ROLE is
META_ROLE, so the documents area (which lists and reads ROLE=head points) never sees them; the
schema point's project is "", which no project can be named.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from core.store import journal
from core.store.documents import DATA, KEY, KIND, PROJECT, ROLE
from core.store.revisions import NO_REVISION, new_token, payload_token
from core.store.schema import SCHEMA_FIELD

_NAMESPACE = uuid.UUID("5a1d7c2e-8f4b-4b8e-a1c3-6e0f2d9b7a41")
META_ROLE = "meta"
SCHEMA_KIND, REVISION_KIND = "_schema", "_revision"
DOC_REVISION_KIND = "_doc_revision"  # one token per (project, document kind): document_revision
JOURNAL_KIND, FLOOR_KIND = "_journal", "_journal_floor"  # the payload journal (core.store.journal)
TOKEN, AT, SIZE = "token", "at", "size"


def _point_id(kind: str, project: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}\x00{project}\x00{key}"))


class ServerMeta:
    """Schema stamp and revision tokens of a ServerStore (call inside its guard)."""

    def __init__(self, client: QdrantClient, collection: Callable[[], str]) -> None:
        self._client = client
        self._collection = collection  # the documents collection (created on first use)

    def _get(self, pid: str) -> dict[str, Any] | None:
        records = self._client.retrieve(self._collection(), [pid], with_payload=True, with_vectors=False)
        return dict(records[0].payload or {}) if records else None

    def _put(self, points: list[tuple[str, dict[str, Any]]]) -> None:
        structs = [qm.PointStruct(id=pid, vector=[1.0], payload={ROLE: META_ROLE, **p}) for pid, p in points]
        self._client.upsert(self._collection(), structs, wait=True)

    def schema(self) -> int | None:
        """The recorded schema version, or None when none was recorded."""
        point = self._get(_point_id(SCHEMA_KIND, "", ""))
        return int(point[SCHEMA_FIELD]) if point else None

    def write_schema(self, version: int) -> None:
        self._put([(_point_id(SCHEMA_KIND, "", ""), {PROJECT: "", KIND: SCHEMA_KIND, KEY: "",
                                                      SCHEMA_FIELD: int(version)})])

    def revision(self, project: str, space: str | None) -> str:
        point = self._get(_point_id(REVISION_KIND, project, space or ""))
        return str(point[TOKEN]) if point else NO_REVISION

    def bump(self, project: str, spaces: Iterable[str] = (), *, payload_only: bool = False,
             groups: journal.Groups | None = None) -> None:
        """New tokens for these spaces and the project, in one request; payload_only: the spaces
        keep their vectors part (core.store.revisions); groups: the values of a payload-only write,
        recorded in the payload journal before the tokens move."""
        keys = [*spaces, ""]
        before = [self.revision(project, key) if payload_only and key else NO_REVISION for key in keys]
        tokens = [payload_token(old) if payload_only and key else new_token()
                  for key, old in zip(keys, before, strict=True)]
        if groups is not None:
            links = {k: (b, t) for k, b, t in zip(keys, before, tokens, strict=True) if k}
            journal.record(lambda entry: self.journal_append(project, entry), links, groups)
        self._put([(_point_id(REVISION_KIND, project, key), {PROJECT: project, KIND: REVISION_KIND, KEY: key,
                                                             TOKEN: token})
                   for key, token in zip(keys, tokens, strict=True)])

    def document_revision(self, project: str, kind: str) -> str:
        point = self._get(_point_id(DOC_REVISION_KIND, project, kind))
        return str(point[TOKEN]) if point else NO_REVISION

    def bump_documents(self, project: str, kinds: Iterable[str]) -> None:
        """New tokens for these document kinds of the project, in one request."""
        points = [(_point_id(DOC_REVISION_KIND, project, kind), {PROJECT: project, KIND: DOC_REVISION_KIND,
                                                                  KEY: kind, TOKEN: new_token()})
                  for kind in kinds]
        if points:
            self._put(points)

    # -- the payload journal: one point per entry, plus a floor point per project ------------------
    def _journal_points(self, project: str, fields: list[str]) -> list[qm.Record]:
        flt = qm.Filter(must=[qm.FieldCondition(key=k, match=qm.MatchValue(value=v))
                              for k, v in ((PROJECT, project), (KIND, JOURNAL_KIND), (ROLE, META_ROLE))])
        out: list[qm.Record] = []
        offset: Any = None
        while True:
            page, offset = self._client.scroll(self._collection(), scroll_filter=flt, limit=256, offset=offset,
                                               with_payload=qm.PayloadSelectorInclude(include=fields))
            out.extend(page)
            if offset is None:
                return out

    def journal_append(self, project: str, entry: journal.Entry) -> None:
        """Record one entry, then drop what falls out of the bounds (the floor first, then the points)."""
        key = f"{entry.at:020d}-{uuid.uuid4().hex[:8]}"
        self._put([(_point_id(JOURNAL_KIND, project, key), {PROJECT: project, KIND: JOURNAL_KIND, KEY: key,
                                                            AT: entry.at, SIZE: entry.size,
                                                            DATA: journal.dumps(entry)})])
        points = self._journal_points(project, [AT, SIZE])
        sizes = [(int(_payload(p)[AT]), int(_payload(p)[SIZE])) for p in points]
        drop = journal.dropped(sizes)
        if drop:
            self._put([(_point_id(FLOOR_KIND, project, ""), {PROJECT: project, KIND: FLOOR_KIND, KEY: "",
                                                             AT: max(sizes[i][0] for i in drop)})])
            self._client.delete(self._collection(), qm.PointIdsList(points=[points[i].id for i in drop]), wait=True)

    def journal_read(self, project: str) -> tuple[list[journal.Entry], int]:
        """(entries, floor) of a project; the floor read last (it is written before points are dropped)."""
        entries = [journal.loads(str(_payload(p)[DATA])) for p in self._journal_points(project, [DATA])]
        floor = self._get(_point_id(FLOOR_KIND, project, ""))
        return entries, int(floor[AT]) if floor else 0


def _payload(record: qm.Record) -> Mapping[str, Any]:
    return record.payload or {}
