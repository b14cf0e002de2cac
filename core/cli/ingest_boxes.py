"""`embedscope ingest --coco / --boxes`: the options of a detection dataset ingest and their checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.common import opened_store, progress_display
from core.config import Settings
from core.datasets.detections import DetectionSet
from core.pipeline.objects_plan import DetectionReport


def add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the detection dataset options to `ingest`'s parser."""
    boxes = parser.add_argument_group("detection datasets (one point per image and per box; labels matched "
                                      "to predictions)")
    boxes.add_argument("--coco", type=Path, metavar="INSTANCES", help="COCO instances JSON (label boxes)")
    boxes.add_argument("--predictions", type=Path, metavar="RESULTS", help="COCO results JSON (predicted "
                       "boxes with scores, as detectors write it), with --coco; with --yolo a folder of YOLO "
                       "txt predictions (class cx cy w h score per line, same relative paths as the labels)")
    boxes.add_argument("--yolo", type=Path, metavar="DIR", help="a YOLO dataset: its images folder, or the "
                       "folder holding images/ and labels/ (one txt per image: class cx cy w h, normalised), "
                       "class names from classes.txt or data.yaml")
    boxes.add_argument("--boxes", type=Path, metavar="MANIFEST", help="JSONL / Parquet, one row per image "
                       "with its list of boxes (class, optional score, source and metadata)")
    boxes.add_argument("--images", type=Path, metavar="DIR", help="the folder the images' paths start from")
    boxes.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh",
                       help="how --boxes writes a box: [x, y, w, h] or [x1, y1, x2, y2] (pixels)")
    boxes.add_argument("--objects", choices=("crop", "roi"), default="crop", help="embed each box by its crop "
                       "(any image model, same space as the images; default) or by ROI pooling of one "
                       "forward pass (space <model>-roi)")
    boxes.add_argument("--iou", type=float, default=0.5, help="IoU for a prediction to match a label")
    boxes.add_argument("--margin", type=float, default=0.1, help="context around each crop, a fraction of "
                       "the box size on each side")
    boxes.add_argument("--object-vectors", type=Path, metavar="FILE", help="your own object vectors instead of "
                       "a model: .parquet (id + vector column) or .npy (with --ids), stored in --space (default "
                       "own). An id is an object key (<image key>#label/<n> or #prediction/<n>), a COCO "
                       "annotation id or a box manifest entry's \"id\"; a row keyed by an image key gives that "
                       "image's own point (optional)")


def detection_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the detection options (None when fine or not a detection ingest)."""
    if args.object_vectors is not None and (problem := _own_problem(args)):
        return problem
    if args.object_vectors is None and args.ids is not None:
        return "--ids goes with --embeddings or --object-vectors"
    if args.predictions is not None and args.coco is None and args.yolo is None:
        return "--predictions goes with --coco or --yolo"
    if args.yolo is not None:
        return _yolo_problem(args)
    if args.coco is None and args.boxes is None:
        return "--images goes with --coco or --boxes" if args.images is not None else None
    given = _others(args)
    if args.coco is not None and args.boxes is not None:
        given.insert(0, "--boxes")
    if given:
        return f"{'--coco' if args.coco is not None else '--boxes'} does not go with {', '.join(given)}"
    if args.coco is not None and args.images is None:
        return "--coco needs --images DIR (the folder its file_name paths start from)"
    return _number_problem(args)


def _others(args: argparse.Namespace) -> list[str]:
    """The non-detection options given (they do not go with a detection ingest)."""
    others = {"FOLDER": args.folder, "--manifest": args.manifest, "--embeddings": args.embeddings,
              "--layers": args.layers, "--labels-only": args.labels_only or None,
              "--space": None if args.object_vectors is not None else args.space,
              "--base-dir": args.base_dir, "--modality text": args.modality == "text" or None}
    return [name for name, value in others.items() if value is not None]


def _own_problem(args: argparse.Namespace) -> str | None:
    """--object-vectors: a detection input, and no model options (the vectors are already made)."""
    if args.coco is None and args.boxes is None and args.yolo is None:
        return "--object-vectors goes with --coco, --boxes or --yolo (the objects its ids name)"
    given = [name for name, value in (("--model", args.model), ("--layer", args.layer), ("--layers", args.layers),
                                      ("--objects roi", args.objects == "roi" or None)) if value is not None]
    return f"--object-vectors does not go with {', '.join(given)} (the vectors are already made)" if given else None


def _yolo_problem(args: argparse.Namespace) -> str | None:
    """--yolo DIR: no --coco / --boxes / --images (the folder names the images), no other source."""
    given = [name for name, value in (("--coco", args.coco), ("--boxes", args.boxes), ("--images", args.images))
             if value is not None] + _others(args)
    if given:
        return f"--yolo does not go with {', '.join(given)}"
    if args.predictions is not None and not args.predictions.is_dir():  # else no prediction would be read, silently
        return f"--predictions with --yolo is a folder of YOLO txt files: {args.predictions} is not a folder"
    return _number_problem(args)


def _number_problem(args: argparse.Namespace) -> str | None:
    if not 0.0 < args.iou <= 1.0:
        return f"--iou must be in (0, 1], got {args.iou}"
    if not 0.0 <= args.margin <= 10.0:
        return f"--margin must be in [0, 10] (a fraction of the box size), got {args.margin}"
    return None


def ingest_own_objects(args: argparse.Namespace, settings: Settings, det: DetectionSet) -> DetectionReport:
    """`ingest --coco/--boxes/--yolo ... --object-vectors FILE`: the objects (and the images with a
    vector row) stored with the file's vectors in --space (default own), then indexed when large."""
    from core.auth import local_actor
    from core.datasets.object_vectors import open_object_vectors
    from core.pipeline.indexing import build_index_if_large
    from core.pipeline.ingest_vectors import own_space
    from core.pipeline.objects_own import ingest_object_vectors

    name = args.space or "own"
    with opened_store(settings) as store:
        existing = {s.name: s for s in store.list_spaces(args.project)}.get(name)
        vectors = open_object_vectors(args.object_vectors, args.ids, id_column=args.id_column or "id",
                                      vector_column=args.vector_column, dim=existing.dim if existing else None)
        space = own_space(store, args.project, name, vectors.dim, args.object_vectors.name)
        with progress_display(args.progress, "ingest") as progress:
            report = ingest_object_vectors(store, args.project, args.dataset, det, vectors, space=space,
                                           actor=local_actor(settings), iou=args.iou, settings=settings,
                                           progress=progress)
        if report.stored and not args.no_index and build_index_if_large(store, args.project, space.name):
            sys.stderr.write(f"built the search index of {args.project}/{space.name}\n")
    return report
