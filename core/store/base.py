"""The one store interface every Qdrant adapter implements (embedded Edge, server via qdrant-client).

Layout (both adapters): each (project, embedding space) is its own Qdrant collection / Edge shard,
so a new space can be added to an existing project without touching or re-ingesting the others.
Every point carries the full payload (see core.types) in each space it is in, so filters run
inside Qdrant during vector search. The same item has the same point id in every space
(core.ids.point_id), which is how the spaces of one project line up.

A small per-store "documents" area (JSON documents keyed by (project, kind, key)) holds
everything that is not a vector: space descriptors, persisted projections and analysis results
(with the hash of the parameters that made them), saved collections. It lives in Qdrant too,
so a team deployment keeps it on the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from core.filters import Filter
from core.types import DatasetInfo, Hit, Progress, SpaceInfo

# Capabilities an adapter lists in its `capabilities` attribute (read with has_capability).
# SERVER_KNN: neighbours() runs on the Qdrant server (cluster), so the kNN graph of big spaces
# is built there instead of from every vector pulled into this process.
SERVER_KNN = "server_knn"


def has_capability(store: object, name: str) -> bool:
    """Whether a store declares a capability (stores without the attribute declare none)."""
    return name in getattr(store, "capabilities", frozenset())


@runtime_checkable
class VectorStore(Protocol):
    """What core needs from Qdrant. Adapters raise CoreError subclasses, never library errors."""

    # -- projects and spaces -------------------------------------------------------------
    def describe(self) -> str:
        """Where this store is, for humans (never includes secrets)."""
        ...

    def list_projects(self) -> list[str]:
        """Names of all projects, sorted."""
        ...

    def list_spaces(self, project: str) -> list[SpaceInfo]:
        """The embedding spaces of a project, sorted by name ([] for an unknown project)."""
        ...

    def get_space(self, project: str, space: str) -> SpaceInfo:
        """One space; NotFoundError if absent."""
        ...

    def ensure_space(self, project: str, info: SpaceInfo) -> SpaceInfo:
        """Create the space (collection + payload indexes) if absent and return it.

        If it exists with another dim, raise DimensionMismatchError naming both sizes.
        """
        ...

    def delete_space(self, project: str, space: str) -> None:
        """Drop one space of a project (its vectors only; other spaces stay)."""
        ...

    def list_datasets(self, project: str) -> list[DatasetInfo]:
        """Datasets of a project with their point counts per space (items only, no objects)."""
        ...

    def delete_dataset(self, project: str, dataset: str) -> int:
        """Delete every point of a dataset in every space; return how many points were removed."""
        ...

    def delete_project(self, project: str) -> None:
        """Delete all spaces and documents of a project."""
        ...

    # -- points --------------------------------------------------------------------------
    def upsert(
        self,
        project: str,
        space: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        payloads: Sequence[dict[str, Any]],
    ) -> None:
        """Insert or overwrite points. vectors: (n, dim) float32. Batches internally.

        Raises DimensionMismatchError when vectors.shape[1] != the space's dim.
        """
        ...

    def existing_ids(self, project: str, space: str, ids: Sequence[str]) -> set[str]:
        """The subset of ids already stored in the space (used to resume an ingest)."""
        ...

    def count(self, project: str, space: str, flt: Filter | None = None) -> int:
        """Exact number of points in the space matching the filter."""
        ...

    def payloads(
        self,
        project: str,
        space: str,
        flt: Filter | None = None,
        fields: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Payloads as a DataFrame indexed by point id (column "id"-named index).

        Nested `meta` is flattened into `meta.<name>` columns. fields limits the columns.
        Row order is stable (sorted by id).
        """
        ...

    def vectors(
        self,
        project: str,
        space: str,
        ids: Sequence[str] | None = None,
        flt: Filter | None = None,
        *,
        progress: Progress | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """(ids, (n, dim) float32) for the given ids (in that order, missing ids skipped) or the
        points matching the filter (sorted by id). Read page by page into one preallocated
        block (peak: the array + one page); progress(done, total) after each page of a filter
        read. For the whole space as a cached block use core.pipeline.vector_cache.load_vectors."""
        ...

    def iter_vectors(
        self, project: str, space: str, flt: Filter | None = None, batch: int = 2048
    ) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        """Stream (ids, vectors, payloads) in batches, for data larger than memory."""
        ...

    def set_payload(self, project: str, ids: Sequence[str], values: Sequence[dict[str, Any]]) -> int:
        """Merge values[i] into the payload of ids[i] in every space of the project (labels and
        inferences that arrive after the vectors). Returns the number of points updated."""
        ...

    # -- search --------------------------------------------------------------------------
    def query(
        self,
        project: str,
        space: str,
        vector: np.ndarray,
        limit: int = 10,
        flt: Filter | None = None,
        exact: bool = False,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Nearest neighbours by cosine similarity. vector: (dim,) float32. exact=True does a full
        scan (ground truth for approximate HNSW)."""
        ...

    def recommend(
        self,
        project: str,
        space: str,
        positive: Sequence[str | np.ndarray],
        negative: Sequence[str | np.ndarray] = (),
        limit: int = 10,
        flt: Filter | None = None,
        exact: bool = False,
        with_payload: bool = True,
    ) -> list[Hit]:
        """"More like these, unlike those" with Qdrant's recommend query (best-score strategy).

        Examples are point ids of the space or raw vectors. Example points are excluded from the
        results.
        """
        ...

    def neighbours(
        self, project: str, space: str, ids: Sequence[str], k: int, flt: Filter | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest other points of each point in ids among the points matching flt, found
        by the store itself (batched queries by point id, the point itself left out).
        Returns (neighbour ids (len(ids), k) object array of str, cosine similarities (len(ids), k)
        float32), nearest first; rows with fewer than k matches are padded with "" and NaN.
        Worth calling instead of an in-process kNN only where capabilities holds SERVER_KNN."""
        ...

    # -- documents (non-vector state: space descriptors, results, collections) ---------------
    def put_document(self, project: str, kind: str, key: str, doc: dict[str, Any]) -> None:
        """Store a JSON-serialisable document, replacing any with the same (project, kind, key)."""
        ...

    def get_document(self, project: str, kind: str, key: str) -> dict[str, Any] | None:
        """The document or None."""
        ...

    def list_documents(self, project: str, kind: str) -> list[str]:
        """Keys of the documents of that kind, sorted."""
        ...

    def delete_document(self, project: str, kind: str, key: str) -> bool:
        """Delete one document; True if it existed."""
        ...

    def document_index(self) -> list[tuple[str, str, str]]:
        """(project, kind, key) of every document in the store, sorted (for migrations)."""
        ...

    # -- revisions and schema ------------------------------------------------------------
    def revision(self, project: str, space: str | None = None) -> str:
        """A cheap token that changes on every write to the space (upsert, set_payload,
        delete_dataset, ensure_space creating it, delete_space, delete_project), from this process
        or another one. space=None: the project's token, which also changes on every document
        write (put_document, delete_document). Reading is a file read / one point retrieve, never
        a scan: key caches on it on every rerun. "0" for what was never written."""
        ...

    def document_revision(self, project: str, kind: str) -> str:
        """Like revision(), for the project's documents of one kind: changes on every put_document
        / delete_document of that kind (and delete_project), never on other writes, so a cache of
        maps or analyses is not rebuilt when a history entry or a collection is written."""
        ...

    def schema_version(self) -> int:
        """The layout version the store was written with (core.store.schema)."""
        ...

    def write_schema_version(self, version: int) -> None:
        """Record the layout version (the last step of a migration)."""
        ...

    # -- maintenance ---------------------------------------------------------------------
    def optimize(self, project: str, space: str) -> None:
        """Build indexes (HNSW) now, in this process. Slow on big data: call it off the request
        path (Edge holds the GIL meanwhile: a server process uses build_index instead)."""
        ...

    def build_index(self, project: str, space: str) -> bool:
        """Build the index without stopping this process's other threads (the dashboard's
        background build): Edge builds a copy in a child process and swaps it in (False when the
        space changed meanwhile: the copy is discarded); a server indexes by itself."""
        ...

    def index_status(self, project: str, space: str) -> tuple[int, int]:
        """(points in HNSW-indexed segments, all points) of a space. Fewer indexed than all: the
        rest is searched exactly (correct, slower past ~50k points); a small space is never
        indexed (Edge indexes segments past its indexing threshold); local mode: always (0, n)."""
        ...

    def close(self) -> None:
        """Flush and release files / connections. Safe to call twice."""
        ...
