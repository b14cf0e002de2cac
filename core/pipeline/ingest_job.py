"""The one ingest use case of the CLI and the dashboard: store a dataset, then index the space when large.

Both entry points read their items and choose a model (or own vectors) their own way, then call
run_ingest, so a dataset ingested from the dashboard gets the same HNSW index and documents
compaction as one ingested with `embedscope ingest` (before, only the CLI built the index and a
100k dataset ingested from the dashboard stayed on exact scans).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.auth import Actor, Permission, require
from core.config import Settings
from core.datasets.own_embeddings import OwnVectors
from core.embedders.base import Embedder
from core.pipeline import indexing
from core.pipeline.rejects import IngestReport
from core.store.base import VectorStore
from core.types import Item, Progress

if TYPE_CHECKING:
    from core.datasets.detections import DetectionSet
    from core.datasets.object_vectors import ObjectVectorsFile
    from core.embedders.layers import LayerEmbedders  # imports the model loaders: only for types

log = logging.getLogger(__name__)

# Phase labels passed to `phase` (the dashboard shows them, the CLI prints them).
PHASE_STORE = "embedding and storing the items…"
PHASE_INDEX = "building the search index…"
Phase = Callable[[str], None]


@dataclass(frozen=True)
class ModelSource:
    """Embed the items with a model: its space is the model's (embedder.space_info())."""

    embedder: Embedder


@dataclass(frozen=True)
class LayersSource:
    """Embed the items with several layers of one model in one forward pass: one space per layer
    (layers.space_infos())."""

    layers: LayerEmbedders


@dataclass(frozen=True)
class VectorSource:
    """The user's own vectors (n, d) for a space named `space`, joined to the items by `keys`
    (one per vector; None: items[i] <-> vectors[i]). origin names the file in messages.
    vectors: an array, or the file itself (core.datasets.open_own_embeddings: read block by
    block during the ingest, so a 1M x 512 file is never in memory whole)."""

    space: str
    vectors: np.ndarray | OwnVectors
    keys: Sequence[str] | None
    origin: str


@dataclass(frozen=True)
class DetectionSource:
    """A detection dataset embedded with a model: each image a point of the model's space and each
    box an object point (crops in the same space; ROI vectors in "<space>-roi"), labels matched to
    predictions at `iou` (core.pipeline.objects_ingest.ingest_detections; progress counts images)."""

    det: DetectionSet
    embedder: Embedder
    mode: str = "crop"
    margin: float = 0.1
    iou: float = 0.5


@dataclass(frozen=True)
class ObjectVectorsSource:
    """A detection dataset stored with the user's own object vectors (no model) in the own space `space`,
    joined by object id, labels matched to predictions at `iou` (core.pipeline.objects_own; progress counts
    the file's rows)."""

    det: DetectionSet
    vectors: ObjectVectorsFile
    space: str
    iou: float = 0.5


@dataclass(frozen=True)
class IngestOutcome:
    """What run_ingest did: the ingest's report, and whether it built the space's search index.

    reports: one per space written (a LayersSource writes several; report is the first)."""

    report: IngestReport
    index_built: bool
    index_building: bool = False  # the caller started a background build (the dashboard)
    reports: tuple[IngestReport, ...] = ()
    indexed: tuple[str, ...] = ()  # the spaces whose search index this ingest built

    def all_reports(self) -> tuple[IngestReport, ...]:
        """Every space's report (just `report` for a one-space ingest)."""
        return self.reports or (self.report,)


def run_ingest(store: VectorStore, project: str, dataset: str, items: Sequence[Item],
               source: ModelSource | LayersSource | VectorSource | DetectionSource | ObjectVectorsSource, *,
               actor: Actor, settings: Settings,
               progress: Progress | None = None, phase: Phase | None = None,
               build_index: bool = True, index_threshold: int | None = None) -> IngestOutcome:
    """Store `items` as `dataset` of `project` (embedded by a model, or own vectors), then, when
    something was stored and build_index, build the space's HNSW index once it holds more than
    index_threshold points (None: core.pipeline.indexing.INDEX_THRESHOLD, 20k) with
    store.optimize, which also compacts the documents area (minutes at 100k points).
    progress(done, total) follows the items; phase(label) announces PHASE_STORE and PHASE_INDEX,
    then "<PHASE_INDEX> <n> s" every 10 s while the index builds (build_index=False: the caller
    builds it, e.g. the dashboard in the background with indexing.start_index_build).
    CoreError from reading, embedding or the store propagates; PermissionDeniedError (before
    anything is written) unless actor may ingest."""
    require(actor, Permission.INGEST, f"ingesting into dataset {dataset!r} of project {project!r}")
    from core.pipeline.ingest import ingest_items, ingest_layers
    from core.pipeline.ingest_target import rejects_folder
    from core.pipeline.ingest_vectors import ingest_vectors, own_space

    _announce(phase, PHASE_STORE)
    if isinstance(source, ModelSource):
        reports = [ingest_items(store, project, dataset, items, source.embedder, actor=actor,
                                settings=settings, progress=progress)]
    elif isinstance(source, LayersSource):
        reports = ingest_layers(store, project, dataset, items, source.layers, actor=actor,
                                settings=settings, progress=progress)
    elif isinstance(source, DetectionSource):  # `items` unused: the images are source.det.images
        from core.pipeline.objects_ingest import ingest_detections

        reports = [ingest_detections(store, project, dataset, source.det, source.embedder, actor=actor,
                                     mode=source.mode, margin=source.margin, iou=source.iou, settings=settings,
                                     progress=progress)]
    elif isinstance(source, ObjectVectorsSource):  # own object vectors: `items` unused, as above
        from core.pipeline.objects_own import ingest_object_vectors

        space = own_space(store, project, source.space, source.vectors.dim, source.vectors.path.name)
        reports = [ingest_object_vectors(store, project, dataset, source.det, source.vectors, space=space,
                                         actor=actor, iou=source.iou, settings=settings, progress=progress)]
    else:
        space = own_space(store, project, source.space, int(source.vectors.shape[1]), source.origin)
        reports = [ingest_vectors(store, project, dataset, space, items, source.vectors,
                                  actor=actor, keys=source.keys, progress=progress,
                                  rejects_dir=rejects_folder(settings))]
    threshold = indexing.INDEX_THRESHOLD if index_threshold is None else index_threshold
    indexed = tuple(r.space for r in reports if _index(store, project, r, phase, build_index, threshold))
    return IngestOutcome(reports[0], bool(indexed), reports=tuple(reports), indexed=indexed)


def _index(store: VectorStore, project: str, report: IngestReport, phase: Phase | None,
           build_index: bool, threshold: int) -> bool:
    if not (build_index and report.stored):
        return False
    if store.count(project, report.space) <= threshold:
        return False  # an exact scan answers in a few ms: no index needed (indexing.py)
    _announce(phase, PHASE_INDEX)

    def tick(elapsed_s: float) -> None:  # Edge reports no fraction done: the elapsed time shows it is alive
        if phase is not None:
            phase(f"{PHASE_INDEX} {elapsed_s:.0f} s")

    return indexing.build_index_if_large(store, project, report.space, threshold, tick=tick)


def _announce(phase: Phase | None, label: str) -> None:
    log.info("ingest: %s", label)
    if phase is not None:
        phase(label)
