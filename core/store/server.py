"""ServerStore: the VectorStore on a Qdrant server (or qdrant-client's local mode) via qdrant-client.

One collection per (project, space) named es__<project>__<space> (names encoded reversibly by
core.store.names, so no lookup table is needed), cosine distance, keyword/float payload indexes
on core.types fields, and one `es__documents` collection (1-d dummy vectors) for the documents
area. `path=":memory:"` or a folder selects qdrant-client's local mode (what the tests use to
exercise this adapter; too slow to be the default past ~20k points). Library errors become
CoreError: unreachable server -> StoreUnavailableError naming the URL (never the API key),
401/403 -> a message about the API key, a folder used by another process -> StoreLockedError.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import httpx
import pydantic
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.config import redact_url
from core.errors import (
    CoreError,
    NotFoundError,
    StoreLockedError,
    StoreUnavailableError,
)
from core.filters import Filter, items_only
from core.store import common, journal, schema
from core.store import index_config as ic
from core.store.documents import KEYWORD_DOC_FIELDS, DocumentArea
from core.store.names import collection_name, parse_collection_name, validate_name
from core.store.server_filters import to_server
from core.store.server_meta import ServerMeta
from core.store.server_ops import ServerOps
from core.types import DATASET, FLOAT_FIELDS, KEYWORD_FIELDS, DatasetInfo, SpaceInfo

log = logging.getLogger(__name__)
DOCS_COLLECTION = "es__documents"


class ServerStore(ServerOps):
    """VectorStore over qdrant-client: a server at `url` (+ api_key), or local mode at `path`."""

    def __init__(self, url: str | None = None, api_key: str | None = None, path: str | None = None,
                 timeout: float = 10, check_schema: bool = True) -> None:
        if (url is None) == (path is None):
            raise ValueError("ServerStore needs exactly one of url= (a Qdrant server) or path= (local mode)")
        self._where = f"Qdrant server at {redact_url(url)}" if url else f"qdrant-client local mode at {path}"
        self._local = url is None  # local mode: brute force only, payload indexes are no-ops
        # Local mode is not thread-safe: one call at a time. Over HTTP qdrant-client is (one
        # httpx connection pool), and the server orders concurrent requests itself, so a dashboard's
        # sessions must not queue behind one another's 100k-point reads: no lock there.
        self._mutex: AbstractContextManager[Any] = threading.RLock() if url is None else nullcontext()
        self._creating = threading.RLock()  # check-then-create of a collection, even over HTTP
        self._infos: dict[tuple[str, str], SpaceInfo] = {}
        self._docs = DocumentArea(self)
        self._docs_ready = False
        self.client = self._connect(url, api_key, path, timeout)
        self._meta = ServerMeta(self.client, self._docs_collection)
        try:
            with self._guard("schema check"):
                self._stamp_if_new()
                if check_schema:
                    schema.check_version(self.schema_version(), self._where)
        except CoreError:
            self.client.close()
            raise

    def _connect(self, url: str | None, api_key: str | None, path: str | None, timeout: float) -> QdrantClient:
        try:
            if url:
                # No version probe: get_collections() below is the one fail-fast request.
                client = QdrantClient(url=url, api_key=api_key, timeout=int(max(1, timeout)),
                                      check_compatibility=False)
            elif path == ":memory:":
                client = QdrantClient(location=":memory:")
            else:
                client = QdrantClient(path=path)
        except RuntimeError as e:  # local mode: "already accessed by another instance"
            raise StoreLockedError(
                f"The local Qdrant folder {path} is used by another process: stop it or use a Qdrant server"
            ) from e
        with self._guard("connect"):
            client.get_collections()  # fail fast on a wrong URL or key
        return client

    @contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Serialise calls in local mode, and turn qdrant-client / HTTP errors into CoreError."""
        try:
            with self._mutex:
                yield
        except CoreError:
            raise
        except UnexpectedResponse as e:
            if e.status_code == 404:
                self._infos.clear()  # another client dropped a collection we knew
                raise NotFoundError(f"Not found on the {self._where} during {operation}: {e.reason_phrase}") from e
            if e.status_code in (401, 403):
                raise StoreUnavailableError(
                    f"The {self._where} refused the API key (HTTP {e.status_code}) during {operation}: "
                    "check EMBEDSCOPE_QDRANT_API_KEY"
                ) from e
            raise StoreUnavailableError(
                f"The {self._where} failed {operation}: HTTP {e.status_code} {e.reason_phrase}"
            ) from e
        except (json.JSONDecodeError, pydantic.ValidationError) as e:
            # Something answered on that port, but not with Qdrant's API (another service, a proxy
            # error page): say so instead of showing a parser traceback.
            raise StoreUnavailableError(
                f"The {self._where} did not answer like a Qdrant server during {operation} "
                f"({type(e).__name__}). Check that EMBEDSCOPE_QDRANT_URL points at Qdrant's HTTP port (6333)."
            ) from e
        except (ResponseHandlingException, httpx.HTTPError, ConnectionError, TimeoutError) as e:
            # The root cause ("Connection refused", a DNS failure, a timeout) tells the user what
            # to fix; qdrant-client wraps it. Never the API key: it lives in headers, not here.
            cause = e.__cause__ or e.__context__ or e
            raise StoreUnavailableError(
                f"Cannot reach the {self._where} ({operation}): {type(cause).__name__}: {cause}. "
                "Check that the server is running and EMBEDSCOPE_QDRANT_URL points at it."
            ) from e

    # -- schema and revisions ------------------------------------------------------------------
    def _stamp_if_new(self) -> None:
        """Record the current layout on a server (or local folder) that holds no store data yet."""
        names = [c.name for c in self.client.get_collections().collections]
        if not any(n == DOCS_COLLECTION or parse_collection_name(n) for n in names):
            self._meta.write_schema(schema.SCHEMA_VERSION)

    def schema_version(self) -> int:
        with self._guard("schema_version"):
            found = self._meta.schema()
            return schema.LEGACY_VERSION if found is None else found

    def write_schema_version(self, version: int) -> None:
        with self._guard("write_schema_version"):
            self._meta.write_schema(version)

    def revision(self, project: str, space: str | None = None) -> str:
        with self._guard("revision"):
            return self._meta.revision(project, space)

    def document_revision(self, project: str, kind: str) -> str:
        with self._guard("document_revision"):
            return self._meta.document_revision(project, kind)

    def _bump(self, project: str, spaces: Sequence[str] = (), *, payload_only: bool = False,
              groups: journal.Groups | None = None) -> None:
        """New revision tokens after a write (inside the guard, after the write); groups: the values
        of a payload-only write, recorded in the payload journal (core.store.journal)."""
        self._meta.bump(project, spaces, payload_only=payload_only, groups=groups)

    def payload_journal(self, project: str) -> journal.Journal:
        """The project's payload journal (core.store.journal): read() gives None when unreadable."""
        return _ServerJournal(self, project)

    def _read_journal(self, project: str) -> tuple[list[journal.Entry], int] | None:
        try:
            with self._guard("payload_journal"):
                return self._meta.journal_read(project)
        except (CoreError, ValueError, KeyError, TypeError) as e:
            log.warning("payload journal of %r unreadable (%s): payloads are read in full", project, e)
            return None

    def _collection(self, project: str, space: str) -> str:
        """The collection of a space (inside a guard); NotFoundError if absent."""
        name = collection_name(project, space)
        if (project, space) not in self._infos and not self.client.collection_exists(name):
            raise NotFoundError(f"Space {space!r} does not exist in project {project!r}")
        return name

    def _info(self, project: str, space: str) -> SpaceInfo:
        key = (project, space)
        if key not in self._infos:
            name = self._collection(project, space)
            doc = common.load_space_doc(space, self._docs.get(project, common.SPACE_KIND, space))
            if doc:
                self._infos[key] = SpaceInfo.from_dict(doc)
            else:
                vectors = self.client.get_collection(name).config.params.vectors
                assert isinstance(vectors, qm.VectorParams), "space collections have one unnamed vector"
                self._infos[key] = SpaceInfo(space, vectors.size, "vector")
        return self._infos[key]

    def _spaces(self, project: str) -> list[str]:
        names = [c.name for c in self.client.get_collections().collections]
        return sorted(p[1] for p in map(parse_collection_name, names) if p and p[0] == project)

    def _create(self, name: str, dim: int, keyword: Sequence[str], floats: Sequence[str] = (),
                index: ic.SpaceIndex | None = None) -> None:
        """A cosine collection; with `index` (spaces) the measured HNSW / int8 settings of
        core.store.index_config, and payload links only on its linked fields."""
        hnsw = quant = None
        if index is not None:
            hnsw = qm.HnswConfigDiff(m=index.m, ef_construct=index.ef_construct, payload_m=index.payload_m,
                                     full_scan_threshold=index.full_scan_kb(dim))
            if index.int8:
                quant = qm.ScalarQuantization(scalar=qm.ScalarQuantizationConfig(
                    type=qm.ScalarType.INT8, quantile=0.99, always_ram=True))
        self.client.create_collection(name, vectors_config=qm.VectorParams(size=dim, distance=qm.Distance.COSINE),
                                      hnsw_config=hnsw, quantization_config=quant)
        if self._local:
            return
        linked = index.linked_fields if index is not None else ()
        for field in keyword:
            keyword_params = qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, enable_hnsw=field in linked)
            self.client.create_payload_index(
                name, field, keyword_params if index else qm.PayloadSchemaType.KEYWORD, wait=True)
        for field in floats:
            float_params = qm.FloatIndexParams(type=qm.FloatIndexType.FLOAT, enable_hnsw=False)
            self.client.create_payload_index(
                name, field, float_params if index else qm.PayloadSchemaType.FLOAT, wait=True)

    # -- documents backend (DocBackend) -----------------------------------------------------
    def _docs_collection(self) -> str:
        if not self._docs_ready:
            with self._creating:
                if not self.client.collection_exists(DOCS_COLLECTION):
                    self._create(DOCS_COLLECTION, 1, KEYWORD_DOC_FIELDS)
                self._docs_ready = True
        return DOCS_COLLECTION

    def doc_upsert(self, points: list[tuple[str, dict[str, Any]]]) -> None:
        structs = [qm.PointStruct(id=pid, vector=[1.0], payload=payload) for pid, payload in points]
        self.client.upsert(self._docs_collection(), structs, wait=True)

    def doc_scroll(self, flt: Filter) -> list[tuple[str, dict[str, Any]]]:
        records = self._scroll(self._docs_collection(), to_server(flt), batch=64)
        return [(str(r.id), dict(r.payload or {})) for r in records]

    def doc_delete(self, flt: Filter) -> None:
        server_filter = to_server(flt)
        assert server_filter is not None, "documents are always deleted by a filter"
        self.client.delete(self._docs_collection(), points_selector=qm.FilterSelector(filter=server_filter), wait=True)

    # -- projects and spaces ------------------------------------------------------------------
    def describe(self) -> str:
        return self._where

    def list_projects(self) -> list[str]:
        with self._guard("list_projects"):
            names = [c.name for c in self.client.get_collections().collections]
            return sorted({p[0] for p in map(parse_collection_name, names) if p})

    def list_spaces(self, project: str) -> list[SpaceInfo]:
        with self._guard("list_spaces"):
            return [self._info(project, s) for s in self._spaces(project)]

    def get_space(self, project: str, space: str) -> SpaceInfo:
        with self._guard("get_space"):
            return self._info(project, space)

    def ensure_space(self, project: str, info: SpaceInfo) -> SpaceInfo:
        validate_name(project, "project name")
        validate_name(info.name, "space name")
        if info.dim < 1:
            raise ValueError(f"Space {info.name!r} needs a positive dim, got {info.dim}")
        with self._guard("ensure_space"), self._creating:
            name = collection_name(project, info.name)
            if self.client.collection_exists(name):
                existing = self._info(project, info.name)
                common.check_same_dim(project, existing, info.dim)
                return existing
            self._create(name, info.dim, KEYWORD_FIELDS, FLOAT_FIELDS, ic.SPACE_INDEX)
            self._docs.put(project, common.SPACE_KIND, info.name, common.space_doc(info))
            self._infos[(project, info.name)] = info
            self._bump(project, [info.name])
            log.info("created collection %s (dim %d) on the %s", name, info.dim, self._where)
            return info

    def delete_space(self, project: str, space: str) -> None:
        with self._guard("delete_space"):
            name = self._collection(project, space)
            self._infos.pop((project, space), None)
            self.client.delete_collection(name)
            self._docs.delete(project, common.SPACE_KIND, space)
            self._bump(project, [space])

    def list_datasets(self, project: str) -> list[DatasetInfo]:
        with self._guard("list_datasets"):
            counts: dict[str, dict[str, int]] = {}
            for space in self._spaces(project):
                response = self.client.facet(collection_name(project, space), DATASET,
                                             facet_filter=to_server(items_only()), limit=100_000, exact=True)
                for hit in response.hits:
                    counts.setdefault(str(hit.value), {})[space] = int(hit.count)
            return [DatasetInfo(project, name, counts[name]) for name in sorted(counts)]

    def delete_dataset(self, project: str, dataset: str) -> int:
        with self._guard("delete_dataset"):
            flt = to_server(Filter.where(dataset=dataset))
            assert flt is not None
            removed: set[str] = set()
            for space in self._spaces(project):
                name = collection_name(project, space)
                removed.update(str(r.id) for r in self._scroll(name, flt, with_payload=False))
                self.client.delete(name, points_selector=qm.FilterSelector(filter=flt), wait=True)
            self._bump(project, self._spaces(project))
            return len(removed)

    def delete_project(self, project: str) -> None:
        with self._guard("delete_project"):
            spaces = self._spaces(project)
            for space in spaces:
                self._infos.pop((project, space), None)
                self.client.delete_collection(collection_name(project, space))
            kinds = {kind for owner, kind, _ in self._docs.index() if owner == project}
            self._docs.delete_project(project)  # the project's revision points too: bumped again below
            self._bump(project, spaces)
            self._meta.bump_documents(project, kinds)

    # -- documents ------------------------------------------------------------------------------
    def put_document(self, project: str, kind: str, key: str, doc: dict[str, Any]) -> None:
        with self._guard("put_document"):
            self._docs.put(project, kind, key, doc)
            self._bump(project)
            self._meta.bump_documents(project, [kind])

    def get_document(self, project: str, kind: str, key: str) -> dict[str, Any] | None:
        with self._guard("get_document"):
            return self._docs.get(project, kind, key)

    def list_documents(self, project: str, kind: str) -> list[str]:
        with self._guard("list_documents"):
            return self._docs.list(project, kind)

    def delete_document(self, project: str, kind: str, key: str) -> bool:
        with self._guard("delete_document"):
            existed = self._docs.delete(project, kind, key)
            self._bump(project)
            self._meta.bump_documents(project, [kind])
            return existed

    def document_index(self) -> list[tuple[str, str, str]]:
        with self._guard("document_index"):
            return self._docs.index()

    def close(self) -> None:
        with self._mutex:
            self.client.close()


class _ServerJournal:
    """A project's payload journal on a ServerStore (core.store.journal.Journal)."""

    def __init__(self, store: ServerStore, project: str) -> None:
        self._store, self._project = store, project

    def read(self) -> tuple[list[journal.Entry], int] | None:
        return self._store._read_journal(self._project)
