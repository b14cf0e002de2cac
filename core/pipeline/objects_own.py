"""Own object vectors: a detection set's boxes (and optionally its images) stored with the user's vectors,
joined by object id, matched labels to predictions as a model-embedded detection ingest does."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.analysis.box_matching import Match, match_set
from core.auth import Actor, Permission, require
from core.config import Settings
from core.datasets.detections import DetectionSet, DetObject
from core.datasets.object_vectors import ObjectVectorsFile, VectorBlock
from core.linalg import l2_normalise, row_norms
from core.pipeline.detection_info import save_detection_info
from core.pipeline.ingest_target import Target, finish_reports, rejects_folder, screen
from core.pipeline.objects_plan import DetectionReport, ObjectIds, count_objects, group_objects, object_payload
from core.pipeline.timer import Timer
from core.store.base import VectorStore
from core.store.names import validate_name
from core.types import Item, Progress, Reject, SpaceInfo

log = logging.getLogger(__name__)

BATCH = 1024  # points per upsert
_MIN_NORM = 1e-12  # below this a vector has no direction (as core.pipeline.ingest_vectors)


@dataclass(frozen=True)
class Named:
    """What one id of the vectors file names: an object (obj set) or an image's own point (obj None)."""

    image: Item
    obj: DetObject | None = None


@dataclass
class _Ids:
    """Every id a vectors row may use, and the ones that name two things (refused as ambiguous)."""

    targets: dict[str, Named] = field(default_factory=dict)
    ambiguous: set[str] = field(default_factory=set)

    def add(self, key: str, target: Named) -> None:
        if key in self.targets and self.targets[key] != target:
            self.ambiguous.add(key)
        self.targets[key] = target


def own_object_id(obj: DetObject) -> str | None:
    """The object's own id in its input, when it has one: a COCO label's annotation id, a box
    manifest entry's "id" (as text); None otherwise (then only its object key names it)."""
    for name in ("annotation_id", "id"):
        value = obj.meta.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def vector_ids(images: Sequence[Item], by_image: Mapping[str, list[DetObject]]) -> _Ids:
    """The ids a vectors file may use: each object's key ("<image key>#<source>/<index>") and own id
    (own_object_id), and each image's key (its image-level vector, optional)."""
    ids = _Ids()
    for image in images:
        ids.add(image.key, Named(image))
        for obj in by_image.get(image.key, []):
            ids.add(obj.key, Named(image, obj))
            if (own := own_object_id(obj)) is not None and own != obj.key:
                ids.add(own, Named(image, obj))
    return ids


def ingest_object_vectors(store: VectorStore, project: str, dataset: str, det: DetectionSet,
                          vectors: ObjectVectorsFile, *, space: SpaceInfo, actor: Actor, iou: float = 0.5,
                          settings: Settings, rejects_dir: Path | None = None,
                          progress: Progress | None = None) -> DetectionReport:
    """Store the objects of `det` in `space` (own vectors, created if absent) with the user's vectors,
    read block by block from `vectors` and joined by id (vector_ids): object points get the payload of
    a model-embedded detection ingest (objects_plan.object_payload: parent, box, source, class,
    match status at `iou` over all of det's boxes); a row keyed by an image key stores that image's
    point. Vectors are L2-normalised; stored ids are overwritten (new vectors replace old ones).

    Named rejects (CSV in rejects_dir, default <data_dir>/rejects): the reader's (det.rejects), rows
    without an id or vector, of another length, with NaN / inf / zero values, an id that names nothing or two things, an id
    repeated in the file (the first row wins), and every object with no vector row. Images without a
    vector are not rejects (their image point is optional). progress(done, total) counts file rows.
    Raises PermissionDeniedError unless actor may ingest; BadInputError for a bad name.
    """
    require(actor, Permission.INGEST, f"ingesting object vectors into {project}/{dataset}")
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    if vectors.dim != space.dim:
        raise ValueError(f"the file's vectors have {vectors.dim} dims, space {space.name!r} {space.dim}")
    kept, rejects = screen(det.images)
    images = [det.images[i] for i in kept]
    rejects = [*det.rejects, *rejects]
    by_image = group_objects(images, det.objects, rejects)
    objects = [obj for boxes in by_image.values() for obj in boxes]
    run = _Run(dataset, ObjectIds(project, dataset), match_set(objects, iou=iou), vector_ids(images, by_image),
               vectors.path.name, Target(store, project, space))
    first = len(rejects)  # the rejects before here are not rows of the file nor objects without a vector
    report = DetectionReport(project, dataset, space.name, rejects=rejects, images=len(det.images),
                             total=vectors.rows + first, object_space=space.name)
    timer = Timer()
    try:
        for block in timer.iterate("read", vectors.blocks()):
            _store_block(run, report, block, timer)
            if progress is not None:
                progress(block.first_row - 1 + len(block.keys), vectors.rows)
    finally:
        run.target.drop_if_empty()
    unstored = {obj.key for obj in objects if run.ids.object(obj.image_key, obj.source, obj.index) not in run.used}
    refused = {r.key for r in report.rejects[first:]}  # objects whose row was bad: named once already
    missing = [obj for obj in objects if obj.key in unstored and obj.key not in refused]
    report.rejects += [Reject(Item(key=obj.key, uri=_uri(run, obj)),
                              f"no vector for this object in {run.origin} (ids tried: {_tried(obj)})")
                       for obj in missing]
    report.total += len(missing)
    if report.stored:
        save_detection_info(store, project, dataset, categories=det.categories, iou=iou)
    count_objects(report, objects, run.matches, unstored)
    report.timings = timer.totals()
    finish_reports([report], rejects_dir or rejects_folder(settings))
    log.info("%s: %d of %d images have an image vector", report.summary(), run.images_stored, len(images))
    return report


@dataclass
class _Run:
    dataset: str
    ids: ObjectIds
    matches: Mapping[tuple[str, str, int], Match]
    known: _Ids
    origin: str
    target: Target
    used: set[str] = field(default_factory=set)  # point ids given a vector by an earlier row (a repeat is refused)
    images_stored: int = 0


def _uri(run: _Run, obj: DetObject) -> str | None:
    return run.known.targets[obj.key].image.uri


def _tried(obj: DetObject) -> str:
    own = own_object_id(obj)
    return repr(obj.key) + (f" or {own!r}" if own is not None else "")


def _store_block(run: _Run, report: DetectionReport, block: VectorBlock, timer: Timer) -> None:
    """Check each row of one block (naming the bad ones) and upsert the good ones BATCH at a time."""
    finite = np.isfinite(block.vectors).all(axis=1)
    norms = row_norms(np.where(finite[:, None], block.vectors, 0))
    rows: list[int] = []
    pids: list[str] = []
    payloads: list[dict[str, Any]] = []
    for at, key in enumerate(block.keys):
        where = f"{run.origin} row {block.first_row + at}"
        target = run.known.targets.get(key) if key is not None else None
        problem = block.bad.get(at) or _row_problem(run, key, target, bool(finite[at]), float(norms[at]))
        if problem is None and target is not None and _point(run, target) in run.used:
            problem = f"id {key!r}: this {'object' if target.obj else 'image'} has a vector in an earlier row"

        if problem is not None:
            report.rejects.append(_reject(key, target, f"{where}: {problem}"))
            continue
        assert target is not None
        pid = _point(run, target)
        run.used.add(pid)
        rows.append(at)
        pids.append(pid)
        payloads.append(_payload(run, target))
    for start in range(0, len(rows), BATCH):
        unit = l2_normalise(block.vectors[rows[start:start + BATCH]])
        with timer.section("store"):
            run.target.upsert(pids[start:start + BATCH], unit, payloads[start:start + BATCH])
    report.stored += len(rows)


def _row_problem(run: _Run, key: str | None, target: Named | None, finite: bool, norm: float) -> str | None:
    if key in run.known.ambiguous:
        return f"id {key!r} names two things (an image key and an object id, or two objects' ids)"
    if target is None:
        return f"id {key!r} is no object of this dataset (object key, annotation / box id) nor an image key"
    if not finite:
        return "vector has NaN or inf values"
    if norm < _MIN_NORM:
        return "vector has all zeros" if norm == 0 else f"vector norm {norm:.3g} is too small to normalise"
    return None


def _reject(key: str | None, target: Named | None, reason: str) -> Reject:
    """A bad row, named by the object key it meant (so the object is not counted stored) or its id."""
    if target is not None:
        return Reject(Item(key=target.obj.key if target.obj else target.image.key, uri=target.image.uri), reason)
    return Reject(Item(key=key if key is not None else "(no id)"), reason)


def _point(run: _Run, target: Named) -> str:
    if target.obj is None:
        return run.ids.image(target.image.key)
    return run.ids.object(target.obj.image_key, target.obj.source, target.obj.index)


def _payload(run: _Run, target: Named) -> dict[str, Any]:
    if target.obj is None:
        run.images_stored += 1
        return target.image.payload(run.dataset)
    obj = target.obj
    return object_payload(run.dataset, run.ids, target.image, obj,
                          run.matches.get((obj.image_key, obj.source, obj.index)))


__all__ = ["ingest_object_vectors", "own_object_id", "vector_ids"]
