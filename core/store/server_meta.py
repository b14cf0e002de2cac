"""The server adapter's store metadata, kept as small points in its documents collection: the
schema stamp (core.store.schema) and the revision tokens (core.store.revisions).

Each is one point with a fixed id, so reading it is one retrieve, never a scan. Their ROLE is
META_ROLE, so the documents area (which lists and reads ROLE=head points) never sees them; the
schema point's project is "", which no project can be named.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from core.store.documents import KEY, KIND, PROJECT, ROLE
from core.store.revisions import NO_REVISION, new_token, payload_token
from core.store.schema import SCHEMA_FIELD

_NAMESPACE = uuid.UUID("5a1d7c2e-8f4b-4b8e-a1c3-6e0f2d9b7a41")
META_ROLE = "meta"
SCHEMA_KIND, REVISION_KIND = "_schema", "_revision"
TOKEN = "token"


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

    def bump(self, project: str, spaces: Iterable[str] = (), *, payload_only: bool = False) -> None:
        """New tokens for these spaces and the project, in one request; payload_only: the spaces
        keep their vectors part (core.store.revisions)."""
        keys = [*spaces, ""]
        tokens = [payload_token(self.revision(project, key)) if payload_only and key else new_token() for key in keys]
        self._put([(_point_id(REVISION_KIND, project, key), {PROJECT: project, KIND: REVISION_KIND, KEY: key,
                                                             TOKEN: token})
                   for key, token in zip(keys, tokens, strict=True)])
