"""Opening, creating and reading Qdrant Edge shards: the embedded store's low-level plumbing.

Layout under the store root (one shard per (project, space), see core/store/base.py):

    <root>/spaces/<project>/<space>/   one EdgeShard per embedding space (names encoded by
                                       core.store.names.encode, so any valid name is a folder)
    <root>/documents/                  one EdgeShard with 1-d dummy vectors for JSON documents
    <root>/.embedscope.lock, .holder, .wanted    the inter-process lease (core.store.lease)

Edge could add a named vector to an existing shard (UpdateOperation.create_dense_vector
exists), but one shard per space keeps spaces independent: deleting or optimising one space
never rewrites another, and a space's shard has a single unnamed vector.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from core.errors import StoreUnavailableError
from core.store import index_config as ic
from core.store.index_config import SpaceIndex
from core.store.names import decode, encode
from core.types import FLOAT_FIELDS, KEYWORD_FIELDS

SPACES_DIR = "spaces"
DOCUMENTS_DIR = "documents"
CONFIG_FILE = "edge_config.json"
TEMP_DIR = "temp_segments"  # where Edge builds optimized segments before moving them in


def project_dir(root: Path, project: str) -> Path:
    """The folder holding the space shards of one project."""
    return root / SPACES_DIR / encode(project)


def space_dir(root: Path, project: str, space: str) -> Path:
    """The shard folder of one (project, space)."""
    return project_dir(root, project) / encode(space)


def project_dirs(root: Path) -> dict[str, Path]:
    """Project name -> folder, for every project with at least one space."""
    base = root / SPACES_DIR
    if not base.is_dir():
        return {}
    return {
        decode(d.name): d
        for d in sorted(base.iterdir())
        if d.is_dir() and any((s / CONFIG_FILE).is_file() for s in d.iterdir())
    }


def space_names(project_dir: Path) -> list[str]:
    """Names of the spaces (shard folders) of one project folder."""
    if not project_dir.is_dir():
        return []
    return sorted(decode(s.name) for s in project_dir.iterdir() if (s / CONFIG_FILE).is_file())


def shard_dim(path: Path) -> int:
    """The vector size a shard was created with (read from its edge_config.json)."""
    config = json.loads((path / CONFIG_FILE).read_text())
    return int(config["vectors"][""]["size"])


def folder_size(path: Path) -> int:
    """Bytes of the files under path (or of the file path)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def clean_temp_segments(path: Path) -> list[tuple[Path, int]]:
    """Remove what an interrupted optimize left in the shard's temp_segments/ folder; returns
    (removed path, bytes). Call only while no process has the shard open (inside the lease, before
    load): Edge builds a new segment there and moves it into segments/ when done, so anything
    still there (temp_segments/segment_builder_*: 171 MB at 200k x 512-d, 2.4 GB at 1M) belongs to
    a build that died, and Edge itself never references nor removes it."""
    temp = path / TEMP_DIR
    if not temp.is_dir():
        return []
    removed = []
    for child in sorted(temp.iterdir()):
        size = folder_size(child)
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
        removed.append((child, size))
    return removed


def open_shard(path: Path) -> qe.EdgeShard:
    """Load an existing shard; StoreUnavailableError with the folder when Edge refuses."""
    try:
        return qe.EdgeShard.load(str(path))
    except Exception as e:  # Edge raises plain Exception; its message says why
        raise StoreUnavailableError(f"Cannot open the embedded store shard {path}: {e}") from e


def create_shard(path: Path, dim: int, keyword: tuple[str, ...], floats: tuple[str, ...] = (),
                 small: bool = False) -> qe.EdgeShard:
    """Create a cosine shard of vector size dim with payload indexes on the given fields.

    small: a shard of few, often rewritten points (documents): optimize() vacuums it whatever
    its size (Edge's default skips segments under 1000 points, so replaced chunks piled up).
    """
    optimizers = qe.EdgeOptimizersConfig(vacuum_min_vector_number=1, deleted_threshold=0.2) if small else None
    config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
                           optimizers=optimizers)
    return _create(path, config, keyword, floats)


def _create(path: Path, config: qe.EdgeConfig, keyword: tuple[str, ...], floats: tuple[str, ...],
            linked: tuple[str, ...] | None = None) -> qe.EdgeShard:
    """A shard with keyword / float payload indexes; `linked` keyword fields get HNSW payload
    links (when payload_m > 0), the others none (each linked field costs about one more build);
    None: Edge's default (every field linked)."""
    try:
        shard = qe.EdgeShard.create(str(path), config)
    except Exception as e:
        raise StoreUnavailableError(f"Cannot create the embedded store shard {path}: {e}") from e
    schema: list[tuple[str, Any]] = [(f, qe.KeywordIndexParams(enable_hnsw=f in linked) if linked is not None
                                      else qe.PayloadSchemaType.Keyword) for f in keyword]
    schema += [(f, qe.FloatIndexParams(enable_hnsw=False) if linked is not None else qe.PayloadSchemaType.Float)
               for f in floats]
    for field, kind in schema:
        shard.update(qe.UpdateOperation.create_field_index(field, kind))
    return shard


def space_config(dim: int, index: SpaceIndex | None = None) -> qe.EdgeConfig:
    """The Edge config of a new space shard: cosine vectors of size dim, HNSW / int8 per `index`."""
    index = index or ic.SPACE_INDEX
    hnsw = qe.HnswIndexConfig(m=index.m, ef_construct=index.ef_construct,
                              full_scan_threshold=index.full_scan_kb(dim),
                              max_indexing_threads=index.max_indexing_threads, payload_m=index.payload_m)
    quant = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True) if index.int8 else None
    optimizers = (qe.EdgeOptimizersConfig(indexing_threshold=index.indexing_threshold_kb)
                  if index.indexing_threshold_kb is not None else None)
    # Vectors "cold" (mapped, read through the page cache, never loaded whole): with
    # edge_ops.RELEASE_EVERY an ingest keeps at most 100k points' pages resident (CLI ingest of 1M x 512:
    # peak RSS 2.6 GB vs 5.8 GB PSS "cached"), the index build's copy is mapped rather than loaded, and
    # searches read the int8 copy (always in RAM) plus ~20 originals per query for the rescoring
    # (300k, warm page cache: p50 4.6-5.3 ms cached vs 4.9-5.9 ms cold, the same within noise).
    vectors = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, memory=qe.Memory.Cold)
    return qe.EdgeConfig(vectors=vectors, hnsw_config=hnsw, quantization_config=quant, optimizers=optimizers)


def create_space_shard(path: Path, dim: int, index: SpaceIndex | None = None) -> qe.EdgeShard:
    """A space shard with the standard payload indexes (core.types KEYWORD/FLOAT_FIELDS), created
    before any point so the HNSW build sees them; HNSW / int8 per `index` (default index_config.SPACE_INDEX).
    Existing shards keep the config they were created with (Edge loads the stored one)."""
    index = index or ic.SPACE_INDEX
    return _create(path, space_config(dim, index), KEYWORD_FIELDS, FLOAT_FIELDS, index.linked_fields)


def add_missing_indexes(shard: qe.EdgeShard) -> list[str]:
    """Create the keyword indexes of KEYWORD_FIELDS a shard lacks (a store made before a field was
    added, e.g. tags): done once on open, no re-ingest; unlinked (no HNSW payload links, so the
    graph is not rebuilt). Returns the fields indexed now."""
    missing = [f for f in KEYWORD_FIELDS if f not in shard.info().payload_schema]
    for field in missing:
        shard.update(qe.UpdateOperation.create_field_index(field, qe.KeywordIndexParams(enable_hnsw=False)))
    return missing


def search_params(exact: bool) -> qe.SearchParams:
    """The search parameters of every space query (core.store.index_config says why)."""
    if exact:
        return qe.SearchParams(exact=True)
    return qe.SearchParams(hnsw_ef=ic.SEARCH_HNSW_EF,
                           quantization=qe.QuantizationSearchParams(rescore=True, oversampling=ic.SEARCH_OVERSAMPLING),
                           acorn=qe.AcornSearchParams(enable=True, max_selectivity=ic.SEARCH_ACORN_MAX_SELECTIVITY))


def scroll(
    shard: qe.EdgeShard,
    flt: qe.Filter | None,
    with_payload: Any = True,
    with_vector: bool = False,
    batch: int = 1024,
) -> Iterator[list[qe.Record]]:
    """Pages of records matching flt, in id order."""
    offset: Any = None
    while True:
        records, offset = shard.scroll(qe.ScrollRequest(
            offset=offset, limit=batch, filter=flt, with_payload=with_payload, with_vector=with_vector
        ))
        if records:
            yield records
        if offset is None:
            return


def retrieve(shard: qe.EdgeShard, ids: list[str], with_payload: bool, with_vector: bool) -> list[qe.Record]:
    """Records of the ids that exist (any order), fetched in chunks."""
    out: list[qe.Record] = []
    for start in range(0, len(ids), 1024):
        chunk: list[Any] = [uuid.UUID(i) for i in ids[start : start + 1024]]
        out.extend(shard.retrieve(chunk, with_payload, with_vector))
    return out


def vector_of(record: Any) -> list[float]:
    """The (unnamed) dense vector of an Edge record (the binding's own list: not copied, callers
    turn a page of them into numpy at once, see core.store.common.RowBlock)."""
    vec = record.vector
    if isinstance(vec, dict):
        vec = vec[""]
    return vec if isinstance(vec, list) else list(vec)
