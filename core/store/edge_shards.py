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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from core.errors import StoreUnavailableError
from core.store.names import decode, encode
from core.types import FLOAT_FIELDS, KEYWORD_FIELDS

SPACES_DIR = "spaces"
DOCUMENTS_DIR = "documents"
CONFIG_FILE = "edge_config.json"


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
    try:
        shard = qe.EdgeShard.create(str(path), config)
    except Exception as e:
        raise StoreUnavailableError(f"Cannot create the embedded store shard {path}: {e}") from e
    schema = [(f, qe.PayloadSchemaType.Keyword) for f in keyword]
    schema += [(f, qe.PayloadSchemaType.Float) for f in floats]
    for field, kind in schema:
        shard.update(qe.UpdateOperation.create_field_index(field, kind))
    return shard


def create_space_shard(path: Path, dim: int) -> qe.EdgeShard:
    """A space shard with the standard payload indexes (core.types KEYWORD/FLOAT_FIELDS)."""
    return create_shard(path, dim, KEYWORD_FIELDS, FLOAT_FIELDS)


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
    """The (unnamed) dense vector of an Edge record."""
    vec = record.vector
    if isinstance(vec, dict):
        vec = vec[""]
    return list(vec)
