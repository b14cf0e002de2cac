"""EdgeStore: the embedded VectorStore on Qdrant Edge (in-process, no server).

One EdgeShard per (project, space) plus one documents shard (layout in core.store.edge_shards).
Multi-process safety (measured, see core.store.lease): Edge locks a shard's WAL exclusively
while it is open, so a second process cannot open it even to read. Every operation therefore
runs under an inter-process lease that another process (the CLI next to the dashboard) can ask
for; the holder closes its shards between operations and hands over, and re-opens them on its
next operation, so nobody reads stale data and a busy store fails with StoreLockedError naming
the folder and the pid holding it. HNSW is built only by optimize(); before that queries scan
the unindexed segments (exact and correct, slower past ~50k points).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import qdrant_edge as qe

from core.errors import NotFoundError
from core.filters import Condition, Filter
from core.store import common
from core.store import edge_shards as es
from core.store.documents import KEYWORD_DOC_FIELDS, DocumentArea
from core.store.edge_filters import to_edge
from core.store.lease import StoreLease
from core.store.names import validate_name
from core.types import DATASET, KIND, META, DatasetInfo, Hit, SpaceInfo

log = logging.getLogger(__name__)
_ITEMS_ONLY = Filter(must_not=(Condition(KIND, equals="object"),))


def _matches(payload: dict[str, Any], path: str, values: tuple[Any, ...]) -> bool:
    """payload[path] (dotted) equals one of values, with true/false never equal to 1/0."""
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return any(type(value) is type(v) and value == v for v in values)


class EdgeStore:
    """VectorStore on Qdrant Edge under `path` (a folder, created if needed, or ":memory:").

    lock_timeout_s: how long an operation waits for another process to hand the store over
    before raising StoreLockedError.
    """

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        self._memory = str(path) == ":memory:"
        self._root = Path(tempfile.mkdtemp(prefix="embedscope-edge-")) if self._memory else Path(path)
        self._root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[tuple[str, str], qe.EdgeShard] = {}
        self._docs_shard: qe.EdgeShard | None = None
        self._infos: dict[tuple[str, str], SpaceInfo] = {}
        self._lease = StoreLease(self._root, self._close_shards, timeout_s=lock_timeout_s)
        self._docs = DocumentArea(self)
        self._closed = False

    # -- plumbing ------------------------------------------------------------------------
    def _close_shards(self) -> None:
        """Flush and close every open shard (on hand-over and close)."""
        shards = list(self._shards.values()) + ([self._docs_shard] if self._docs_shard else [])
        self._shards.clear()
        self._infos.clear()
        self._docs_shard = None
        for shard in shards:
            shard.flush()
            shard.close()

    def _shard(self, project: str, space: str) -> qe.EdgeShard:
        """The open shard of a space (call inside a lease); NotFoundError if absent."""
        key = (project, space)
        if key not in self._shards:
            path = es.space_dir(self._root, project, space)
            if not (path / es.CONFIG_FILE).is_file():
                raise NotFoundError(f"Space {space!r} does not exist in project {project!r}")
            self._shards[key] = es.open_shard(path)
        return self._shards[key]

    def _docs_backend(self) -> qe.EdgeShard:
        if self._docs_shard is None:
            path = self._root / es.DOCUMENTS_DIR
            if (path / es.CONFIG_FILE).is_file():
                self._docs_shard = es.open_shard(path)
            else:
                self._docs_shard = es.create_shard(path, 1, KEYWORD_DOC_FIELDS)
        return self._docs_shard

    def _info(self, project: str, space: str) -> SpaceInfo:
        key = (project, space)
        if key not in self._infos:
            path = es.space_dir(self._root, project, space)
            if not (path / es.CONFIG_FILE).is_file():
                raise NotFoundError(f"Space {space!r} does not exist in project {project!r}")
            doc = self._docs.get(project, common.SPACE_KIND, space)
            info = SpaceInfo.from_dict(doc) if doc else SpaceInfo(space, es.shard_dim(path), "vector")
            self._infos[key] = info
        return self._infos[key]

    def _flt(self, project: str, space: str, flt: Filter | None, exclude: Sequence[str] = ()) -> qe.Filter | None:
        """The Edge filter of a space (true/false conditions resolved to ids, see edge_filters)."""
        shard = self._shard(project, space)

        def bools(field: str, values: tuple[Any, ...]) -> set[str]:
            top, _, rest = field.partition(".")
            pages = es.scroll(shard, None, with_payload=qe.PayloadSelector.Include([top]))
            return {str(r.id) for page in pages for r in page if _matches(r.payload or {}, field, values)}

        return to_edge(flt, exclude, bools)

    # -- documents backend (DocBackend) ---------------------------------------------------
    def doc_upsert(self, points: list[tuple[str, dict[str, Any]]]) -> None:
        ops = [qe.Point(pid, [1.0], payload) for pid, payload in points]
        self._docs_backend().update(qe.UpdateOperation.upsert_points(ops))

    def doc_scroll(self, flt: Filter) -> list[tuple[str, dict[str, Any]]]:
        pages = es.scroll(self._docs_backend(), to_edge(flt), batch=64)
        return [(str(r.id), dict(r.payload or {})) for page in pages for r in page]

    def doc_delete(self, flt: Filter) -> None:
        edge_filter = to_edge(flt)
        assert edge_filter is not None, "documents are always deleted by a filter"
        self._docs_backend().update(qe.UpdateOperation.delete_points_by_filter(edge_filter))

    # -- projects and spaces ---------------------------------------------------------------
    def describe(self) -> str:
        return "embedded Qdrant Edge (in memory)" if self._memory else f"embedded Qdrant Edge at {self._root}"

    def list_projects(self) -> list[str]:
        with self._lease.hold("list_projects"):
            return sorted(es.project_dirs(self._root))

    def list_spaces(self, project: str) -> list[SpaceInfo]:
        with self._lease.hold("list_spaces"):
            folder = es.space_dir(self._root, project, "x").parent
            return [self._info(project, s) for s in es.space_names(folder)]

    def get_space(self, project: str, space: str) -> SpaceInfo:
        with self._lease.hold("get_space"):
            return self._info(project, space)

    def ensure_space(self, project: str, info: SpaceInfo) -> SpaceInfo:
        validate_name(project, "project name")
        validate_name(info.name, "space name")
        if info.dim < 1:
            raise ValueError(f"Space {info.name!r} needs a positive dim, got {info.dim}")
        with self._lease.hold("ensure_space"):
            path = es.space_dir(self._root, project, info.name)
            if (path / es.CONFIG_FILE).is_file():
                existing = self._info(project, info.name)
                common.check_same_dim(project, existing, info.dim)
                return existing
            self._shards[(project, info.name)] = es.create_space_shard(path, info.dim)
            self._docs.put(project, common.SPACE_KIND, info.name, info.to_dict())
            self._infos[(project, info.name)] = info
            log.info("created space %s/%s (dim %d) in %s", project, info.name, info.dim, self._root)
            return info

    def delete_space(self, project: str, space: str) -> None:
        with self._lease.hold("delete_space"):
            shard = self._shards.pop((project, space), None)
            if shard is not None:
                shard.close()
            self._infos.pop((project, space), None)
            path = es.space_dir(self._root, project, space)
            if not path.is_dir():
                raise NotFoundError(f"Space {space!r} does not exist in project {project!r}")
            shutil.rmtree(path)
            self._docs.delete(project, common.SPACE_KIND, space)
            if not any(path.parent.iterdir()):
                path.parent.rmdir()

    def list_datasets(self, project: str) -> list[DatasetInfo]:
        with self._lease.hold("list_datasets"):
            counts: dict[str, dict[str, int]] = {}
            folder = es.space_dir(self._root, project, "x").parent
            for space in es.space_names(folder):
                request = qe.FacetRequest(DATASET, limit=100_000, exact=True, filter=to_edge(_ITEMS_ONLY))
                for hit in self._shard(project, space).facet(request).hits:
                    counts.setdefault(str(hit.value), {})[space] = int(hit.count)
            return [DatasetInfo(project, name, counts[name]) for name in sorted(counts)]

    def delete_dataset(self, project: str, dataset: str) -> int:
        with self._lease.hold("delete_dataset"):
            flt = to_edge(Filter.where(dataset=dataset))
            assert flt is not None
            removed: set[str] = set()
            folder = es.space_dir(self._root, project, "x").parent
            for space in es.space_names(folder):
                shard = self._shard(project, space)
                for page in es.scroll(shard, flt, with_payload=False):
                    removed.update(str(r.id) for r in page)
                shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
            return len(removed)

    def delete_project(self, project: str) -> None:
        with self._lease.hold("delete_project"):
            for key in [k for k in self._shards if k[0] == project]:
                self._shards.pop(key).close()
                self._infos.pop(key, None)
            folder = es.space_dir(self._root, project, "x").parent
            if folder.is_dir():
                shutil.rmtree(folder)
            self._docs.delete_project(project)

    # -- points ----------------------------------------------------------------------------
    def upsert(self, project: str, space: str, ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[dict[str, Any]]) -> None:
        with self._lease.hold("upsert"):
            info = self._info(project, space)
            arr = common.check_points(space, info.dim, ids, vectors, payloads)
            shard = self._shard(project, space)
            for start in range(0, len(ids), common.UPSERT_BATCH):
                stop = start + common.UPSERT_BATCH
                points = [qe.Point(str(pid), vec.tolist(), common.clean_payload(dict(p)))
                          for pid, vec, p in zip(ids[start:stop], arr[start:stop], payloads[start:stop])]
                shard.update(qe.UpdateOperation.upsert_points(points))

    def existing_ids(self, project: str, space: str, ids: Sequence[str]) -> set[str]:
        with self._lease.hold("existing_ids"):
            records = es.retrieve(self._shard(project, space), [common.check_id(i) for i in ids], False, False)
            return {str(r.id) for r in records}

    def count(self, project: str, space: str, flt: Filter | None = None) -> int:
        with self._lease.hold("count"):
            return int(self._shard(project, space).count(qe.CountRequest(exact=True, filter=self._flt(project, space, flt))))

    def payloads(self, project: str, space: str, flt: Filter | None = None,
                 fields: Sequence[str] | None = None) -> pd.DataFrame:
        keys = common.payload_selector_fields(fields)
        selector: Any = qe.PayloadSelector.Include(keys) if keys is not None else True
        with self._lease.hold("payloads"):
            pages = es.scroll(self._shard(project, space), self._flt(project, space, flt), with_payload=selector)
            records = [(str(r.id), dict(r.payload or {})) for page in pages for r in page]
        return common.payload_frame(records, fields)

    def vectors(self, project: str, space: str, ids: Sequence[str] | None = None,
                flt: Filter | None = None) -> tuple[list[str], np.ndarray]:
        with self._lease.hold("vectors"):
            dim = self._info(project, space).dim
            shard = self._shard(project, space)
            if ids is not None:
                found = {str(r.id): es.vector_of(r) for r in es.retrieve(shard, [common.check_id(i) for i in ids], False, True)}
                order = [str(i) for i in ids if str(i) in found]
                return order, common.as_array([found[i] for i in order], dim)
            records = [r for page in es.scroll(shard, self._flt(project, space, flt), False, True) for r in page]
            return [str(r.id) for r in records], common.as_array([es.vector_of(r) for r in records], dim)

    def iter_vectors(self, project: str, space: str, flt: Filter | None = None,
                     batch: int = 2048) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        offset: Any = None
        while True:
            with self._lease.hold("iter_vectors"):  # per batch, so a hand-over can happen between
                dim = self._info(project, space).dim
                records, offset = self._shard(project, space).scroll(qe.ScrollRequest(
                    offset=offset, limit=batch, filter=self._flt(project, space, flt), with_payload=True, with_vector=True))
            if records:
                yield ([str(r.id) for r in records], common.as_array([es.vector_of(r) for r in records], dim),
                       [dict(r.payload or {}) for r in records])
            if offset is None:
                return

    def set_payload(self, project: str, ids: Sequence[str], values: Sequence[dict[str, Any]]) -> int:
        groups = common.group_values(ids, values)
        updated: set[str] = set()
        with self._lease.hold("set_payload"):
            folder = es.space_dir(self._root, project, "x").parent
            for space in es.space_names(folder):
                shard = self._shard(project, space)
                present = {str(r.id) for r in es.retrieve(shard, [str(i) for i in ids], False, False)}
                for value, group in groups:
                    targets: list[Any] = [uuid.UUID(i) for i in group if i in present]
                    if targets:
                        top, meta = common.split_merge(value)
                        if top:
                            shard.update(qe.UpdateOperation.set_payload(targets, top))
                        if meta:
                            shard.update(qe.UpdateOperation.set_payload(targets, meta, key=META))
                updated |= present
        return len(updated)

    # -- search ------------------------------------------------------------------------------
    def query(self, project: str, space: str, vector: np.ndarray, limit: int = 10,
              flt: Filter | None = None, exact: bool = False, with_payload: bool = True) -> list[Hit]:
        with self._lease.hold("query"):
            query = common.check_query_vector(vector, self._info(project, space).dim, space)
            return self._run(project, space, qe.Query.Nearest(query), limit, self._flt(project, space, flt), exact, with_payload)

    def recommend(self, project: str, space: str, positive: Sequence[str | np.ndarray],
                  negative: Sequence[str | np.ndarray] = (), limit: int = 10, flt: Filter | None = None,
                  exact: bool = False, with_payload: bool = True) -> list[Hit]:
        if not positive and not negative:
            raise ValueError("recommend needs at least one positive or negative example")
        with self._lease.hold("recommend"):
            pos, neg, example_ids = self._examples(project, space, positive, negative)
            query = qe.Query.RecommendBestScore(qe.RecommendQuery(pos, neg))
            return self._run(project, space, query, limit, self._flt(project, space, flt, example_ids), exact, with_payload)

    def _examples(self, project: str, space: str, positive: Sequence[str | np.ndarray],
                  negative: Sequence[str | np.ndarray]) -> tuple[list[Any], list[Any], list[str]]:
        """Resolve example ids to their stored vectors (Edge's recommend takes vectors only)."""
        dim = self._info(project, space).dim
        ids = [common.check_id(e) for e in [*positive, *negative] if isinstance(e, str)]
        found = {str(r.id): es.vector_of(r) for r in es.retrieve(self._shard(project, space), ids, False, True)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(f"Example point {missing[0]} is not in space {space!r} of project {project!r}")

        def resolve(examples: Sequence[str | np.ndarray]) -> list[Any]:
            return [found[common.check_id(e)] if isinstance(e, str) else common.check_query_vector(e, dim, space)
                    for e in examples]

        return resolve(positive), resolve(negative), ids

    def _run(self, project: str, space: str, query: Any, limit: int, flt: qe.Filter | None,
             exact: bool, with_payload: bool) -> list[Hit]:
        request = qe.QueryRequest(limit=limit, query=query, filter=flt, with_payload=with_payload,
                                  with_vector=False, params=qe.SearchParams(exact=exact))
        points = self._shard(project, space).query(request)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    # -- documents ---------------------------------------------------------------------------
    def put_document(self, project: str, kind: str, key: str, doc: dict[str, Any]) -> None:
        with self._lease.hold("put_document"):
            self._docs.put(project, kind, key, doc)

    def get_document(self, project: str, kind: str, key: str) -> dict[str, Any] | None:
        with self._lease.hold("get_document"):
            return self._docs.get(project, kind, key)

    def list_documents(self, project: str, kind: str) -> list[str]:
        with self._lease.hold("list_documents"):
            return self._docs.list(project, kind)

    def delete_document(self, project: str, kind: str, key: str) -> bool:
        with self._lease.hold("delete_document"):
            return self._docs.delete(project, kind, key)

    # -- maintenance -------------------------------------------------------------------------
    def optimize(self, project: str, space: str) -> None:
        with self._lease.hold("optimize"):
            self._shard(project, space).optimize()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lease.release()
        if self._memory:
            shutil.rmtree(self._root, ignore_errors=True)
