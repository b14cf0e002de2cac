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

import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from core.errors import NotFoundError, StoreUnavailableError
from core.filters import Filter, items_only
from core.store import common, edge_build, journal, schema
from core.store import edge_shards as es
from core.store.documents import KEYWORD_DOC_FIELDS, DocumentArea
from core.store.edge_filters import to_edge
from core.store.edge_ops import EdgeOps
from core.store.lease import StoreLease
from core.store.names import encode, validate_name
from core.store.revisions import FileRevisions
from core.types import DATASET, DatasetInfo, SpaceInfo

log = logging.getLogger(__name__)
SCHEMA_FILE = "schema.json"  # {"schema": <version>}, written when the store folder is created
# <root>/counts/<project>/<space>.json: {"revision": token, "counts": {dataset: items}} (list_datasets)
COUNTS_DIR = "counts"


class EdgeStore(EdgeOps):
    """VectorStore on Qdrant Edge under `path` (a folder, created if needed, or ":memory:").

    lock_timeout_s: how long an operation waits for another process to hand the store over
    before raising StoreLockedError. check_schema=False opens a store of another layout version
    (for core.store.migrate); otherwise StoreOutdatedError / StoreTooNewError.
    """

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0, check_schema: bool = True) -> None:
        self._memory = str(path) == ":memory:"
        try:
            self._root = Path(tempfile.mkdtemp(prefix="embedscope-edge-")) if self._memory else Path(path)
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnavailableError(f"Cannot create the embedded store folder {path}: {e}") from e
        if self._memory:  # a throw-away store leaves nothing behind, even if never closed
            weakref.finalize(self, shutil.rmtree, str(self._root), True)
        self._shards: dict[tuple[str, str], qe.EdgeShard] = {}
        self._written: dict[tuple[str, str], int] = {}
        self._load_seconds: dict[tuple[str, str], float] = {}  # the last load of each space's shard
        self._docs_shard: qe.EdgeShard | None = None
        self._infos: dict[tuple[str, str], tuple[int, SpaceInfo]] = {}  # (config mtime, info)
        self._counts_due: set[tuple[str, str]] = set()  # spaces written since their counts file was kept
        self._lease = StoreLease(self._root, self._close_shards, timeout_s=lock_timeout_s)
        self._docs = DocumentArea(self)
        self._revisions = FileRevisions(self._root)
        self._closed = False
        self._stamp_if_new()
        for removed, size in edge_build.clean_stale_builds(self._root):
            log.warning("removed %s (%.1f MB) left by an interrupted index build", removed, size / 1e6)
        if check_schema:
            schema.check_version(self.schema_version(), str(path))

    # -- schema and revisions ----------------------------------------------------------------
    def _stamp_if_new(self) -> None:
        """Record the current layout in a store folder that holds no data yet."""
        if (self._root / SCHEMA_FILE).is_file():
            return
        if not (self._root / es.SPACES_DIR).exists() and not (self._root / es.DOCUMENTS_DIR).exists():
            self.write_schema_version(schema.SCHEMA_VERSION)

    def schema_version(self) -> int:
        found = schema.read_stamp_file(self._root / SCHEMA_FILE)
        return schema.LEGACY_VERSION if found is None else found  # no stamp: data from before stamps

    def write_schema_version(self, version: int) -> None:
        schema.write_stamp_file(self._root / SCHEMA_FILE, version)

    def revision(self, project: str, space: str | None = None) -> str:
        # Read without the lease (a file written atomically by the holder): free on every rerun.
        return self._revisions.get(project, space)

    def document_revision(self, project: str, kind: str) -> str:
        return self._revisions.document_revision(project, kind)  # a file read, like revision()

    def _bump(self, project: str, spaces: list[str] | tuple[str, ...] = (), *, payload_only: bool = False,
              groups: journal.Groups | None = None) -> None:
        """New revision tokens after a write (call inside the lease, after the write); groups: the
        values of a payload-only write, recorded in the payload journal before the tokens move."""
        def record(links: journal.Links) -> None:
            journal.record(self.payload_journal(project).append, links, groups or ())

        self._revisions.bump(project, spaces, payload_only=payload_only,
                             before_write=record if groups is not None else None)
        self._counts_due.update((project, space) for space in spaces)

    def payload_journal(self, project: str) -> journal.FileJournal:
        """The project's payload journal (core.store.journal): read without the lease."""
        return journal.FileJournal(self._revisions.journal_folder(project))

    # -- plumbing ------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The store folder."""
        return self._root

    def close_space(self, project: str, space: str) -> None:
        """Close one space's shard (call inside hold(); the next operation re-opens it)."""
        shard = self._shards.pop((project, space), None)
        self._written.pop((project, space), None)
        if shard is not None:
            shard.close()

    def _vectors_cold(self, project: str, space: str) -> bool:
        """True when the space's shard maps its vectors without loading them (memory "cold")."""
        try:
            config = json.loads((es.space_dir(self._root, project, space) / es.CONFIG_FILE).read_text())
            return bool(config["vectors"][""].get("memory") == "cold")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    def _close_shards(self) -> None:
        """Close every open shard (on hand-over and close), first keeping the dataset counts of the
        spaces written meanwhile: the next holder (the dashboard's sidebar, next to a CLI ingest)
        then reads them from a file instead of loading the shard to count."""
        self._keep_counts()
        shards = list(self._shards.values()) + ([self._docs_shard] if self._docs_shard else [])
        self._shards.clear()
        self._written.clear()
        self._docs_shard = None
        for shard in shards:
            shard.close()  # close() flushes (measured: data survives, and the next load is fast)

    def _keep_counts(self) -> None:
        due, self._counts_due = self._counts_due, set()
        for project, space in due:
            if (project, space) in self._shards:  # counting an open shard costs milliseconds
                try:
                    self._dataset_counts(project, space)
                except Exception as e:  # noqa: BLE001 - only a cache: the reader counts itself
                    log.debug("could not keep the dataset counts of %s/%s: %s", project, space, e)

    def _shard(self, project: str, space: str) -> qe.EdgeShard:
        """The open shard of a space (call inside a lease); NotFoundError if absent."""
        key = (project, space)
        if key not in self._shards:
            path = es.space_dir(self._root, project, space)
            if not (path / es.CONFIG_FILE).is_file():
                raise NotFoundError(f"Space {space!r} does not exist in project {project!r}")
            self._clean_temp(path)
            started = time.perf_counter()
            self._shards[key] = es.open_shard(path)
            self._load_seconds[key] = time.perf_counter() - started
            for field in es.add_missing_indexes(self._shards[key]):
                log.info("added the %r payload index to %s/%s", field, project, space)
        return self._shards[key]

    def _clean_temp(self, path: Path) -> None:
        """Drop the temporary segments of an index build that was killed (inside the lease, before
        the load: no process has this shard open, so nothing there is in use)."""
        for removed, size in es.clean_temp_segments(path):
            log.warning("removed %s (%.1f MB) left by an interrupted index build", removed, size / 1e6)

    def _docs_backend(self) -> qe.EdgeShard:
        if self._docs_shard is None:
            path = self._root / es.DOCUMENTS_DIR
            if (path / es.CONFIG_FILE).is_file():
                self._clean_temp(path)
                self._docs_shard = es.open_shard(path)
            else:
                self._docs_shard = es.create_shard(path, 1, KEYWORD_DOC_FIELDS, small=True)
        return self._docs_shard

    def _info(self, project: str, space: str) -> SpaceInfo:
        """The space's descriptor, cached across hand-overs while its shard config is unchanged
        (re-reading the documents shard after every hand-over would double the re-open cost)."""
        config = es.space_dir(self._root, project, space) / es.CONFIG_FILE
        try:
            stamp = config.stat().st_mtime_ns
        except FileNotFoundError:
            raise NotFoundError(f"Space {space!r} does not exist in project {project!r}") from None
        cached = self._infos.get((project, space))
        if cached is None or cached[0] != stamp:
            doc = common.load_space_doc(space, self._docs.get(project, common.SPACE_KIND, space))
            info = SpaceInfo.from_dict(doc) if doc else SpaceInfo(space, es.shard_dim(config.parent), "vector")
            self._infos[(project, space)] = (stamp, info)
        return self._infos[(project, space)][1]

    def _space_list(self, project: str) -> list[str]:
        return es.space_names(es.project_dir(self._root, project))

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
        with self.hold("list_projects"):
            return sorted(es.project_dirs(self._root))

    def list_spaces(self, project: str) -> list[SpaceInfo]:
        with self.hold("list_spaces"):
            return [self._info(project, s) for s in self._space_list(project)]

    def get_space(self, project: str, space: str) -> SpaceInfo:
        with self.hold("get_space"):
            return self._info(project, space)

    def ensure_space(self, project: str, info: SpaceInfo) -> SpaceInfo:
        validate_name(project, "project name")
        validate_name(info.name, "space name")
        if info.dim < 1:
            raise ValueError(f"Space {info.name!r} needs a positive dim, got {info.dim}")
        with self.hold("ensure_space"):
            path = es.space_dir(self._root, project, info.name)
            if (path / es.CONFIG_FILE).is_file():
                existing = self._info(project, info.name)
                common.check_same_dim(project, existing, info.dim)
                return existing
            self._shards[(project, info.name)] = es.create_space_shard(path, info.dim)
            self._docs.put(project, common.SPACE_KIND, info.name, common.space_doc(info))
            self._bump(project, [info.name])
            log.info("created space %s/%s (dim %d) in %s", project, info.name, info.dim, self._root)
            return info

    def delete_space(self, project: str, space: str) -> None:
        with self.hold("delete_space"):
            shard = self._shards.pop((project, space), None)
            if shard is not None:
                shard.close()
            self._written.pop((project, space), None)
            self._infos.pop((project, space), None)
            path = es.space_dir(self._root, project, space)
            if not path.is_dir():
                raise NotFoundError(f"Space {space!r} does not exist in project {project!r}")
            shutil.rmtree(path)
            (self._root / COUNTS_DIR / encode(project) / f"{encode(space)}.json").unlink(missing_ok=True)
            self._docs.delete(project, common.SPACE_KIND, space)
            self._bump(project, [space])
            if not any(path.parent.iterdir()):
                path.parent.rmdir()

    def list_datasets(self, project: str) -> list[DatasetInfo]:
        with self.hold("list_datasets"):
            counts: dict[str, dict[str, int]] = {}
            for space in self._space_list(project):
                for name, n in self._dataset_counts(project, space).items():
                    counts.setdefault(name, {})[space] = n
            return [DatasetInfo(project, name, counts[name]) for name in sorted(counts)]

    def _dataset_counts(self, project: str, space: str) -> dict[str, int]:
        """Items per dataset of one space (inside the lease), kept in a small file while the space's
        revision is unchanged: counting loads the space's shard, which dominated reopening a
        persisted map (7.5 s of a 1M-point shard); the file is one read. Every write bumps the
        revision inside the lease, so a count read under the current token is current."""
        revision = self._revisions.get(project, space)
        path = self._root / COUNTS_DIR / encode(project) / f"{encode(space)}.json"
        try:
            cached = json.loads(path.read_text())
            if cached.get("revision") == revision:
                return {str(k): int(v) for k, v in cached["counts"].items()}
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # absent or unreadable: count again
        request = qe.FacetRequest(DATASET, limit=100_000, exact=True, filter=to_edge(items_only()))
        counts = {str(hit.value): int(hit.count) for hit in self._shard(project, space).facet(request).hits}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps({"revision": revision, "counts": counts}))
            os.replace(tmp, path)
        except OSError as e:  # a read-only store still lists its datasets
            log.debug("could not keep the dataset counts of %s/%s: %s", project, space, e)
        return counts

    def delete_dataset(self, project: str, dataset: str) -> int:
        with self.hold("delete_dataset"):
            flt = to_edge(Filter.where(dataset=dataset))
            assert flt is not None
            removed: set[str] = set()
            for space in self._space_list(project):
                shard = self._shard(project, space)
                for page in es.scroll(shard, flt, with_payload=False):
                    removed.update(str(r.id) for r in page)
                shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
            self._bump(project, self._space_list(project))
            return len(removed)

    def delete_project(self, project: str) -> None:
        with self.hold("delete_project"):
            for key in [k for k in self._shards if k[0] == project]:
                self._shards.pop(key).close()
                self._written.pop(key, None)
                self._infos.pop(key, None)
            spaces = sorted(set(self._space_list(project)) | set(self._revisions.spaces(project)))
            folder = es.project_dir(self._root, project)
            if folder.is_dir():
                shutil.rmtree(folder)
            shutil.rmtree(self._root / COUNTS_DIR / encode(project), ignore_errors=True)
            kinds = {kind for owner, kind, _ in self._docs.index() if owner == project}
            self._docs.delete_project(project)
            self._bump(project, spaces)
            self._revisions.bump_documents(project, kinds)

    # -- documents ---------------------------------------------------------------------------
    def put_document(self, project: str, kind: str, key: str, doc: dict[str, Any]) -> None:
        with self.hold("put_document"):
            self._docs.put(project, kind, key, doc)
            self._bump(project)
            self._revisions.bump_documents(project, [kind])

    def get_document(self, project: str, kind: str, key: str) -> dict[str, Any] | None:
        with self.hold("get_document"):
            return self._docs.get(project, kind, key)

    def list_documents(self, project: str, kind: str) -> list[str]:
        with self.hold("list_documents"):
            return self._docs.list(project, kind)

    def delete_document(self, project: str, kind: str, key: str) -> bool:
        with self.hold("delete_document"):
            existed = self._docs.delete(project, kind, key)
            self._bump(project)
            self._revisions.bump_documents(project, [kind])
            return existed

    def document_index(self) -> list[tuple[str, str, str]]:
        with self.hold("document_index"):
            return self._docs.index()

    # -- maintenance -------------------------------------------------------------------------
    @contextmanager
    def hold(self, operation: str) -> Iterator[None]:
        """Keep the store for a sequence of calls (e.g. a whole CLI ingest) so that no other
        process interleaves: `with store.hold("ingest"): ...`. Others wait, then StoreLockedError.

        Every operation runs inside it; Edge's own errors (plain Exception) become
        StoreUnavailableError naming the folder and the operation.
        """
        if self._closed:
            raise StoreUnavailableError(f"The embedded store at {self._root} was closed; open it again")
        try:
            with self._lease.hold(operation):
                yield
        except Exception as e:
            if type(e) is not Exception:  # CoreError, ValueError...: already meaningful
                raise
            raise StoreUnavailableError(f"Qdrant Edge failed {operation} in {self._root}: {e}") from e

    def optimize(self, project: str, space: str) -> None:
        """Build the space's HNSW index in this process (minutes at 1M points: never on the request
        path), and vacuum the documents shard (replaced documents leave deleted chunks behind).
        Measured: Edge holds the GIL while it optimizes, so every other thread of the process
        stops meanwhile; a server (the dashboard) calls build_index instead."""
        with self.hold("optimize"):
            self._shard(project, space).optimize()
            self._docs_backend().optimize()

    def build_index(self, project: str, space: str) -> bool:
        """Build the index without stopping this process: a child process optimizes a copy of the
        shard while this one keeps answering (exact) searches, then the copy replaces the shard if
        the space did not change meanwhile (core.store.edge_build). Returns True when swapped in."""
        return edge_build.build_on_copy(self, project, space)

    def index_status(self, project: str, space: str) -> tuple[int, int]:
        with self.hold("index_status"):
            info = self._shard(project, space).info()
            return int(info.indexed_vectors_count), int(info.points_count)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lease.release()
        if self._memory:
            shutil.rmtree(self._root, ignore_errors=True)
