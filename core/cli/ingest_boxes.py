"""`embedscope ingest --coco / --boxes`: the options of a detection dataset ingest and their checks."""

from __future__ import annotations

import argparse
from pathlib import Path


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


def detection_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the detection options (None when fine or not a detection ingest)."""
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
              "--layers": args.layers, "--labels-only": args.labels_only or None, "--space": args.space,
              "--base-dir": args.base_dir, "--modality text": args.modality == "text" or None}
    return [name for name, value in others.items() if value is not None]


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
