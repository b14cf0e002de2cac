"""`embedscope export`: a collection, a tag or a finding list as a Label Studio task file, a COCO file or CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from core.cli.common import EXIT_OK, opened_store
from core.config import Settings
from core.errors import BadInputError
from core.interop import selection
from core.interop.exporting import FORMATS, UrlOptions, build
from core.pipeline.payload_cache import cache_folder
from core.store.base import VectorStore


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
    what.add_argument("--finding", choices=selection.FINDINGS,
                      help="a finding of the persisted analysis (run `embedscope analyse` first)")
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


def _stem(out: Path) -> str:
    """--out's name without its last suffix: the other files are named after it."""
    return out.name[: -len(out.suffix)] if out.suffix else out.name


def _paths(out: Path, names: list[str]) -> list[Path]:
    """Where each file goes: the first at --out, the others beside it with their own suffix."""
    return [out] + [out.with_name(_stem(out) + name[name.index("."):]) for name in names[1:]]


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope export`; CoreErrors propagate to core.__main__ (exit 1)."""
    with opened_store(settings) as store:
        space, items = _items(store, settings, args)
        urls = UrlOptions(args.image_url_prefix, args.local_files_root)
        made = build(store, settings, args.project, space, items, args.format, stem=_stem(args.out), urls=urls)
    paths = _paths(args.out, [name for name, _ in made.files])
    for path, (_, data) in zip(paths, made.files, strict=True):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as e:
            raise BadInputError(f"Cannot write {str(path)!r}: {e}") from e
        sys.stdout.write(f"wrote {path} ({len(data):,} bytes)\n")
    sys.stdout.write(f"{len(items)} items of space {space}\n" + "".join(f"{n}\n" for n in made.notes))
    return EXIT_OK
