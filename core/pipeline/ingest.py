"""Ingest use case: embed Items with a model into a project's spaces (resumable; several layers of
one model in one forward pass). Own vectors: core.pipeline.ingest_vectors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.auth import Actor, Permission, require
from core.config import Settings
from core.embedders.base import Embedder, PreprocessingEmbedder
from core.ids import point_id
from core.pipeline.ingest_target import Target, finish_reports, rejects_folder, report_progress, screen
from core.pipeline.prepare import Batch, Prepared, prepare_images, prepare_texts, prepared_batches
from core.pipeline.rejects import IngestReport
from core.pipeline.timer import Timer
from core.store.base import VectorStore
from core.store.names import validate_name
from core.thumbnails import with_thumbnails
from core.types import Item, Progress, SpaceInfo

if TYPE_CHECKING:
    from core.embedders.layers import LayerEmbedders  # imports the model loaders: only for types


def _embed(embedder: Embedder, prepared: Prepared) -> list[np.ndarray]:
    """[(n, dim) float32] for one prepared batch (a one-space ingest)."""
    inputs = prepared.inputs
    if isinstance(inputs, np.ndarray):
        assert isinstance(embedder, PreprocessingEmbedder)
        return [embedder.embed_preprocessed(inputs)]
    if embedder.modality == "text":
        return [embedder.embed_texts([str(t) for t in inputs])]
    return [embedder.embed_images([i for i in inputs if not isinstance(i, str)])]


def _embed_layers(layers: LayerEmbedders, prepared: Prepared) -> list[np.ndarray]:
    """One (n, dim_l) float32 block per layer for one prepared batch, from one forward pass."""
    inputs = prepared.inputs
    if isinstance(inputs, np.ndarray):
        return layers.embed_preprocessed(inputs)
    if layers.modality == "text":
        return layers.embed_texts([str(t) for t in inputs])
    return layers.embed_images([i for i in inputs if not isinstance(i, str)])


def ingest_items(
    store: VectorStore,
    project: str,
    dataset: str,
    items: Sequence[Item],
    embedder: Embedder,
    *,
    actor: Actor,
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
    project or dataset name, PermissionDeniedError (before anything is read) unless actor may ingest.
    """
    require(actor, Permission.INGEST, f"ingesting into dataset {dataset!r} of project {project!r}")
    run = _Run(embedder, partial(_embed, embedder), settings, progress, batch_size)
    return _ingest(store, project, dataset, items, [embedder.space_info()], run, rejects_dir)[0]


def ingest_layers(
    store: VectorStore,
    project: str,
    dataset: str,
    items: Sequence[Item],
    layers: LayerEmbedders,
    *,
    actor: Actor,
    settings: Settings,
    progress: Progress | None = None,
    batch_size: int | None = None,
    rejects_dir: Path | None = None,
) -> list[IngestReport]:
    """ingest_items for several layers of one model: each batch is read, decoded and run through
    the model once, and each layer's block is upserted into that layer's space
    (layers.space_infos(), created at their first write). One report per space, in layer order;
    they share the rejects (one CSV) and the timings. Resumable per space: an item is embedded
    when some space lacks it, and stored only in the spaces that lack it, so an interrupted run
    resumes every space where it stopped. progress(done, total) counts items, as ingest_items."""
    require(actor, Permission.INGEST, f"ingesting into dataset {dataset!r} of project {project!r}")
    run = _Run(layers.lead, partial(_embed_layers, layers), settings, progress, batch_size)
    return _ingest(store, project, dataset, items, layers.space_infos(), run, rejects_dir)


@dataclass(frozen=True)
class _Run:
    """How one ingest embeds: `prepare_for` preprocesses images (its modality picks text or
    images), `embed` turns a prepared batch into one block per space."""

    prepare_for: Embedder
    embed: Callable[[Prepared], list[np.ndarray]]
    settings: Settings
    progress: Progress | None
    batch_size: int | None


def _ingest(store: VectorStore, project: str, dataset: str, items: Sequence[Item], infos: Sequence[SpaceInfo],
            run: _Run, rejects_dir: Path | None) -> list[IngestReport]:
    """The ingest of items into the spaces `infos` (one report each); see ingest_layers."""
    timer = Timer()
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    given = list(items)
    kept, rejects = screen(given)
    targets = [Target(store, project, info) for info in infos]
    # One rejects list shared by every report: an item that cannot be read is rejected in every space.
    reports = [IngestReport(project, dataset, t.info.name, total=len(given), rejects=rejects) for t in targets]
    tally = _Tally(reports)
    try:
        screened = [given[i] for i in kept]
        ids = [point_id(project, dataset, item.key) for item in screened]
        have = [target.stored(ids) for target in targets]
        for report, found in zip(reports, have, strict=True):
            report.skipped = len(found)
        todo = [(pid, item) for pid, item in zip(ids, screened, strict=True) if not all(pid in h for h in have)]
        tally.done = len(screened) - len(todo)
        _tick(run.progress, tally)
        size = run.batch_size or run.settings.batch_size
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        embedder, settings = run.prepare_for, run.settings
        prepare = prepare_texts if embedder.modality == "text" else with_thumbnails(
            partial(prepare_images, embedder=embedder, settings=settings), settings, _batch_uris)
        _embed_and_store(batches, prepare, run, list(zip(targets, have, strict=True)), tally, timer)
    finally:
        for target in targets:
            target.drop_if_empty()
    timings = timer.totals()
    for report in reports:
        report.timings = timings
    return finish_reports(reports, rejects_dir or rejects_folder(run.settings))


@dataclass
class _Tally:
    """Progress over the items of a run: `done` items fully handled (stored in every space that
    lacked them, or already in all), plus the shared rejects."""

    reports: list[IngestReport]
    done: int = 0


def _batch_uris(batch: Batch) -> list[str | None]:
    return [item.uri for _, item in batch]


def _embed_and_store(batches: list[Batch], prepare: Callable[[Batch], Prepared], run: _Run,
                     targets: list[tuple[Target, set[str]]], tally: _Tally, timer: Timer) -> None:
    """Embed each prepared batch once and upsert it at once into every space that lacks its items
    (an interrupted run keeps what it stored)."""
    rejects = tally.reports[0].rejects
    with closing(prepared_batches(batches, prepare, run.settings.num_workers)) as stream:
        for prepared in timer.iterate("wait", stream):
            rejects.extend(prepared.rejects)
            if prepared.ids:
                with timer.section("embed"):
                    blocks = run.embed(prepared)
                payloads = [item.payload(tally.reports[0].dataset) for item in prepared.items]
                with timer.section("store"):
                    for (target, have), report, vectors in zip(targets, tally.reports, blocks, strict=True):
                        report.stored += _upsert_missing(target, have, prepared.ids, vectors, payloads)
                tally.done += len(prepared.ids)
            _tick(run.progress, tally)


def _upsert_missing(target: Target, have: set[str], ids: list[str], vectors: np.ndarray,
                    payloads: list[dict[str, Any]]) -> int:
    """Upsert the rows whose id the space lacks; returns how many. vectors: (len(ids), dim)."""
    rows = [i for i, pid in enumerate(ids) if pid not in have]
    if len(rows) == len(ids):
        target.upsert(ids, vectors, payloads)
    elif rows:
        target.upsert([ids[i] for i in rows], vectors[rows], [payloads[i] for i in rows])
    return len(rows)


def _tick(progress: Progress | None, tally: _Tally) -> None:
    """Report progress over every space of the run."""
    report_progress(progress, tally.reports[0], tally.done)
