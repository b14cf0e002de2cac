"""`embedscope ingest`: an image folder, a manifest or own vectors into a project's dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

from core.auth import local_actor
from core.cli.common import (
    EXIT_BY_STATUS,
    EXIT_OK,
    PROGRESS_MODES,
    opened_store,
    progress_display,
    usage_error,
    with_data_roots,
)
from core.cli.ingest_boxes import add_detection_arguments, detection_problem
from core.config import Settings
from core.embedders.base import Embedder
from core.pipeline.ingest_job import LayersSource, ModelSource, VectorSource, run_ingest
from core.pipeline.rejects import IngestReport
from core.types import Item

MAX_REJECTS_SHOWN = 20


def register(subparsers: Any) -> None:
    """Add the `ingest` command."""
    p = subparsers.add_parser(
        "ingest", help="embed and store an image folder, a manifest, or your own vectors",
        description="Embed a dataset with a model (or take your own vectors) and store it in a "
        "project. Re-running resumes: items already stored are skipped. Exit codes: 0 ok, "
        "3 some items rejected (listed, and written to a CSV), 1 failure, 2 usage error.",
    )
    p.add_argument("folder", nargs="?", type=Path,
                   help="image folder: sub-folder names become labels (cat/1.jpg -> label cat)")
    p.add_argument("--manifest", type=Path, help="CSV / Parquet / JSONL with a path or text column, "
                   "optional label, prediction, confidence, split and metadata columns")
    p.add_argument("--embeddings", type=Path, help="your own vectors: .parquet (id + vector column) "
                   "or .npy (with --ids); joined by id to the folder keys or manifest ids")
    p.add_argument("--ids", type=Path, help="ids of a .npy: .txt (one per line) or CSV / Parquet")
    p.add_argument("--project", required=True, help="project (datasets compared together)")
    p.add_argument("--dataset", required=True, help="dataset name, e.g. train, test, production")
    model = p.add_argument_group("embedding with a model")
    model.add_argument("--model", help="hub name or local model folder (default: EMBEDSCOPE_IMAGE_MODEL "
                       "or EMBEDSCOPE_TEXT_MODEL by modality). Without internet use efficientnet-lite0 "
                       "(images) or sentence-transformers/all-MiniLM-L6-v2 (texts) where their offline "
                       "packages are installed, or a local folder: `embedscope models` lists what works "
                       "offline here")
    which = model.add_mutually_exclusive_group()
    which.add_argument("--layer", help="which layer: pooled (default) or hidden:<i>")
    which.add_argument("--layers", metavar="LIST", help="several layers in one forward pass, one space "
                       "each, e.g. hidden:4,hidden:8,pooled (a layer sweep: then `embedscope evaluate`)")
    model.add_argument("--modality", choices=("auto", "image", "text"), default="auto",
                       help="what to embed (auto: text when the manifest has text but no paths)")
    model.add_argument("--batch-size", type=int, help="items per batch (default: EMBEDSCOPE_BATCH_SIZE)")
    model.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default: EMBEDSCOPE_DEVICE")
    model.add_argument("--workers", type=int, help="image decoding threads (default: EMBEDSCOPE_NUM_WORKERS)")
    add_detection_arguments(p)
    own = p.add_argument_group("own embeddings")
    own.add_argument("--space", help="space name for --embeddings (default: own)")
    own.add_argument("--vector-column", default="embedding", help="vector column of a Parquet file")
    columns = p.add_argument_group("manifest columns (auto-detected when not given)")
    for role in ("path", "text", "id", "label", "prediction", "confidence", "split"):
        columns.add_argument(f"--{role}-column", metavar="NAME", help=(
            "id column of the manifest, and of an --embeddings Parquet / ids table (default: id)"
            if role == "id" else None))
    p.add_argument("--base-dir", type=Path, help="folder relative manifest paths start from "
                   "(default: the manifest's folder)")
    p.add_argument("--data-root", type=Path, action="append", default=[], metavar="DIR",
                   help="also read images from under DIR this run (repeatable)")
    p.add_argument("--labels-only", action="store_true", help="only update labels / predictions / "
                   "metadata of stored items from --manifest (no embedding)")
    p.add_argument("--no-index", action="store_true", help="skip building the approximate search "
                   "index after a large ingest (queries then scan exactly: fine below ~20k points)")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                   help="bar, one line per batch, none, or auto (a bar on a terminal)")
    p.set_defaults(func=run)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if (args.coco is not None or args.boxes is not None or args.predictions is not None or args.images is not None
            or args.yolo is not None or args.object_vectors is not None):
        return detection_problem(args)
    sources = [s for s in (args.folder, args.manifest) if s is not None]
    if args.embeddings is None and len(sources) != 1:
        return "give exactly one of FOLDER or --manifest (or --embeddings)"
    if len(sources) > 1:
        return "give FOLDER or --manifest, not both (use --base-dir for relative manifest paths)"
    if args.ids is not None and args.embeddings is None:
        return "--ids goes with --embeddings"
    if args.embeddings is not None and (args.model or args.layer or args.layers):
        return "--model / --layer / --layers do not apply to --embeddings (the vectors are already made)"
    if args.layers is not None and args.labels_only:
        return "--layers does not apply to --labels-only (nothing is embedded)"
    if args.layers is not None:
        from core.embedders.layers import parse_layers
        from core.errors import BadInputError

        try:
            parse_layers(args.layers)
        except BadInputError as e:
            return f"--layers: {e}"
    if args.space is not None and args.embeddings is None:
        return "--space goes with --embeddings (model spaces are named after the model)"
    if args.labels_only and (args.manifest is None or args.embeddings is not None):
        return "--labels-only needs --manifest and no --embeddings"
    if args.base_dir is not None and args.manifest is None:
        return "--base-dir goes with --manifest"
    for name in ("batch_size", "workers"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "batch_size" else 0):
            return f"--{name.replace('_', '-')} must be at least {1 if name == 'batch_size' else 0}"
    return None


def _run_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The folders named on the command line become allowed data roots for this run."""
    named = list(args.data_root)
    if args.folder is not None:
        named.append(args.folder)
    if args.manifest is not None:
        named.append(args.base_dir or args.manifest.expanduser().resolve().parent)
    if args.images is not None:
        named.append(args.images)
    elif args.boxes is not None:  # relative paths start from the manifest's folder
        named.append(args.boxes.expanduser().resolve().parent)
    if args.yolo is not None:
        from core.datasets.detections import yolo_images

        named.append(yolo_images(args.yolo))
    run = with_data_roots(settings, *named)
    update: dict[str, Any] = {}
    if args.workers is not None:
        update["num_workers"] = args.workers
    if args.batch_size is not None:
        update["batch_size"] = args.batch_size
    return run.model_copy(update=update) if update else run


def _read_items(args: argparse.Namespace, settings: Settings) -> list[Item]:
    from core.datasets import from_image_folder, from_manifest

    if args.folder is not None:
        return from_image_folder(args.folder, settings)
    if args.manifest is None:
        return []
    roles = {role: getattr(args, f"{role}_column") for role in ("label", "prediction", "confidence", "split")}
    explicit = {f"{role}_column": name for role, name in roles.items() if name is not None}
    # Own vectors need no image: a manifest of ids, labels and metadata is enough with --embeddings.
    return from_manifest(args.manifest, settings, base_dir=args.base_dir, path_column=args.path_column,
                         text_column=args.text_column, id_column=args.id_column,
                         require_content=args.embeddings is None, **explicit)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope ingest`; returns the exit code (0 ok, 3 partial, 1 failure, 2 usage)."""
    problem = _usage_problem(args)
    if problem:
        return usage_error("ingest", problem)
    from core.store import validate_name

    validate_name(args.project, "project")
    validate_name(args.dataset, "dataset")
    if args.space is not None:
        validate_name(args.space, "space")
    settings = _run_settings(args, settings)
    if args.coco is not None or args.boxes is not None or args.yolo is not None:
        return _run_detections(args, settings)
    items = _read_items(args, settings)  # bad files fail here, before a model is loaded
    if args.manifest is not None and args.embeddings is None and not args.labels_only:
        from core.datasets import require_reachable

        require_reachable(items, settings, args.manifest)  # paths outside the roots: before the model too
    with opened_store(settings) as store:
        if args.labels_only:
            from core.pipeline.ingest_vectors import update_payloads

            updated = update_payloads(store, args.project, args.dataset, items, actor=local_actor(settings))
            sys.stdout.write(f"{args.project}/{args.dataset}: updated {updated} of {len(items)} items\n")
            return EXIT_OK
        source = _own_source(args) if args.embeddings is not None else _model_source(args, settings, items)
        with progress_display(args.progress, "ingest") as progress:
            outcome = run_ingest(store, args.project, args.dataset, items, source, actor=local_actor(settings),
                                 settings=settings, progress=progress, phase=_say, build_index=not args.no_index)
        for space in outcome.indexed:
            sys.stderr.write(f"built the search index of {args.project}/{space}\n")
    _print_report(outcome.all_reports())
    return EXIT_BY_STATUS[outcome.report.status]


def _run_detections(args: argparse.Namespace, settings: Settings) -> int:
    """`ingest --coco` / `--boxes` / `--yolo`: image and object points, one summary line (+ the rejects)."""
    from core.datasets.detections import read_box_manifest, read_coco, read_yolo, yolo_images
    from core.pipeline.ingest_job import DetectionSource

    if args.coco is not None:  # bad files fail here, before a model is loaded
        det = read_coco(args.coco, args.images, predictions=args.predictions, settings=settings)
    elif args.yolo is not None:
        det = read_yolo(yolo_images(args.yolo), predictions_dir=args.predictions, settings=settings)
    else:
        det = read_box_manifest(args.boxes, args.images, box_format=args.box_format, settings=settings)
    if args.object_vectors is not None:  # own vectors: no model
        from core.cli.ingest_boxes import ingest_own_objects

        own = ingest_own_objects(args, settings, det)
        _print_report([own])
        return EXIT_BY_STATUS[own.status]
    with opened_store(settings) as store:
        source = _model_source(args, settings, det.images)
        if not isinstance(source, ModelSource):  # --layers is refused by detection_problem
            raise ValueError("a detection ingest embeds with one model layer")
        job = DetectionSource(det, source.embedder, args.objects, args.margin, args.iou)
        with progress_display(args.progress, "ingest") as progress:
            outcome = run_ingest(store, args.project, args.dataset, det.images, job, actor=local_actor(settings),
                                 settings=settings, progress=progress, phase=_say, build_index=not args.no_index)
        for space in outcome.indexed:
            sys.stderr.write(f"built the search index of {args.project}/{space}\n")
    _print_report(outcome.all_reports())
    return EXIT_BY_STATUS[outcome.report.status]


def _modality(args: argparse.Namespace, items: list[Item]) -> str:
    if args.modality != "auto":
        return str(args.modality)
    texts_only = not any(item.uri for item in items) and any(item.text for item in items)
    return "text" if texts_only else "image"


def _say(phase: str) -> None:
    """An ingest phase on the terminal (above a progress bar, if one is drawn)."""
    from tqdm import tqdm

    tqdm.write(phase, file=sys.stderr)


def _model_source(args: argparse.Namespace, settings: Settings, items: list[Item]) -> ModelSource | LayersSource:
    from core.embedders import load_embedder

    modality = _modality(args, items)
    model = args.model or (settings.text_model if modality == "text" else settings.image_model)
    if not args.model:  # the default model: without internet, name what works offline instead
        from core.embedders.catalog import require_downloadable

        require_downloadable(model, modality, settings.allowed_roots, allow_pickled=settings.allow_pickled_models)
    side: Literal["image", "text"] = "text" if modality == "text" else "image"
    if args.layers is not None:
        from core.embedders.layers import load_layers, parse_layers

        return LayersSource(load_layers(model, parse_layers(args.layers), side, device=args.device or settings.device,
                                        batch_size=settings.batch_size, allow_pickled=settings.allow_pickled_models))
    # cast: ModelEmbedder declares modality as a Literal, the protocol as str (same values).
    embedder = cast(Embedder, load_embedder(
        model, side, device=args.device or settings.device,
        batch_size=settings.batch_size, layer=args.layer, allow_pickled=settings.allow_pickled_models))
    return ModelSource(embedder)


def _own_source(args: argparse.Namespace) -> VectorSource:
    from core.datasets import open_own_embeddings

    # Checked now (bad files fail before the store is touched), read block by block by the ingest.
    own = open_own_embeddings(args.embeddings, args.ids, id_column=args.id_column or "id",
                              vector_column=args.vector_column)
    return VectorSource(args.space or "own", own, own.keys, str(args.embeddings))


def _one_line(text: str) -> str:
    """Keys may hold newlines and other control characters (any file name does): show them escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_report(reports: Sequence[IngestReport]) -> None:
    """One summary line per space written, then the rejects (the same in every space) once."""
    lines = [r.summary() for r in reports]
    report = reports[0]
    for reject in report.rejects[:MAX_REJECTS_SHOWN]:
        lines.append(f"  rejected {_one_line(reject.key)}: {_one_line(reject.reason)}")
    if len(report.rejects) > MAX_REJECTS_SHOWN:
        lines.append(f"  ... and {len(report.rejects) - MAX_REJECTS_SHOWN} more")
    if report.rejects_path is not None:
        lines.append(f"rejects file: {report.rejects_path}")
    sys.stdout.write("\n".join(lines) + "\n")
