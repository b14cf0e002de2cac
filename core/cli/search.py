"""`embedscope search`: text / example / image / arithmetic search from the command line, with export."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from core import collections, export, search
from core.auth import local_actor
from core.cli.common import EXIT_OK, opened_store, usage_error
from core.config import Settings
from core.display import shorten
from core.errors import BadInputError
from core.filters import Filter, parse_filter
from core.ids import point_id
from core.store.base import VectorStore
from core.types import OBJECT_KIND, Hit

# Columns of the table printed when there is no --out (objects: their source and match status too).
TABLE_COLUMNS = ("score", "dataset", "key", "label", "prediction", "split", "id")
OBJECT_TABLE_COLUMNS = ("score", "dataset", "key", "source", "label", "prediction", "confidence", "match", "id")


def register(subparsers: Any) -> None:
    """Add the `search` command to the CLI's subparsers."""
    p = subparsers.add_parser(
        "search", help="find points by text, examples, image or embedding arithmetic",
        description="Search one embedding space of a project; filters run inside Qdrant.",
    )
    p.add_argument("--project", required=True)
    p.add_argument("--space", help="embedding space (default: the project's only / only text-side space)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--text", help="free-text description (CLIP and text spaces)")
    mode.add_argument("--like", action="append", metavar="ID[,ID]",
                      help="positive examples: point ids or dataset:key (repeatable)")
    mode.add_argument("--image", type=Path, help="query image file")
    mode.add_argument("--plus", action="append", metavar="ID|TEXT",
                      help="embedding arithmetic: add this item or text (repeatable, with --minus)")
    p.add_argument("--unlike", action="append", metavar="ID[,ID]", help="negative examples (with --like)")
    p.add_argument("--minus", action="append", metavar="ID|TEXT", help="subtract this item or text (with --plus)")
    p.add_argument("--filter", action="append", default=[], metavar="CLAUSE",
                   help="e.g. 'split=production', 'label is missing', 'confidence>=0.5' (repeatable)")
    p.add_argument("--points", choices=tuple(search.POINTS), default="images",
                   help="rank images (items) or detection objects, never both (default images)")
    p.add_argument("--match", action="append", metavar="STATUS[,STATUS]",
                   help="with --points objects: match statuses (tp, misclassified, poor_localisation, spurious, "
                        "missed, duplicate)")
    p.add_argument("--class", dest="classes", action="append", metavar="C[,C]",
                   help="with --points objects: a label box's label / a prediction's class")
    p.add_argument("--source", choices=("label", "prediction"), help="with --points objects: one source only")
    p.add_argument("--min-score", type=float, help="with --points objects: predictions scored at least this")
    p.add_argument("--max-score", type=float, help="with --points objects: predictions scored at most this")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--exact", action="store_true", help="full scan instead of the HNSW index")
    p.add_argument("--out", type=Path, help="write the results to a .csv or .jsonl file")
    p.add_argument("--save-as", metavar="NAME", help="save the results as a named collection")
    p.add_argument("--overwrite", action="store_true", help="with --save-as: replace a collection of that name")
    p.add_argument("--description", default="", help="with --save-as: a note kept with the collection")
    p.set_defaults(func=run)


def _split_ids(values: list[str] | None, project: str) -> list[str]:
    """Ids from repeated, comma-separated values; `dataset:key` becomes that item's point id."""
    out = []
    for value in values or []:
        for part in (v.strip() for v in value.split(",")):
            if not part:
                continue
            try:
                out.append(str(uuid.UUID(part)))
            except ValueError:
                dataset, sep, key = part.partition(":")
                if not sep or not dataset or not key:
                    raise BadInputError(f"{part!r} is neither a point id nor dataset:key") from None
                out.append(point_id(project, dataset, key))
    return out


def _pick_space(store: VectorStore, project: str, wanted: str | None, text: bool) -> str:
    if wanted:
        return wanted
    spaces = [s.name for s in store.list_spaces(project)]
    candidates = search.text_side_spaces(store, project) if text else spaces
    if len(candidates) == 1:
        return candidates[0]
    raise BadInputError(
        f"Choose a space with --space; project {project!r} has: {', '.join(spaces) or 'none'}"
    )


def _csv(values: list[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for value in values or [] for v in value.split(",") if v.strip()))


def _object_choice(args: argparse.Namespace) -> search.ObjectChoice:
    return search.ObjectChoice(statuses=_csv(args.match), classes=_csv(args.classes),
                               sources=(args.source,) if args.source else (),
                               score=(args.min_score, args.max_score))


def _run_query(store: VectorStore, args: argparse.Namespace, space: str) -> tuple[list[Hit], dict[str, Any]]:
    """The hits and a description of the query (kept with a saved collection). Objects: one search
    per filter of the object choice (a class over both sources), merged by score."""
    flt = parse_filter(args.filter)
    kind = search.POINTS[args.points]
    if kind == OBJECT_KIND:
        if not search.has_objects(store, args.project, space):
            raise BadInputError(f"Space {space!r} of project {args.project!r} holds no detection objects: "
                                "search --points images, or ingest boxes (--coco / --boxes)")
        filters = search.object_filters(_object_choice(args), flt)
        hits, query = _query_once(store, args, space, filters[0], kind)
        more = [_query_once(store, args, space, f, kind)[0] for f in filters[1:]]
        return search.merged([hits, *more], args.limit), {**query, "points": args.points}
    return _query_once(store, args, space, flt, kind)


def _query_once(store: VectorStore, args: argparse.Namespace, space: str, flt: Filter,
                kind: str) -> tuple[list[Hit], dict[str, Any]]:
    common: dict[str, Any] = {"flt": flt, "limit": args.limit, "exact": args.exact, "kind": kind}
    query: dict[str, Any] = {"filter": list(args.filter), "limit": args.limit, "exact": args.exact}
    if args.text is not None:
        query.update(type="text", text=args.text)
        return search.by_text(store, args.project, space, args.text, **common), query
    if args.image is not None:
        try:
            data = args.image.read_bytes()
        except OSError as e:
            raise BadInputError(f"Cannot read the query image {str(args.image)!r}: {e}") from e
        query.update(type="image", image=str(args.image))
        return search.by_image(store, args.project, space, data, **common), query
    if args.like:
        pos, neg = _split_ids(args.like, args.project), _split_ids(args.unlike, args.project)
        query.update(type="examples", positive=pos, negative=neg)
        hits: list[Hit] = list(search.by_examples(store, args.project, space, pos, neg, **common))
        return hits, query
    terms: list[search.Term] = [(1, _term(store, args.project, space, t)) for t in args.plus]
    terms += [(-1, _term(store, args.project, space, t)) for t in args.minus or []]
    query.update(type="arithmetic", terms=[[s, str(v)] for s, v in terms])
    return search.by_arithmetic(store, args.project, space, terms, **common), query


def _term(store: VectorStore, project: str, space: str, value: str) -> str:
    """A point id for `dataset:key` naming a stored item, else the value (a uuid id or a text)."""
    dataset, sep, key = value.partition(":")
    if sep and dataset and key:
        pid = point_id(project, dataset, key)
        if store.existing_ids(project, space, [pid]):
            return pid
    return value


def format_table(frame: pd.DataFrame, columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """A small fixed-width table of hits (long keys shortened) for the terminal."""
    if frame.empty:
        return "no results\n"
    shown = frame[[c for c in columns if c in frame.columns]].copy()
    shown["score"] = shown["score"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    shown = shown.astype(object).where(shown.notna(), "")
    for column in ("label", "prediction", "dataset", "split"):
        if column in shown.columns:
            shown[column] = shown[column].map(shorten)  # a 100 kB label: display only
    if "key" in shown.columns:
        shown["key"] = shown["key"].map(lambda k: k if len(str(k)) <= 40 else "..." + str(k)[-37:])
    return str(shown.to_string(index=False)) + "\n"


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.unlike and not args.like:
        return "--unlike needs --like"
    if args.minus and not args.plus:
        return "--minus needs --plus"
    if args.limit < 1:
        return "--limit must be at least 1"
    if (args.overwrite or args.description) and not args.save_as:
        return "--overwrite and --description go with --save-as"
    object_only = [name for name, value in (("--match", args.match), ("--class", args.classes),
                   ("--source", args.source), ("--min-score", args.min_score), ("--max-score", args.max_score))
                   if value is not None]
    if object_only and args.points != "objects":
        return f"{', '.join(object_only)} go(es) with --points objects"
    return None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope search`; returns the exit code (0 ok, 1 failure, 2 usage error).

    CoreErrors (unknown project, no text side, name taken...) propagate to core.__main__,
    which prints them and exits 1.
    """
    problem = _usage_problem(args)
    if problem:
        return usage_error("search", problem)
    if args.out is not None:
        export.format_for(args.out)  # a bad suffix fails before any search
    with opened_store(settings) as store:
        space = _pick_space(store, args.project, args.space, text=args.text is not None)
        if args.save_as and not args.overwrite and collections.exists(store, args.project, args.save_as):
            raise BadInputError(f"A collection named {args.save_as!r} already exists: add --overwrite to replace it")
        hits, query = _run_query(store, args, space)
        objects = args.points == "objects"
        frame = export.hits_frame(hits, search.OBJECT_COLUMNS if objects else ())
        if args.out is not None:
            export.write(frame, args.out)
            sys.stdout.write(f"{len(hits)} results written to {args.out}\n")
        else:
            sys.stdout.write(format_table(frame, OBJECT_TABLE_COLUMNS if objects else TABLE_COLUMNS))
        if args.save_as:
            coll = collections.save_hits(store, args.project, args.save_as, hits, actor=local_actor(settings),
                                         space=space, query=query,
                                         description=args.description, overwrite=args.overwrite)
            sys.stdout.write(f"saved collection {coll.name!r} ({len(coll)} points)\n")
    return EXIT_OK
