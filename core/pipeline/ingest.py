"""Ingest use cases: embed Items into a project's space (resumable), store own vectors, update labels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from core.config import Settings
from core.datasets.own_embeddings import OwnVectors
from core.embedders.base import Embedder, PreprocessingEmbedder
from core.errors import BadInputError, CoreError, DimensionMismatchError
from core.ids import point_id, readable_key
from core.linalg import l2_normalise, row_norms
from core.pipeline.prepare import Batch, Prepared, prepare_images, prepare_texts, prepared_batches
from core.pipeline.rejects import IngestReport, Reject, write_rejects
from core.pipeline.timer import Timer
from core.store.base import VectorStore
from core.store.names import validate_name
from core.thumbnails import with_thumbnails
from core.types import CONFIDENCE, LABEL, META, PREDICTION, SPLIT, Item, Progress, SpaceInfo

log = logging.getLogger(__name__)

_EXISTING_CHUNK = 4096  # ids per existing_ids call
VECTOR_BATCH = 1024  # points per upsert for own vectors
_ARRAY_BLOCK = 16 * VECTOR_BATCH  # rows of an in-memory array checked and converted at a time
# Below this L2 norm a vector has no usable direction (core.linalg floors norms at 1e-12).
_MIN_NORM = 1e-12


def rejects_folder(settings: Settings) -> Path:
    """Where rejects CSVs go: <data_dir>/rejects."""
    return settings.data_dir / "rejects"


def _screen(items: Sequence[Item], seen: set[str] | None = None) -> tuple[list[int], list[Reject]]:
    """(positions of the items to ingest, rejects): a key seen before in the same input (the first
    one wins) and text fields that no JSON payload can hold are rejected by name, never raised.
    seen: the keys of the input's earlier blocks (updated), when it is screened block by block."""
    seen = set() if seen is None else seen
    kept: list[int] = []
    rejects: list[Reject] = []
    for position, item in enumerate(items):
        fields = {"key": item.key, "uri": item.uri, "text": item.text, "label": item.label,
                  "prediction": item.prediction, "split": item.split}
        bad = [name for name, value in fields.items() if value is not None and readable_key(value) != value]
        if bad:
            shown = Item(readable_key(item.key), readable_key(item.uri) if item.uri else None)
            rejects.append(Reject(shown, f"{', '.join(bad)} not valid Unicode (lone surrogates)"))
        elif item.key in seen:
            rejects.append(Reject(item, f"duplicate key {item.key!r}: another item of this input has "
                                        "it (keys must be unique within a dataset)"))
        else:
            seen.add(item.key)
            kept.append(position)
    return kept, rejects


class _Target:
    """The space an ingest writes to, created at its first write: a run that stores nothing (every
    item rejected, or failed before its first batch) leaves no empty space behind, and a space
    that existed before the run is never dropped."""

    def __init__(self, store: VectorStore, project: str, info: SpaceInfo) -> None:
        self.store, self.project, self.info = store, project, info
        self.existed = info.name in {s.name for s in store.list_spaces(project)}
        if self.existed:
            self.info = store.ensure_space(project, info)  # checks the size of the space that is there
        self.created = False

    def pending(self, dataset: str, items: Sequence[Item]) -> Batch:
        """(point id, item) of the items not stored in the space yet, in input order."""
        ids = [point_id(self.project, dataset, item.key) for item in items]
        stored: set[str] = set()
        for start in range(0, len(ids) if self.existed else 0, _EXISTING_CHUNK):
            stored |= self.store.existing_ids(self.project, self.info.name, ids[start:start + _EXISTING_CHUNK])
        return [(pid, item) for pid, item in zip(ids, items, strict=True) if pid not in stored]

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        if not (self.existed or self.created):
            self.info = self.store.ensure_space(self.project, self.info)
            self.created = True
        self.store.upsert(self.project, self.info.name, ids, vectors, payloads)

    def drop_if_empty(self) -> None:
        """Drop the space this run created when it holds nothing (its first write failed)."""
        if not self.created:
            return
        try:
            if self.store.count(self.project, self.info.name) == 0:
                self.store.delete_space(self.project, self.info.name)
                log.info("dropped the empty space %s/%s this run created", self.project, self.info.name)
        except CoreError as e:  # the store failed: the error that brought us here matters more
            log.warning("could not drop the empty space %s/%s: %s", self.project, self.info.name, e)


def _embed(embedder: Embedder, prepared: Prepared) -> np.ndarray:
    """(n, dim) float32 for one prepared batch."""
    inputs = prepared.inputs
    if isinstance(inputs, np.ndarray):
        assert isinstance(embedder, PreprocessingEmbedder)
        return embedder.embed_preprocessed(inputs)
    if embedder.modality == "text":
        return embedder.embed_texts([str(t) for t in inputs])
    return embedder.embed_images([i for i in inputs if not isinstance(i, str)])


def ingest_items(
    store: VectorStore,
    project: str,
    dataset: str,
    items: Sequence[Item],
    embedder: Embedder,
    *,
    settings: Settings,
    progress: Progress | None = None,
    batch_size: int | None = None,
    rejects_dir: Path | None = None,
) -> IngestReport:
    """Embed the items with `embedder` and store them in its space of `project`, batch by batch.

    Resumable: items whose point id is already in the space are skipped (not embedded again),
    and every batch is upserted as soon as it is embedded, so an interrupted run keeps what it
    stored. Images are decoded and preprocessed in settings.num_workers threads ahead of the
    model. Per-item failures (missing / corrupt / oversized / out-of-roots image, empty text, a
    repeated key, an unexpected error while preparing one item) never stop the run: they become
    report.rejects and a CSV under rejects_dir (default <data_dir>/rejects). Store or model
    failures raise (CoreError), keeping stored batches. The space is created at the first write,
    so a run that stores nothing leaves no new empty space. Raises BadInputError for an invalid
    project or dataset name.
    """
    timer = Timer()
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    given = list(items)
    kept, rejects = _screen(given)
    target = _Target(store, project, embedder.space_info())
    report = IngestReport(project, dataset, target.info.name, total=len(given), rejects=rejects)
    try:
        todo = target.pending(dataset, [given[i] for i in kept])
        report.skipped = len(kept) - len(todo)
        _tick(progress, report)
        size = batch_size or settings.batch_size
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        prepare = prepare_texts if embedder.modality == "text" else with_thumbnails(
            partial(prepare_images, embedder=embedder, settings=settings), settings, _batch_uris)
        _embed_and_store(batches, prepare, settings.num_workers, embedder, target, report, timer, progress)
    finally:
        target.drop_if_empty()
    report.timings = timer.totals()
    return _finish(report, rejects_dir or rejects_folder(settings))


def _batch_uris(batch: Batch) -> list[str | None]:
    return [item.uri for _, item in batch]


def _embed_and_store(batches: list[Batch], prepare: Callable[[Batch], Prepared], workers: int,
                     embedder: Embedder, target: _Target, report: IngestReport, timer: Timer,
                     progress: Progress | None) -> None:
    """Embed each prepared batch and upsert it at once (an interrupted run keeps what it stored)."""
    with closing(prepared_batches(batches, prepare, workers)) as stream:
        for prepared in timer.iterate("wait", stream):
            report.rejects.extend(prepared.rejects)
            if prepared.ids:
                with timer.section("embed"):
                    vectors = _embed(embedder, prepared)
                with timer.section("store"):
                    target.upsert(prepared.ids, vectors, [item.payload(report.dataset) for item in prepared.items])
                report.stored += len(prepared.ids)
            _tick(progress, report)


def _tick(progress: Progress | None, report: IngestReport) -> None:
    log.debug("%s/%s: %d stored, %d skipped, %d rejected of %d", report.project, report.dataset,
              report.stored, report.skipped, len(report.rejects), report.total)
    if progress is not None:
        progress(report.stored + report.skipped + len(report.rejects), report.total)


def _finish(report: IngestReport, rejects_dir: Path) -> IngestReport:
    write_rejects(report, rejects_dir)
    log.info("%s%s", report.summary(), f"; rejects in {report.rejects_path}" if report.rejects_path else "")
    if report.timings:
        log.info("timings (s): %s", ", ".join(f"{k} {v:.2f}" for k, v in report.timings.items()))
    return report


def join_vectors(
    items: Sequence[Item], keys: Sequence[str], vectors: np.ndarray
) -> tuple[list[Item], list[Reject]]:
    """Line up manifest items with vector keys: one Item per vector (a bare Item(key) when the
    manifest has no row for it: vectors are the costly part, labels can follow through
    update_payloads), and a Reject for every item without a vector. vectors: (n, d)."""
    if len(keys) != len(vectors):
        raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
    by_key = {item.key: item for item in items}
    key_set = set(keys)
    aligned = [by_key.get(key) or Item(key=key) for key in keys]
    missing = [Reject(item, "no vector with this id in the embeddings file")
               for item in items if item.key not in key_set]
    return aligned, missing


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
    Raises DimensionMismatchError when the vectors' size is not space.dim.
    """
    timer = Timer()
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    if not isinstance(vectors, OwnVectors):
        vectors = np.asarray(vectors)
    shape = tuple(vectors.shape)
    if len(shape) != 2 or shape[1] != space.dim:
        raise DimensionMismatchError(f"vectors have shape {shape} but space {space.name!r} holds {space.dim}-d vectors")
    item_of, missing = _row_items(items, keys, shape[0])
    target = _Target(store, project, space)
    report = IngestReport(project, dataset, target.info.name, total=shape[0] + len(missing), rejects=missing)
    _tick(progress, report)
    seen: set[str] = set()
    try:
        start = 0
        for block in timer.iterate("read", _blocks(vectors)):
            chunk = [item_of(start + i) for i in range(len(block))]
            kept, rejects = _screen(chunk, seen)
            report.rejects.extend(rejects)
            _store_block(target, report, dataset, block, chunk, _usable_rows(block, chunk, kept, report),
                         timer, progress)
            start += len(block)
    finally:
        target.drop_if_empty()
    report.timings = timer.totals()
    return _finish(report, rejects_dir) if rejects_dir is not None else report


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


def _store_block(target: _Target, report: IngestReport, dataset: str, block: np.ndarray, chunk: list[Item],
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
        _tick(progress, report)


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


def update_payloads(store: VectorStore, project: str, dataset: str, items: Sequence[Item]) -> int:
    """Attach labels / predictions / confidences / splits / meta that arrive after the vectors.

    Only fields an item has (not None; meta when non-empty, replacing the stored meta) are
    written, in every space of the project. Returns the number of points updated.
    """
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
