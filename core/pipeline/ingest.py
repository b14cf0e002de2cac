"""Ingest use cases: embed Items into a project's space (resumable), store own vectors, update labels."""

from __future__ import annotations

import logging
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Settings
from core.embedders.base import Embedder, PreprocessingEmbedder
from core.errors import BadInputError, DimensionMismatchError
from core.ids import point_id
from core.pipeline.prepare import Batch, Prepared, prepare_images, prepare_texts, prepared_batches
from core.pipeline.rejects import IngestReport, Reject, write_rejects
from core.pipeline.timer import Timer
from core.store.base import VectorStore
from core.types import CONFIDENCE, LABEL, META, PREDICTION, SPLIT, Item, SpaceInfo

log = logging.getLogger(__name__)

# progress(done, total): done counts stored + skipped + rejected items so far.
Progress = Callable[[int, int], None]

_EXISTING_CHUNK = 4096  # ids per existing_ids call
VECTOR_BATCH = 1024  # points per upsert for own vectors


def rejects_folder(settings: Settings) -> Path:
    """Where rejects CSVs go: <data_dir>/rejects."""
    return settings.data_dir / "rejects"


def _check_unique(items: Sequence[Item]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise BadInputError(f"duplicate item key {item.key!r}: keys must be unique within a dataset")
        seen.add(item.key)


def _pending(store: VectorStore, project: str, space: str, dataset: str, items: Sequence[Item]) -> Batch:
    """(point id, item) of the items not stored in the space yet, in input order."""
    ids = [point_id(project, dataset, item.key) for item in items]
    stored: set[str] = set()
    for start in range(0, len(ids), _EXISTING_CHUNK):
        stored |= store.existing_ids(project, space, ids[start:start + _EXISTING_CHUNK])
    return [(pid, item) for pid, item in zip(ids, items) if pid not in stored]


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
    model. Per-item failures (missing / corrupt / oversized / out-of-roots image, empty text)
    never stop the run: they become report.rejects and a CSV under rejects_dir (default
    <data_dir>/rejects). Store or model failures raise (CoreError), keeping stored batches.
    """
    timer = Timer()
    items = list(items)
    _check_unique(items)
    space = store.ensure_space(project, embedder.space_info())
    report = IngestReport(project, dataset, space.name, total=len(items))
    todo = _pending(store, project, space.name, dataset, items)
    report.skipped = len(items) - len(todo)
    _tick(progress, report)
    size = batch_size or settings.batch_size
    batches = [todo[i:i + size] for i in range(0, len(todo), size)]
    prepare = prepare_texts if embedder.modality == "text" else partial(
        prepare_images, embedder=embedder, settings=settings)
    with closing(prepared_batches(batches, prepare, settings.num_workers)) as stream:
        for prepared in timer.iterate("wait", stream):
            report.rejects.extend(prepared.rejects)
            if prepared.ids:
                with timer.section("embed"):
                    vectors = _embed(embedder, prepared)
                with timer.section("store"):
                    store.upsert(project, space.name, prepared.ids, vectors,
                                 [item.payload(dataset) for item in prepared.items])
                report.stored += len(prepared.ids)
            _tick(progress, report)
    report.timings = timer.totals()
    return _finish(report, rejects_dir or rejects_folder(settings))


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
    from core.store import validate_name

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
    vectors: np.ndarray,
    *,
    keys: Sequence[str] | None = None,
    progress: Progress | None = None,
    rejects_dir: Path | None = None,
) -> IngestReport:
    """Store the user's own vectors (n, space.dim) in `space` (created if absent), L2-normalised.

    Without keys, items[i] is the payload of vectors[i]. With keys (one per vector), items
    are joined by key (see join_vectors): vectors without an item are stored with a bare
    payload, items without a vector are rejected. Existing points are overwritten (new vectors
    for the same ids replace the old ones). Rows with NaN / inf or all zeros are rejected.
    Raises DimensionMismatchError when the vectors' size is not space.dim.
    """
    timer = Timer()
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != space.dim:
        raise DimensionMismatchError(
            f"vectors have shape {vectors.shape} but space {space.name!r} holds {space.dim}-d vectors"
        )
    missing: list[Reject] = []
    if keys is not None:
        items, missing = join_vectors(items, keys, vectors)
    elif len(items) != len(vectors):
        raise ValueError(f"{len(items)} items for {len(vectors)} vectors (pass keys= to join by id)")
    items = list(items)
    _check_unique(items)
    info = store.ensure_space(project, space)
    report = IngestReport(project, dataset, info.name, total=len(items) + len(missing), rejects=missing)
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(finite[:, None], vectors, 0), axis=1)
    for row in np.flatnonzero(~finite | (norms == 0)):
        bad = "NaN or inf values" if not finite[row] else "all zeros"
        report.rejects.append(Reject(items[row], f"vector has {bad}"))
    rows = np.flatnonzero(finite & (norms > 0))
    # The space is cosine: store unit rows ourselves, so every adapter keeps the same numbers.
    # Rows already of unit length are kept bit for bit (dividing again would move the last bit).
    scale = np.where(np.abs(norms - 1.0) <= 1e-6, 1.0, norms).astype(np.float32)
    vectors = vectors.copy()
    vectors[rows] /= scale[rows, None]
    _tick(progress, report)
    for start in range(0, len(rows), VECTOR_BATCH):
        part = rows[start:start + VECTOR_BATCH]
        chunk = [items[i] for i in part]
        with timer.section("store"):
            store.upsert(project, info.name, [point_id(project, dataset, it.key) for it in chunk],
                         vectors[part], [it.payload(dataset) for it in chunk])
        report.stored += len(part)
        _tick(progress, report)
    report.timings = timer.totals()
    return _finish(report, rejects_dir) if rejects_dir is not None else report


def update_payloads(store: VectorStore, project: str, dataset: str, items: Sequence[Item]) -> int:
    """Attach labels / predictions / confidences / splits / meta that arrive after the vectors.

    Only fields an item has (not None; meta when non-empty, replacing the stored meta) are
    written, in every space of the project. Returns the number of points updated.
    """
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
