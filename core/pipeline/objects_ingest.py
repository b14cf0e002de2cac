"""Detection ingest: each image's point plus one object point per box (labels and predictions, matched),
in one pass over the images with one decode each; resumable, bad boxes rejected by name."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from core.analysis.box_matching import Match, match_set
from core.auth import Actor, Permission, require
from core.config import Settings
from core.datasets.detections import DetectionSet, DetObject
from core.datasets.images import shown
from core.embedders.base import Embedder, PreprocessingEmbedder
from core.embedders.objects import OBJECT_MODES, embed_image_objects, object_space_info, roi_unsupported
from core.errors import UnsupportedOperationError
from core.pipeline.detection_info import save_detection_info
from core.pipeline.ingest_target import Target, finish_reports, rejects_folder, screen
from core.pipeline.objects_decode import Decoded, decode_batch, without_bad_boxes
from core.pipeline.objects_plan import (
    DetectionReport,
    ObjectIds,
    count_objects,
    group_objects,
    object_payload,
    plan,
)
from core.pipeline.prepare import prepared_batches
from core.pipeline.timer import Timer
from core.store.base import VectorStore
from core.store.names import validate_name
from core.types import Item, Progress

log = logging.getLogger(__name__)

Matches = Mapping[tuple[str, str, int], Match]  # match_set's answer: (image key, source, index) -> Match
# Images per batch (default): each decoded image is held until its boxes are embedded, and the prepare
# threads run (workers + 1) batches ahead, so this bounds memory (8 x 12 MP RGB images = 290 MB a batch).
IMAGES_PER_BATCH = 8


@dataclass(frozen=True)
class _Run:
    """One detection ingest's fixed parts."""

    dataset: str
    ids: ObjectIds
    embedder: Embedder
    mode: str
    margin: float
    settings: Settings
    target: Target  # the image points' space
    objects: Target  # the object points' space: the same one, or "<space>-roi" (object_space_info)
    report: DetectionReport
    timer: Timer


def ingest_detections(store: VectorStore, project: str, dataset: str, det: DetectionSet, embedder: Embedder, *,
                      actor: Actor, mode: str = "crop", margin: float = 0.1, iou: float = 0.5, settings: Settings,
                      progress: Progress | None = None, rejects_dir: Path | None = None,
                      batch_size: int | None = None) -> DetectionReport:
    """Store each image of `det` (an item point, as ingest_items) and each of its boxes (an object
    point: kind "object", parent, box, source, class / score, match status from
    core.analysis.box_matching.match_set at `iou`, box_area, meta) in embedder's space.

    Boxes are embedded by core.embedders.objects.embed_image_objects (mode "crop": each box cut
    with `margin` of its size around it, into the image space; "roi": pooled from one forward pass,
    into "<space>-roi": object_space_info), all boxes of an image from the one decode (in the
    prepare threads) that also feeds its image point and writes its thumbnails (the image's, and a
    crop per box keyed by the object's point id: core.thumbnails.object_thumbnail).
    Resumable: ids are deterministic (core.ids.object_id) and points already stored are neither
    embedded nor written again; each batch of images (batch_size, default IMAGES_PER_BATCH) is
    upserted as soon as it is embedded. An unreadable image rejects itself and its boxes; a box no
    crop can be cut from (BadBoxError) rejects that box only. The reader's rejects (det.rejects:
    bad boxes) join the report and its CSV. progress(done, total) counts images (total =
    len(det.images), known up front). Raises ValueError for an unknown mode or iou,
    UnsupportedOperationError for roi on a model without it, BadInputError for a bad name,
    PermissionDeniedError (before anything is read) unless actor may ingest.
    """
    require(actor, Permission.INGEST, f"ingesting detections into dataset {dataset!r} of project {project!r}")
    if mode not in OBJECT_MODES:
        raise ValueError(f"mode must be one of {OBJECT_MODES}, got {mode!r}")
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    if mode == "roi" and (problem := roi_unsupported(embedder)) is not None:  # before any image is read
        raise UnsupportedOperationError(f"ROI object embeddings are not available: {problem}; use crop mode")
    kept, rejects = screen(det.images)
    images = [det.images[i] for i in kept]
    rejects = [*det.rejects, *rejects]
    by_image = group_objects(images, det.objects, rejects)
    objects = [obj for boxes in by_image.values() for obj in boxes]
    matches = match_set(objects, iou=iou)
    target = Target(store, project, embedder.space_info())
    info = object_space_info(embedder, mode)
    boxes_target = target if info.name == target.info.name else Target(store, project, info)
    report = DetectionReport(project, dataset, target.info.name, rejects=rejects, images=len(det.images),
                             total=len(det.images) + len(det.objects) + len(det.rejects),
                             object_space=boxes_target.info.name)
    run = _Run(dataset, ObjectIds(project, dataset), embedder, mode, margin, settings, target, boxes_target,
               report, Timer())
    first = len(rejects)  # the rejects before here are not boxes of `objects` (bad boxes, repeats)
    try:
        _store_all(run, images, by_image, matches, progress, batch_size or min(settings.batch_size, IMAGES_PER_BATCH))
    finally:
        target.drop_if_empty()
        boxes_target.drop_if_empty()
    count_objects(report, objects, matches, {r.key for r in report.rejects[first:]})
    if report.stored or report.skipped:  # the dataset exists: its class ids (COCO) for exports, the IoU for re-matching
        save_detection_info(store, project, dataset, categories=det.categories, iou=iou)
    report.timings = run.timer.totals()
    finish_reports([report], rejects_dir or rejects_folder(settings))
    return report


def _store_all(run: _Run, images: list[Item], by_image: dict[str, list[DetObject]], matches: Matches,
               progress: Progress | None, size: int) -> None:
    """Plan what the space lacks, then decode, embed and store it batch by batch."""
    ids = run.ids
    have = run.target.stored([ids.image(item.key) for item in images])
    have |= run.objects.stored([ids.object(obj.image_key, obj.source, obj.index)
                                for boxes in by_image.values() for obj in boxes])
    run.report.skipped = len(have)
    todo = plan(images, by_image, ids, have)
    done = run.report.images - len(todo)  # images with nothing missing, and repeated keys (rejected)
    _tick(progress, done, run.report)
    batches = [todo[i:i + size] for i in range(0, len(todo), size)]
    prepare = partial(decode_batch, embedder=run.embedder, settings=run.settings, mode=run.mode, margin=run.margin)
    with closing(prepared_batches(batches, prepare, run.settings.num_workers)) as stream:
        for decoded in run.timer.iterate("wait", stream):
            run.report.rejects.extend(decoded.rejects)
            _store_images(run, decoded)
            _store_objects(run, decoded, matches)
            done += decoded.size
            _tick(progress, done, run.report)


def _tick(progress: Progress | None, done: int, report: DetectionReport) -> None:
    log.debug("%s/%s: %d of %d images done", report.project, report.dataset, done, report.images)
    if progress is not None:
        progress(done, report.images)


def _embed(embedder: Embedder, inputs: np.ndarray | list[Image.Image]) -> np.ndarray:
    """(n, dim) float32 unit vectors of prepared model input (decode_batch's model_input)."""
    if isinstance(inputs, np.ndarray):
        assert isinstance(embedder, PreprocessingEmbedder)
        return embedder.embed_preprocessed(inputs)
    return embedder.embed_images(inputs)


def _store_images(run: _Run, decoded: Decoded) -> None:
    """Embed and upsert the image points the batch lacks."""
    if not decoded.rows:
        return
    todo = [decoded.todo[i] for i in decoded.rows]
    with run.timer.section("embed"):
        vectors = _embed(run.embedder, decoded.inputs)
    with run.timer.section("store"):
        run.target.upsert([t.pid for t in todo], vectors, [t.item.payload(run.dataset) for t in todo])
    run.report.stored += len(todo)


def _store_objects(run: _Run, decoded: Decoded, matches: Matches) -> None:
    """Embed the batch's missing boxes (crop mode: every crop of the batch in one model call; ROI: one
    call per image) and upsert them in one write."""
    if run.mode == "crop":
        kept = [(decoded.todo[at].item, oid, obj) for at, oid, obj in decoded.boxes]
        if not kept:
            return
        with run.timer.section("embed"):
            vectors = _embed(run.embedder, decoded.crop_inputs)
    else:
        kept, vectors = _roi_vectors(run, decoded)
    if kept:
        payloads = [object_payload(run.dataset, run.ids, image, obj, matches.get((obj.image_key, obj.source,
                                                                                  obj.index)))
                    for image, _, obj in kept]
        with run.timer.section("store"):
            run.objects.upsert([oid for _, oid, _ in kept], vectors, payloads)
        run.report.stored += len(kept)


def _roi_vectors(run: _Run, decoded: Decoded) -> tuple[list[tuple[Item, str, DetObject]], np.ndarray]:
    """ROI mode: the boxes kept (image item, object id, object) and their (k, dim) vectors, one forward
    pass per image (core.embedders.objects.embed_image_objects)."""
    kept: list[tuple[Item, str, DetObject]] = []
    blocks: list[np.ndarray] = []
    for todo, image in zip(decoded.todo, decoded.images, strict=True):
        if not todo.boxes:
            continue
        pool = partial(_roi, run, image, shown(todo.item.uri or todo.item.key))
        with run.timer.section("embed"):
            boxes, vectors = without_bad_boxes(todo, pool, run.report.rejects)
        if vectors is not None:
            kept += [(todo.item, oid, obj) for oid, obj in boxes]
            blocks.append(vectors)
    return kept, np.concatenate(blocks) if blocks else np.empty((0, run.objects.info.dim), dtype=np.float32)


def _roi(run: _Run, image: Image.Image, name: str, objects: list[DetObject]) -> np.ndarray:
    return embed_image_objects(run.embedder, image, [obj.box for obj in objects], mode=run.mode,
                               margin=run.margin, name=name)


__all__ = ["IMAGES_PER_BATCH", "OBJECT_MODES", "DetectionReport", "ingest_detections"]
