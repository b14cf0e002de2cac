"""Point operations and search of ServerStore (qdrant-client), kept apart from its catalog code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from core.errors import NotFoundError
from core.filters import Filter
from core.store import common, journal, revisions
from core.store import index_config as ic
from core.store.server_filters import to_server
from core.types import KEYWORD_FIELDS, META, Hit, Progress, SpaceInfo

NEIGHBOUR_BATCH = 256  # queries per query_batch_points request (neighbours)


def _vector(record: Any) -> list[float]:
    """The unnamed dense vector of a record (not copied: a page of them becomes numpy at once)."""
    vec = record.vector
    if isinstance(vec, dict):
        vec = vec[""]
    return vec if isinstance(vec, list) else list(vec)


def _params(exact: bool) -> qm.SearchParams:
    """Search parameters of a server (local mode takes none): core.store.index_config says why."""
    if exact:
        return qm.SearchParams(exact=True)
    return qm.SearchParams(hnsw_ef=ic.SEARCH_HNSW_EF,
                           quantization=qm.QuantizationSearchParams(rescore=True, oversampling=ic.SEARCH_OVERSAMPLING),
                           acorn=qm.AcornSearchParams(enable=True, max_selectivity=ic.SEARCH_ACORN_MAX_SELECTIVITY))


class ServerOps:
    """Mixin: needs client, _guard(operation), _info(project, space), _collection(project, space)."""

    client: QdrantClient
    _local: bool

    def _guard(self, operation: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _info(self, project: str, space: str) -> SpaceInfo:
        raise NotImplementedError

    def _collection(self, project: str, space: str) -> str:
        raise NotImplementedError

    def _spaces(self, project: str) -> list[str]:
        raise NotImplementedError

    def _bump(self, project: str, spaces: Sequence[str] = (), *, payload_only: bool = False,
              groups: journal.Groups | None = None) -> None:
        raise NotImplementedError

    def _scroll(self, name: str, flt: qm.Filter | None, with_payload: Any = True,
                with_vectors: bool = False, batch: int = common.SCROLL_BATCH) -> Iterator[qm.Record]:
        for page in self._pages(name, flt, with_payload, with_vectors, batch):
            yield from page

    def _pages(self, name: str, flt: qm.Filter | None, with_payload: Any = True,
               with_vectors: bool = False, batch: int = common.SCROLL_BATCH) -> Iterator[list[qm.Record]]:
        offset: Any = None
        while True:
            records, offset = self.client.scroll(name, scroll_filter=flt, limit=batch, offset=offset,
                                                 with_payload=with_payload, with_vectors=with_vectors)
            if records:
                yield records
            if offset is None:
                return

    def _retrieve(self, name: str, ids: list[str], with_vectors: bool) -> list[qm.Record]:
        out: list[qm.Record] = []
        for start in range(0, len(ids), 1024):
            out.extend(self.client.retrieve(name, ids[start : start + 1024], with_payload=False,
                                            with_vectors=with_vectors))
        return out

    def upsert(self, project: str, space: str, ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[dict[str, Any]]) -> None:
        with self._guard("upsert"):
            arr = common.check_points(space, self._info(project, space).dim, ids, vectors, payloads)
            name = self._collection(project, space)
            for start in range(0, len(ids), common.UPSERT_BATCH):
                stop = start + common.UPSERT_BATCH
                points = [qm.PointStruct(id=str(pid), vector=vec.tolist(), payload=common.clean_payload(dict(p)))
                          for pid, vec, p in zip(ids[start:stop], arr[start:stop], payloads[start:stop], strict=True)]
                self.client.upsert(name, points, wait=True)
            if len(ids):
                self._bump(project, [space])

    def existing_ids(self, project: str, space: str, ids: Sequence[str]) -> set[str]:
        with self._guard("existing_ids"):
            records = self._retrieve(self._collection(project, space), [common.check_id(i) for i in ids], False)
            return {str(r.id) for r in records}

    def count(self, project: str, space: str, flt: Filter | None = None) -> int:
        with self._guard("count"):
            name = self._collection(project, space)
            return int(self.client.count(name, count_filter=to_server(flt), exact=True).count)

    def payloads(self, project: str, space: str, flt: Filter | None = None,
                 fields: Sequence[str] | None = None) -> pd.DataFrame:
        keys = common.payload_selector_fields(fields)
        selector: Any = qm.PayloadSelectorInclude(include=keys) if keys is not None else True
        with self._guard("payloads"):
            name = self._collection(project, space)
            columns = common.PayloadColumns()
            for page in self._pages(name, to_server(flt), selector):
                columns.add([str(r.id) for r in page], [r.payload or {} for r in page])
        return columns.frame(fields)

    def vectors(self, project: str, space: str, ids: Sequence[str] | None = None,
                flt: Filter | None = None, *, progress: Progress | None = None) -> tuple[list[str], np.ndarray]:
        with self._guard("vectors"):
            dim = self._info(project, space).dim
            name = self._collection(project, space)
            if ids is not None:
                return self._vectors_of(name, ids, dim)
            server_filter = to_server(flt)
            total = int(self.client.count(name, count_filter=server_filter, exact=True).count)
            block = common.RowBlock(dim, total)
            with common.gc_paused():
                for page in self._pages(name, server_filter, False, True):
                    block.add([str(r.id) for r in page], [_vector(r) for r in page])
                    if progress is not None:
                        progress(len(block.ids), max(total, len(block.ids)))
            return block.sorted_by_id()

    def _vectors_of(self, name: str, ids: Sequence[str], dim: int) -> tuple[list[str], np.ndarray]:
        """The vectors of these ids, in that order (missing ids skipped), one page at a time."""
        wanted = [common.check_id(i) for i in ids]
        found: dict[str, int] = {}
        block = common.RowBlock(dim, len(wanted))
        for start in range(0, len(wanted), common.SCROLL_BATCH):
            records = self._retrieve(name, wanted[start:start + common.SCROLL_BATCH], True)
            found.update((str(r.id), len(block.ids) + at) for at, r in enumerate(records))
            block.add([str(r.id) for r in records], [_vector(r) for r in records])
        _, rows = block.finish()
        order = [str(i) for i in ids if str(i) in found]
        return order, rows[np.asarray([found[i] for i in order], dtype=np.int64)].reshape(-1, dim)

    def iter_vectors(self, project: str, space: str, flt: Filter | None = None,
                     batch: int = 2048) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        offset: Any = None
        while True:
            with self._guard("iter_vectors"):
                dim = self._info(project, space).dim
                records, offset = self.client.scroll(self._collection(project, space), scroll_filter=to_server(flt),
                                                     limit=batch, offset=offset, with_payload=True, with_vectors=True)
            if records:
                yield ([str(r.id) for r in records], common.as_array([_vector(r) for r in records], dim),
                       [dict(r.payload or {}) for r in records])
            if offset is None:
                return

    def set_payload(self, project: str, ids: Sequence[str], values: Sequence[dict[str, Any]]) -> int:
        groups = common.group_values(ids, values)
        updated: set[str] = set()
        with self._guard("set_payload"):
            for space in self._spaces(project):
                name = self._collection(project, space)
                self._add_missing_indexes(name)
                present = {str(r.id) for r in self._retrieve(name, [str(i) for i in ids], False)}
                for value, group in groups:
                    targets: list[Any] = [i for i in group if i in present]
                    if targets:
                        self._merge(name, targets, value)
                updated |= present
            if updated:
                only = revisions.payload_only(values)
                self._bump(project, self._spaces(project), payload_only=only,
                           groups=journal.written(groups, updated) if only else None)
        return len(updated)

    def _add_missing_indexes(self, name: str) -> None:
        """Create the keyword indexes of KEYWORD_FIELDS a collection made before a field was added
        (e.g. tags) lacks, once per collection and process, before the first payload write."""
        checked: set[str] = self.__dict__.setdefault("_indexes_checked", set())
        if self._local or name in checked:  # local mode ignores payload indexes
            return
        have = set(self.client.get_collection(name).payload_schema or {})
        for field in (f for f in KEYWORD_FIELDS if f not in have):
            self.client.create_payload_index(name, field, qm.KeywordIndexParams(
                type=qm.KeywordIndexType.KEYWORD, enable_hnsw=False), wait=True)
        checked.add(name)

    def _merge(self, name: str, targets: list[Any], value: dict[str, Any]) -> None:
        top, meta = common.split_merge(value)
        if top:
            self.client.set_payload(name, top, points=targets, wait=True)
        if meta:
            self.client.set_payload(name, meta, points=targets, key=META, wait=True)

    def query(self, project: str, space: str, vector: np.ndarray, limit: int = 10,
              flt: Filter | None = None, exact: bool = False, with_payload: bool = True) -> list[Hit]:
        with self._guard("query"):
            query = common.check_query_vector(vector, self._info(project, space).dim, space)
            return self._run(project, space, query, limit, to_server(flt), exact, with_payload)

    def recommend(self, project: str, space: str, positive: Sequence[str | np.ndarray],
                  negative: Sequence[str | np.ndarray] = (), limit: int = 10, flt: Filter | None = None,
                  exact: bool = False, with_payload: bool = True) -> list[Hit]:
        if not positive and not negative:
            raise ValueError("recommend needs at least one positive or negative example")
        with self._guard("recommend"):
            dim = self._info(project, space).dim
            ids = [common.check_id(e) for e in [*positive, *negative] if isinstance(e, str)]
            found = {str(r.id) for r in self._retrieve(self._collection(project, space), ids, False)}
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFoundError(f"Example point {missing[0]} is not in space {space!r} of project {project!r}")

            def resolve(examples: Sequence[str | np.ndarray]) -> list[Any]:
                return [common.check_id(e) if isinstance(e, str) else common.check_query_vector(e, dim, space)
                        for e in examples]

            query = qm.RecommendQuery(recommend=qm.RecommendInput(
                positive=resolve(positive), negative=resolve(negative), strategy=qm.RecommendStrategy.BEST_SCORE))
            return self._run(project, space, query, limit, to_server(flt, ids), exact, with_payload)

    def _run(self, project: str, space: str, query: Any, limit: int, flt: qm.Filter | None,
             exact: bool, with_payload: bool) -> list[Hit]:
        common.check_limit(limit)
        response = self.client.query_points(self._collection(project, space), query=query, query_filter=flt,
                                            limit=limit, with_payload=with_payload,
                                            search_params=None if self._local else _params(exact))
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    def optimize(self, project: str, space: str) -> None:
        """A server builds its HNSW index in the background; nothing to do but check the space."""
        with self._guard("optimize"):
            self._collection(project, space)

    def build_index(self, project: str, space: str) -> bool:
        """The server indexes by itself, without stopping readers: nothing to do but check the space."""
        self.optimize(project, space)
        return True

    def index_status(self, project: str, space: str) -> tuple[int, int]:
        with self._guard("index_status"):
            info = self.client.get_collection(self._collection(project, space))
            total = int(info.points_count or 0)
            # local mode has no index (every search is exact): report it as none indexed, like a fresh space
            return (0 if self._local else int(info.indexed_vectors_count or 0)), total

    # Listed last: the neighbour graph of the analysis (core.pipeline.analyse) runs on the server.
    capabilities: frozenset[str] = frozenset({"server_knn"})

    def neighbours(self, project: str, space: str, ids: Sequence[str], k: int,
                   flt: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        common.check_limit(k + 1)
        out_ids = np.full((len(ids), k), "", dtype=object)
        out_sims = np.full((len(ids), k), np.nan, dtype=np.float32)
        with self._guard("neighbours"):
            name, server_flt = self._collection(project, space), to_server(flt)
            params = None if self._local else qm.SearchParams(hnsw_ef=max(64, 4 * k))
            for start in range(0, len(ids), NEIGHBOUR_BATCH):
                chunk = [common.check_id(i) for i in ids[start : start + NEIGHBOUR_BATCH]]
                requests = [qm.QueryRequest(query=pid, filter=server_flt, limit=k + 1, params=params,
                                            with_payload=False) for pid in chunk]
                for row, (pid, res) in enumerate(zip(chunk, self.client.query_batch_points(name, requests),
                                                     strict=True), start=start):
                    hits = [(str(p.id), p.score) for p in res.points if str(p.id) != pid][:k]
                    out_ids[row, : len(hits)] = [h[0] for h in hits]
                    out_sims[row, : len(hits)] = [h[1] for h in hits]
        return out_ids, out_sims
