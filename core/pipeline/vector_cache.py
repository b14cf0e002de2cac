"""All vectors of a selection as one numpy block, kept on disk per store revision and reopened memory-mapped.

A map, an analysis and a comparison each need every vector of their selection. Reading them from
the store costs ~10k points/s (the binding makes a Python float per value), so at 1M points every
reopen would scroll for minutes. load_vectors reads them once, page by page into one block
(store.vectors), writes it under cache_dir as .npy keyed by (project, space, revision, filter,
dtype), and reopens that file memory-mapped while the space's revision is unchanged: a reopen
costs a file open. Any write of vectors (upsert, delete) moves the revision's vectors part, so a
stale block is never served (a payload-only write, e.g. relabeling, keeps blocks of dataset
selections: core.store.revisions); older revisions of the same selection are deleted when a new one is
written, and the whole cache is trimmed to max_bytes (least recently used first).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import Settings
from core.filters import ID_FIELD, Filter
from core.store.base import VectorStore
from core.store.revisions import vectors_part
from core.types import DATASET, KIND, Progress

log = logging.getLogger(__name__)

DTYPES = (np.float32, np.float16)
MAX_CACHE_BYTES = 12 * 2**30  # all cached blocks together (1M x 512 float32 is 2 GiB)
_IDS, _VECTORS = "ids.npy", "vectors.npy"


def cache_folder(settings: Settings) -> Path:
    """Where the callers that have settings keep vector blocks: <cache dir>/vectors."""
    return settings.cache_dir / "vectors"


@dataclass(frozen=True)
class VectorBlock:
    """ids (n,) str sorted, vectors (n, d) unit rows (float32 or float16; memory-mapped
    copy-on-write when read from the cache: writes stay private), the store revision read."""

    ids: np.ndarray
    vectors: np.ndarray
    revision: str

    def __len__(self) -> int:
        return len(self.ids)


def load_vectors(store: VectorStore, project: str, space: str, flt: Filter | None = None, *,
                 cache_dir: Path | str | None = None, dtype: type[np.floating] = np.float32,
                 progress: Progress | None = None, max_bytes: int = MAX_CACHE_BYTES) -> VectorBlock:
    """Every vector of (project, space) matching flt, sorted by id, as one block.

    Vectors come back L2-normalised as the store keeps them (not normalised again). Without
    cache_dir this is store.vectors in bounded memory; with it (callers pass
    settings.cache_dir / "vectors") a block for the same key is reused from disk without reading
    a vector from the store. progress(done, total) follows the points read (one call (n, n) on
    a cache hit). A corrupt or partial cache file is ignored, deleted and rewritten.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {[np.dtype(d).name for d in DTYPES]}, got {dtype!r}")
    revision = store.revision(project, space)
    root = Path(cache_dir).expanduser() if cache_dir is not None else None
    folder = _entry(root, project, space, flt, dtype, _cache_revision(revision, flt)) if root is not None else None
    if folder is not None:
        cached = _open(folder, revision)
        if cached is not None:
            log.info("vectors of %s/%s reused from %s (%d points)", project, space, folder, len(cached))
            if progress is not None:
                progress(len(cached), len(cached))
            return cached
    ids, vectors = store.vectors(project, space, flt=flt, progress=progress)
    block = VectorBlock(np.asarray(ids, dtype=str), vectors.astype(dtype, copy=False), revision)
    if root is None or folder is None or not len(block) or store.revision(project, space) != revision:
        return block  # nothing to keep, or written meanwhile: the block may mix both states
    _write(folder, block)
    _forget_others(folder, root, max_bytes)
    return _open(folder, revision) or block


def _cache_revision(revision: str, flt: Filter | None) -> str:
    """What a cached block is keyed on: the vectors part of the space's revision when flt selects
    by dataset / kind / id only (a label, tag or review write keeps that part, so relabeling does
    not make the next analysis read 1M vectors again); the whole revision for any other filter."""
    conditions = (flt.must + flt.must_not) if flt else ()
    if all(c.field in (DATASET, KIND, ID_FIELD) for c in conditions):
        return vectors_part(revision)
    return revision


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _entry(root: Path, project: str, space: str, flt: Filter | None, dtype: type[np.floating],
           revision: str) -> Path:
    """<root>/<hash(project, space)>/<hash(filter, dtype)>/<revision>/: one folder per key, so the
    other revisions of a selection are its siblings (deleted when a new one is written)."""
    selection = _digest(repr(flt or Filter()), np.dtype(dtype).name)
    return root / _digest(project, space) / selection / _digest(revision)


def _open(folder: Path, revision: str) -> VectorBlock | None:
    """The cached block in folder, memory-mapped; None (and the folder removed) when absent,
    partial or corrupt: a cache file is never trusted over the store."""
    ids_path, vectors_path = folder / _IDS, folder / _VECTORS
    if not (ids_path.is_file() and vectors_path.is_file()):
        return None
    try:
        ids = np.load(ids_path, allow_pickle=False)
        vectors = np.load(vectors_path, mmap_mode="c", allow_pickle=False)
        if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors) or ids.dtype.kind != "U":
            raise ValueError(f"shapes {ids.shape} / {vectors.shape} do not match")
    except (OSError, ValueError, EOFError) as e:
        log.warning("ignoring a damaged vector cache %s (%s); reading the store again", folder, e)
        _remove(folder)
        return None
    os.utime(vectors_path)  # recently used: trimmed last
    return VectorBlock(ids, vectors, revision)


def _write(folder: Path, block: VectorBlock) -> None:
    """Both files written under temporary names, then renamed (vectors last): a crash leaves no
    file that _open would take for a whole block."""
    folder.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex
    try:
        for name, array in ((_IDS, block.ids), (_VECTORS, block.vectors)):
            tmp = folder / f".{name}.{tag}.tmp"
            with tmp.open("wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            os.replace(tmp, folder / name)
    except OSError as e:  # a full disk must not fail the analysis: the block is in memory
        log.warning("could not cache vectors in %s: %s", folder, e)
        _remove(folder)


def _forget_others(folder: Path, root: Path, max_bytes: int) -> None:
    """Delete the other revisions of this selection, then the least recently used blocks until
    the cache holds at most max_bytes (the block just written is kept)."""
    for sibling in folder.parent.iterdir():
        if sibling != folder:
            _remove(sibling)
    entries = [(p.stat().st_mtime, p.parent) for p in root.glob(f"*/*/*/{_VECTORS}")]
    total = sum(_size(entry) for _, entry in entries)
    for _, entry in sorted(entries):
        if total <= max_bytes:
            break
        if entry != folder:
            total -= _size(entry)
            _remove(entry)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _remove(folder: Path) -> None:
    """Remove a cache folder (files, then the folder); missing pieces are fine."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError as e:  # another process wrote into it meanwhile: leave it
        log.debug("kept cache folder %s: %s", folder, e)
