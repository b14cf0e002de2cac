"""Point operations and search of EdgeStore (Qdrant Edge), kept apart from its catalog code."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import qdrant_edge as qe

from core.errors import NotFoundError
from core.filters import Filter
from core.store import common, journal, revisions
from core.store import edge_shards as es
from core.store.edge_filters import to_edge
from core.types import META, Hit, Progress, SpaceInfo


def _equal(stored: Any, wanted: Any) -> bool:
    """Qdrant's match semantics, which the server adapter gets from the engine: true/false match
    only true/false, strings only strings, an int only an int, a float any number of that value."""
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return type(stored) is type(wanted) and stored == wanted
    if isinstance(wanted, str) or isinstance(stored, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    if isinstance(wanted, int):
        return isinstance(stored, int) and stored == wanted
    return isinstance(stored, (int, float)) and stored == wanted


def _matches(payload: dict[str, Any], path: str, values: tuple[Any, ...]) -> bool:
    """payload[path] (dotted) equals one of values; a list payload matches when any element does
    (as in Qdrant), with true/false never equal to 1/0."""
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    elements = value if isinstance(value, list) else [value]
    return any(_equal(element, wanted) for element in elements for wanted in values)


# A full read of at least this many points closes the space's shard afterwards (see vectors()).
RELEASE_AFTER_READ = 50_000
# A cold space's shard is closed after this many points written (_release_after_write) or read in
# one scroll (_scroll_releasing): at most this many points' pages stay resident (~0.3 GB at 512-d).
# Each close costs a load (1.2 s for a cold 300k shard), so 100k rather than 20k: measured on the
# CLI ingest of 300k x 512, peak RSS 2.08 GB (not cold) -> 1.27 GB (100k) / 1.11 GB (20k, 1.5x the time).
RELEASE_EVERY = 100_000
# A scroll releases its pages that way only while the shard loads in at most this long: an indexed
# 1M x 512 shard loads in 3.5-4 s (its int8 copy is read into memory), and ten reloads made a 1M map
# 183 s instead of 120 s. Such a scroll keeps the pages it touched (file-backed, reclaimable: ~2 GB
# at 1M) until vectors() closes the shard after the read.
RELOAD_MAX_S = 1.0
_PAGE = 1024  # points per scroll page
# A long read (payloads / vectors of a whole space) holds the store for about this long at a time,
# then lets the operations queued meanwhile run (other sessions' counts, searches, thumbnails'
# payloads; another process's turn) before its next slice: a 100k-point read is ~30 slices.
SLICE_S = 0.05


class EdgeOps:
    """Mixin: needs hold(operation), _shard(project, space), _info(...), _space_list(project),
    close_space(project, space), _vectors_cold(project, space) and a _written dict."""

    _written: dict[tuple[str, str], int]  # points upserted per open shard since it was loaded
    _load_seconds: dict[tuple[str, str], float]  # how long the last load of each space's shard took

    def hold(self, operation: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _shard(self, project: str, space: str) -> qe.EdgeShard:
        raise NotImplementedError

    def _info(self, project: str, space: str) -> SpaceInfo:
        raise NotImplementedError

    def _space_list(self, project: str) -> list[str]:
        raise NotImplementedError

    def _bump(self, project: str, spaces: list[str] | tuple[str, ...] = (), *, payload_only: bool = False,
              groups: journal.Groups | None = None) -> None:
        raise NotImplementedError

    def close_space(self, project: str, space: str) -> None:
        raise NotImplementedError

    def _vectors_cold(self, project: str, space: str) -> bool:
        raise NotImplementedError

    def _release_after_write(self, project: str, space: str, written: int) -> None:
        """Close the space's shard once RELEASE_EVERY points were written since it was loaded,
        when its vectors are "cold" (mapped, not loaded into memory): every page a write touched
        stays resident while the shard is open (Edge's own ~4.9 MB per 1k points: an ingest of 1M
        peaked at 6.3 GB), and a cold shard loads again without reading its vectors. Measured on
        300k x 512 (Edge alone, closing every 20k points): peak RSS 1.65 -> 0.64 GB. A "cached" shard
        would read every vector back at each load, so it is left open."""
        key = (project, space)
        self._written[key] = self._written.get(key, 0) + written
        if self._written[key] >= RELEASE_EVERY and self._vectors_cold(project, space):
            self.close_space(project, space)  # resets the count

    def _flt(self, project: str, space: str, flt: Filter | None, exclude: Sequence[str] = ()) -> qe.Filter | None:
        """The Edge filter of a space (true/false conditions resolved to ids, see edge_filters)."""
        shard = self._shard(project, space)

        def bools(field: str, values: tuple[Any, ...]) -> set[str]:
            top, _, rest = field.partition(".")
            pages = es.scroll(shard, None, with_payload=qe.PayloadSelector.Include([top]))
            return {str(r.id) for page in pages for r in page if _matches(r.payload or {}, field, values)}

        return to_edge(flt, exclude, bools)

    # -- points ----------------------------------------------------------------------------
    def upsert(self, project: str, space: str, ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[dict[str, Any]]) -> None:
        with self.hold("upsert"):
            arr = common.check_points(space, self._info(project, space).dim, ids, vectors, payloads)
        # One hold per UPSERT_BATCH, each with its own revision bump: a CLI ingest's 1,024-point calls
        # took 2-4 s on a loaded machine, and the dashboard's sessions waited that long for the store.
        for start in range(0, len(ids), common.UPSERT_BATCH):
            stop = start + common.UPSERT_BATCH
            points = [qe.Point(str(pid), vec.tolist(), common.clean_payload(dict(p)))
                      for pid, vec, p in zip(ids[start:stop], arr[start:stop], payloads[start:stop], strict=True)]
            with self.hold("upsert"):
                self._shard(project, space).update(qe.UpdateOperation.upsert_points(points))
                self._bump(project, [space])
                self._release_after_write(project, space, len(points))

    def existing_ids(self, project: str, space: str, ids: Sequence[str]) -> set[str]:
        with self.hold("existing_ids"):
            records = es.retrieve(self._shard(project, space), [common.check_id(i) for i in ids], False, False)
            return {str(r.id) for r in records}

    def count(self, project: str, space: str, flt: Filter | None = None) -> int:
        with self.hold("count"):
            request = qe.CountRequest(exact=True, filter=self._flt(project, space, flt))
            return int(self._shard(project, space).count(request))

    def payloads(self, project: str, space: str, flt: Filter | None = None,
                 fields: Sequence[str] | None = None) -> pd.DataFrame:
        keys = common.payload_selector_fields(fields)
        selector: Any = qe.PayloadSelector.Include(keys) if keys is not None else True
        columns = common.PayloadColumns()
        with self.hold("payloads"):
            edge_filter = self._flt(project, space, flt)
        with common.gc_paused():  # ~10 objects per point: no cycles to find
            for page in self._sliced_scroll("payloads", project, space, edge_filter, with_payload=selector):
                columns.add(common.uuid_texts([r.id for r in page]), [r.payload or {} for r in page])
        return columns.frame(fields)

    def vectors(self, project: str, space: str, ids: Sequence[str] | None = None,
                flt: Filter | None = None, *, progress: Progress | None = None) -> tuple[list[str], np.ndarray]:
        if ids is not None:
            return self._vectors_of(project, space, ids)
        with self.hold("vectors"):
            dim = self._info(project, space).dim
            edge_filter = self._flt(project, space, flt)
            total = int(self._shard(project, space).count(qe.CountRequest(exact=True, filter=edge_filter)))
        block = common.RowBlock(dim, total)
        with common.gc_paused():
            for page in self._sliced_scroll("vectors", project, space, edge_filter, with_vector=True):
                block.add([str(r.id) for r in page], [es.vector_of(r) for r in page])
                if progress is not None:
                    progress(len(block.ids), max(total, len(block.ids)))
        if len(block.ids) >= RELEASE_AFTER_READ:
            # A loaded shard keeps its vector files mapped, and every page a full read touched
            # stays in this process's RSS (0.9 GB at 300k x 512, ~3 GB at 1M) on top of the
            # block the caller now holds: close it (the next operation loads it again: 2 s at 300k).
            with self.hold("vectors"):
                self.close_space(project, space)
        return block.sorted_by_id()  # Edge scrolls in id order: no reordering in practice

    def _sliced_scroll(self, operation: str, project: str, space: str, flt: qe.Filter | None, *,
                       with_payload: Any = False, with_vector: bool = False) -> Iterator[list[qe.Record]]:
        """Pages of records in id order, read under the lease in slices of about SLICE_S (see
        SLICE_S); the caller consumes each slice's pages with the store free. Offset paging by id
        reads each point at most once; a write between slices shows or not, as over a server's
        scroll. With vectors, a cold space's shard is closed and loaded again every RELEASE_EVERY
        points read when that load is cheap (RELOAD_MAX_S): the vector pages a scroll touched
        would otherwise stay resident (2 GB at 1M x 512) next to the block being filled."""
        offset: Any = None
        read = 0
        while True:
            pages: list[list[qe.Record]] = []
            with self.hold(operation):
                until = time.monotonic() + SLICE_S
                while offset is not None or not pages:
                    request = qe.ScrollRequest(offset=offset, limit=_PAGE, filter=flt, with_payload=with_payload,
                                               with_vector=with_vector)
                    records, offset = self._shard(project, space).scroll(request)
                    pages.append(records)
                    read += len(records)
                    if with_vector and offset is not None and read >= RELEASE_EVERY and self._cheap_reload(
                            project, space):
                        self.close_space(project, space)  # the next page loads it again (offset paging)
                        read = 0
                    if time.monotonic() >= until:
                        break
            yield from (page for page in pages if page)
            if offset is None:
                return

    def _cheap_reload(self, project: str, space: str) -> bool:
        cheap = self._load_seconds.get((project, space), 0.0) <= RELOAD_MAX_S
        return cheap and self._vectors_cold(project, space)

    def _vectors_of(self, project: str, space: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The vectors of these ids, in that order (missing ids skipped), one page (and one short
        hold of the store) at a time."""
        with self.hold("vectors"):
            dim = self._info(project, space).dim
        wanted = [common.check_id(i) for i in ids]
        found: dict[str, int] = {}
        block = common.RowBlock(dim, len(wanted))
        for start in range(0, len(wanted), common.SCROLL_BATCH):
            with self.hold("vectors"):
                records = es.retrieve(self._shard(project, space), wanted[start:start + common.SCROLL_BATCH],
                                      False, True)
            found.update((str(r.id), len(block.ids) + at) for at, r in enumerate(records))
            block.add([str(r.id) for r in records], [es.vector_of(r) for r in records])
        _, rows = block.finish()
        order = [str(i) for i in ids if str(i) in found]
        return order, rows[np.asarray([found[i] for i in order], dtype=np.int64)].reshape(-1, dim)

    def iter_vectors(self, project: str, space: str, flt: Filter | None = None,
                     batch: int = 2048) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        offset: Any = None
        while True:
            with self.hold("iter_vectors"):  # per batch, so a hand-over can happen between
                dim = self._info(project, space).dim
                request = qe.ScrollRequest(offset=offset, limit=batch, filter=self._flt(project, space, flt),
                                           with_payload=True, with_vector=True)
                records, offset = self._shard(project, space).scroll(request)
            if records:
                yield ([str(r.id) for r in records], common.as_array([es.vector_of(r) for r in records], dim),
                       [dict(r.payload or {}) for r in records])
            if offset is None:
                return

    def set_payload(self, project: str, ids: Sequence[str], values: Sequence[dict[str, Any]]) -> int:
        groups = common.group_values(ids, values)
        updated: set[str] = set()
        with self.hold("set_payload"):
            for space in self._space_list(project):
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
            if updated:
                only = revisions.payload_only(values)
                self._bump(project, self._space_list(project), payload_only=only,
                           groups=journal.written(groups, updated) if only else None)
        return len(updated)

    # -- search ------------------------------------------------------------------------------
    def query(self, project: str, space: str, vector: np.ndarray, limit: int = 10,
              flt: Filter | None = None, exact: bool = False, with_payload: bool = True) -> list[Hit]:
        with self.hold("query"):
            query = common.check_query_vector(vector, self._info(project, space).dim, space)
            edge_filter = self._flt(project, space, flt)
            return self._run(project, space, qe.Query.Nearest(query), limit, edge_filter, exact, with_payload)

    def recommend(self, project: str, space: str, positive: Sequence[str | np.ndarray],
                  negative: Sequence[str | np.ndarray] = (), limit: int = 10, flt: Filter | None = None,
                  exact: bool = False, with_payload: bool = True) -> list[Hit]:
        if not positive and not negative:
            raise ValueError("recommend needs at least one positive or negative example")
        with self.hold("recommend"):
            pos, neg, example_ids = self._examples(project, space, positive, negative)
            query = qe.Query.RecommendBestScore(qe.RecommendQuery(pos, neg))
            edge_filter = self._flt(project, space, flt, example_ids)
            return self._run(project, space, query, limit, edge_filter, exact, with_payload)

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
        common.check_limit(limit)
        request = qe.QueryRequest(limit=limit, query=query, filter=flt, with_payload=with_payload,
                                  with_vector=False, params=es.search_params(exact))
        points = self._shard(project, space).query(request)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    # Listed last: Edge runs in this process, where the analysis's own IVF kNN is faster than
    # one query per point, so it declares no server_knn; neighbours() is there for completeness.
    capabilities: frozenset[str] = frozenset()

    def neighbours(self, project: str, space: str, ids: Sequence[str], k: int,
                   flt: Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
        out_ids = np.full((len(ids), k), "", dtype=object)
        out_sims = np.full((len(ids), k), np.nan, dtype=np.float32)
        found, vectors = self.vectors(project, space, ids=list(ids))
        rows = {pid: i for i, pid in enumerate(ids)}
        for pid, vec in zip(found, vectors, strict=True):
            hits = [h for h in self.query(project, space, vec, limit=k + 1, flt=flt, with_payload=False)
                    if h.id != pid][:k]
            out_ids[rows[pid], : len(hits)] = [h.id for h in hits]
            out_sims[rows[pid], : len(hits)] = [h.score for h in hits]
        return out_ids, out_sims

