"""Ingest the user's own vectors (an array or a vectors file, block by block) and labels that
arrive after the vectors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.auth import Actor, Permission, require
from core.datasets.own_embeddings import OwnVectors
from core.errors import BadInputError, DimensionMismatchError
from core.ids import point_id
from core.linalg import l2_normalise, row_norms
from core.pipeline.ingest_target import Target, finish_reports, report_progress, screen
from core.pipeline.rejects import IngestReport
from core.pipeline.timer import Timer
from core.store.base import VectorStore
from core.store.names import validate_name
from core.types import CONFIDENCE, LABEL, META, PREDICTION, SPLIT, Item, Progress, Reject, SpaceInfo

VECTOR_BATCH = 1024  # points per upsert for own vectors
_ARRAY_BLOCK = 16 * VECTOR_BATCH  # rows of an in-memory array checked and converted at a time
# Below this L2 norm a vector has no usable direction (core.linalg floors norms at 1e-12).
_MIN_NORM = 1e-12


def own_space(store: VectorStore, project: str, name: str, dim: int, source: str) -> SpaceInfo:
    """The SpaceInfo for the user's own `dim`-d vectors read from `source` (a file name).

    An existing space of that name must hold own vectors of the same size: BadInputError when it
    holds a model's vectors, DimensionMismatchError (naming `source`) when the sizes differ.
    """
    validate_name(name, "space name")
    existing = {s.name: s for s in store.list_spaces(project)}.get(name)
    if existing is not None and existing.modality != "vector":
        raise BadInputError(f"space {name!r} of project {project!r} holds vectors of the model "
                            f"{existing.model}; choose another space name")
    if existing is not None and existing.dim != dim:
        raise DimensionMismatchError(f"{source}: vectors have {dim} dims but space {name!r} of "
                                     f"project {project!r} holds {existing.dim}-d vectors")
    return SpaceInfo(name, dim, "vector", description=f"own vectors from {source}")


def ingest_vectors(
    store: VectorStore,
    project: str,
    dataset: str,
    space: SpaceInfo,
    items: Sequence[Item],
    vectors: np.ndarray | OwnVectors,
    *,
    actor: Actor,
    keys: Sequence[str] | None = None,
    progress: Progress | None = None,
    rejects_dir: Path | None = None,
) -> IngestReport:
    """Store the user's own vectors (n, space.dim) in `space` (created if absent), L2-normalised.

    vectors: an array, or an OwnVectors file (core.datasets.open_own_embeddings) read block by
    block; either way rows are checked, normalised and upserted VECTOR_BATCH at a time, so the
    memory used is one block, not a copy of all vectors (1M x 512 is 2 GiB).
    Without keys, items[i] is the payload of vectors[i]. With keys (one per vector), items
    are joined by key (see join_vectors): vectors without an item are stored with a bare
    payload, items without a vector are rejected. Existing points are overwritten (new vectors
    for the same ids replace the old ones). Rows with NaN / inf (a non-finite norm), all zeros or
    a norm too small to normalise are rejected by name, as are repeated keys. Vectors with huge
    values (1e38) are normalised exactly (norms in float64, core.linalg). A run that stores
    nothing leaves no new empty space behind.
    Raises DimensionMismatchError when the vectors' size is not space.dim, PermissionDeniedError
    (before anything is written) unless actor may ingest.
    """
    require(actor, Permission.INGEST, f"ingesting vectors into dataset {dataset!r} of project {project!r}")
    timer = Timer()
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    if not isinstance(vectors, OwnVectors):
        vectors = np.asarray(vectors)
    shape = tuple(vectors.shape)
    if len(shape) != 2 or shape[1] != space.dim:
        raise DimensionMismatchError(f"vectors have shape {shape} but space {space.name!r} holds {space.dim}-d vectors")
    item_of, missing = _row_items(items, keys, shape[0])
    target = Target(store, project, space)
    report = IngestReport(project, dataset, target.info.name, total=shape[0] + len(missing), rejects=missing)
    report_progress(progress, report, report.stored + report.skipped)
    seen: set[str] = set()
    try:
        start = 0
        for block in timer.iterate("read", _blocks(vectors)):
            chunk = [item_of(start + i) for i in range(len(block))]
            kept, rejects = screen(chunk, seen)
            report.rejects.extend(rejects)
            _store_block(target, report, dataset, block, chunk, _usable_rows(block, chunk, kept, report),
                         timer, progress)
            start += len(block)
    finally:
        target.drop_if_empty()
    report.timings = timer.totals()
    return finish_reports([report], rejects_dir)[0] if rejects_dir is not None else report


def _row_items(items: Sequence[Item], keys: Sequence[str] | None,
               n: int) -> tuple[Callable[[int], Item], list[Reject]]:
    """(the item of vector row i, rejects for the items without a vector): join_vectors one row at
    a time, so no list of n bare Items is built up front."""
    if keys is None:
        if len(items) != n:
            raise ValueError(f"{len(items)} items for {n} vectors (pass keys= to join by id)")
        return items.__getitem__, []
    if len(keys) != n:
        raise ValueError(f"{len(keys)} keys for {n} vectors")
    by_key = {item.key: item for item in items}
    key_set = set(keys)
    missing = [Reject(item, "no vector with this id in the embeddings file")
               for item in items if item.key not in key_set]
    return (lambda row: by_key.get(keys[row]) or Item(key=keys[row])), missing


def _blocks(vectors: np.ndarray | OwnVectors) -> Iterator[np.ndarray]:
    """(k, d) float32 row blocks: read from the file, or float32 views/copies of array slices."""
    if isinstance(vectors, OwnVectors):
        yield from vectors.blocks()
        return
    for start in range(0, len(vectors), _ARRAY_BLOCK):
        yield np.asarray(vectors[start:start + _ARRAY_BLOCK], dtype=np.float32)


def _store_block(target: Target, report: IngestReport, dataset: str, block: np.ndarray, chunk: list[Item],
                 rows: np.ndarray, timer: Timer, progress: Progress | None) -> None:
    """Upsert the usable rows of one block, VECTOR_BATCH at a time."""
    project = report.project
    for start in range(0, len(rows), VECTOR_BATCH):
        batch = rows[start:start + VECTOR_BATCH]
        # The space is cosine: store unit rows ourselves (the one normaliser), so every adapter keeps
        # the same numbers; rows already of unit length are kept bit for bit.
        unit = l2_normalise(block[batch])
        picked = [chunk[i] for i in batch]
        with timer.section("store"):
            target.upsert([point_id(project, dataset, it.key) for it in picked], unit,
                          [it.payload(dataset) for it in picked])
        report.stored += len(picked)
        report_progress(progress, report, report.stored + report.skipped)


def _usable_rows(vectors: np.ndarray, items: Sequence[Item], kept: list[int], report: IngestReport) -> np.ndarray:
    """Positions (among `kept`) of the rows that can be normalised; the others become rejects."""
    candidates = np.asarray(kept, dtype=np.int64)
    chosen = vectors[candidates]
    finite = np.isfinite(chosen).all(axis=1)
    norms = row_norms(np.where(finite[:, None], chosen, 0))  # float64: no overflow at 1e38
    usable = finite & (norms >= _MIN_NORM)
    for at in np.flatnonzero(~usable):
        item, norm = items[candidates[at]], float(norms[at])
        if not finite[at]:
            report.rejects.append(Reject(item, "vector has NaN or inf values (non-finite norm)"))
        elif norm == 0:
            report.rejects.append(Reject(item, "vector has all zeros"))
        else:
            report.rejects.append(Reject(item, f"vector norm {norm:.3g} is too small to normalise"))
    return candidates[usable]


def update_payloads(store: VectorStore, project: str, dataset: str, items: Sequence[Item], *, actor: Actor) -> int:
    """Attach labels / predictions / confidences / splits / meta that arrive after the vectors.

    Only fields an item has (not None; meta when non-empty, replacing the stored meta) are
    written, in every space of the project. Returns the number of points updated.
    PermissionDeniedError unless actor may ingest.
    """
    require(actor, Permission.INGEST, f"updating the payloads of dataset {dataset!r} of project {project!r}")
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    ids: list[str] = []
    values: list[dict[str, Any]] = []
    for item in items:
        fields: dict[str, Any] = {LABEL: item.label, PREDICTION: item.prediction, CONFIDENCE: item.confidence,
                  SPLIT: item.split, META: dict(item.meta) if item.meta else None}
        update = {k: v for k, v in fields.items() if v is not None}
        if update:
            ids.append(point_id(project, dataset, item.key))
            values.append(update)
    return store.set_payload(project, ids, values) if ids else 0
