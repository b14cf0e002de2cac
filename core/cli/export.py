"""`embedscope export`: a collection, a tag or a finding list (of images or detection objects) for a labeling tool."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from core.cli.common import EXIT_OK, opened_store
from core.config import Settings
from core.errors import BadInputError
from core.interop import objects, selection
from core.interop.exporting import FORMATS, ExportFiles, UrlOptions, build
from core.pipeline.payload_cache import cache_folder
from core.store.base import VectorStore
from core.types import DATASET


def register(subparsers: Any) -> None:
    """Add the `export` command."""
    p = subparsers.add_parser(
        "export", help="export a collection, tag or finding list for a labeling tool (Label Studio, COCO, CSV)",
        description="Write items with their current labels for a labeling tool. labelstudio: a task file "
        "(current label as a pre-annotation) and, beside it, the labeling config to paste; coco: images, "
        "categories and one image-level annotation per labeled image (CVAT imports it); csv: one row per item. "
        "Corrected labels come back with `embedscope import-labels`.",
    )
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--space", help="embedding space (default: the project's only one; a collection knows its own)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--collection", metavar="NAME", help="a saved collection")
    what.add_argument("--tag", metavar="TAG", help="every item carrying this tag")
    what.add_argument("--finding", choices=(*selection.FINDINGS, *objects.OBJECT_FINDINGS),
                      help="a finding of the persisted analysis (run `embedscope analyse` first); "
                           "mislabeled-boxes / missing-labels / background: of the object analysis "
                           "(`embedscope analyse --objects`)")
    what.add_argument("--corrected", action="store_true",
                      help="with --objects: every object whose label was changed or that was marked reviewed")
    p.add_argument("--objects", action="store_true",
                   help="export detection objects (coco: real boxes, csv / jsonl: the object payload columns)")
    p.add_argument("--predictions", action="store_true",
                   help="with --objects --format coco: prediction boxes too, as a COCO results file "
                        "<stem>.results.json (always for the missing-labels / background findings)")
    p.add_argument("--dataset", metavar="D[,D...]", help="with --finding: the analysed datasets (default: all)")
    p.add_argument("--cluster", type=int, help="with --finding error-cluster: the cluster's id")
    p.add_argument("--out", type=Path, required=True, help="the file to write (Label Studio: also "
                   "<stem>.labeling-config.xml beside it)")
    p.add_argument("--image-url-prefix", metavar="URL", help="serve the images yourself: URL + the path "
                   "relative to --local-files-root (or + the item's key)")
    p.add_argument("--local-files-root", metavar="DIR", type=Path, help="Label Studio's "
                   "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (default /): image URLs are "
                   "/data/local-files/?d=<path relative to DIR>")
    p.set_defaults(func=run)


def _items(store: VectorStore, settings: Settings, args: argparse.Namespace) -> tuple[str, pd.DataFrame]:
    if args.collection is not None:
        return selection.from_collection(store, args.project, args.collection)
    space = selection.pick_space(store, args.project, args.space)
    if args.tag is not None:
        return space, selection.from_tag(store, args.project, space, args.tag)
    datasets = [d.strip() for d in (args.dataset or "").split(",") if d.strip()] or None
    return space, selection.from_finding(store, args.project, space, args.finding, datasets=datasets,
                                         cluster=args.cluster, cache_dir=cache_folder(settings))


def _objects(store: VectorStore, settings: Settings, args: argparse.Namespace) -> tuple[str, pd.DataFrame]:
    if args.collection is not None:
        return objects.from_collection(store, args.project, args.collection)
    space = selection.pick_space(store, args.project, args.space)
    if args.tag is not None:
        return space, objects.from_tag(store, args.project, space, args.tag)
    if args.corrected:
        return space, objects.from_corrected(store, args.project, space)
    if args.finding not in objects.OBJECT_FINDINGS:
        raise BadInputError(f"--finding {args.finding} is a finding of images; with --objects use one of "
                            + ", ".join(objects.OBJECT_FINDINGS))
    datasets = [d.strip() for d in (args.dataset or "").split(",") if d.strip()] or None
    return space, objects.from_finding(store, args.project, space, args.finding, datasets=datasets,
                                       cache_dir=cache_folder(settings))


def _export_objects(store: VectorStore, settings: Settings, args: argparse.Namespace) -> tuple[str, int, ExportFiles]:
    if args.format not in objects.OBJECT_FORMATS:
        raise BadInputError(f"--objects exports as {', '.join(objects.OBJECT_FORMATS)}, not {args.format}")
    space, found = _objects(store, settings, args)
    predictions = args.predictions or args.finding in objects.PREDICTION_FINDINGS
    urls = UrlOptions(args.image_url_prefix, args.local_files_root)
    from core.pipeline.detection_info import category_ids

    kept = category_ids(store, args.project, found[DATASET].dropna().astype(str).unique().tolist()
                        if DATASET in found.columns else [])  # the COCO category ids the datasets came with
    made = objects.build_objects(settings, args.project, space, found, args.format, stem=_stem(args.out),
                                 predictions=predictions, urls=urls, categories=kept)
    return space, len(found), made


def _stem(out: Path) -> str:
    """--out's name without its last suffix: the other files are named after it."""
    return out.name[: -len(out.suffix)] if out.suffix else out.name


def _paths(out: Path, names: list[str]) -> list[Path]:
    """Where each file goes: the first at --out, the others beside it with their own suffix."""
    return [out] + [out.with_name(_stem(out) + name[name.index("."):]) for name in names[1:]]


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope export`; CoreErrors propagate to core.__main__ (exit 1)."""
    if args.objects or args.finding in objects.OBJECT_FINDINGS:
        with opened_store(settings) as store:
            space, count, made = _export_objects(store, settings, args)
        return _write(args, made, f"{count} detection objects of space {space}")
    if args.corrected or args.predictions:
        raise BadInputError("--corrected and --predictions go with --objects")
    with opened_store(settings) as store:
        space, items = _items(store, settings, args)
        urls = UrlOptions(args.image_url_prefix, args.local_files_root)
        made = build(store, settings, args.project, space, items, args.format, stem=_stem(args.out), urls=urls)
    return _write(args, made, f"{len(items)} items of space {space}")


def _write(args: argparse.Namespace, made: ExportFiles, what: str) -> int:
    """Write the export's files (the first at --out, the others beside it) and say what was written."""
    paths = _paths(args.out, [name for name, _ in made.files])
    for path, (_, data) in zip(paths, made.files, strict=True):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as e:
            raise BadInputError(f"Cannot write {str(path)!r}: {e}") from e
        sys.stdout.write(f"wrote {path} ({len(data):,} bytes)\n")
    sys.stdout.write(f"{what}\n" + "".join(f"{n}\n" for n in made.notes))
    return EXIT_OK
