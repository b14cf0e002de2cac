"""`embedscope tag add|remove`: tag the points of an id list, a saved collection or a filter."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any

from core import collections
from core.auth import local_actor
from core.cli.common import EXIT_OK, add_store_options, opened_store, usage_error
from core.config import Settings
from core.curation import tags
from core.curation.points import named, points_of_keys
from core.errors import BadInputError, NotFoundError
from core.filters import parse_filter
from core.store.base import VectorStore

MAX_ID_FILE_BYTES = 64 * 2**20


def register(subparsers: Any) -> None:
    """Add the `tag` command (add / remove)."""
    p = subparsers.add_parser(
        "tag", help="add or remove tags on points (a list, a collection or a filter)",
        description="Add or remove tags on points; every point of the project keeps them in every space, "
        "and each call is one entry of the history (`embedscope history`, `embedscope undo`).")
    actions = p.add_subparsers(dest="action", required=True)
    for action, words in (("add", "add these tags to"), ("remove", "remove these tags from")):
        a = actions.add_parser(action, help=f"{words} the chosen points")
        a.add_argument("--project", required=True)
        which = a.add_mutually_exclusive_group(required=True)
        which.add_argument("--ids", type=Path, metavar="FILE",
                           help="a text file with one point id (UUID) per line, or one item key per line "
                                "with --dataset; blank lines and lines starting with # are skipped")
        which.add_argument("--collection", metavar="NAME", help="the points of this saved collection")
        which.add_argument("--filter", action="append", metavar="CLAUSE",
                           help="points matching this filter in any space, e.g. label=cat, "
                                "'confidence<=0.3', tags=bad (repeat: all must hold)")
        a.add_argument("--dataset", help="the dataset of the item keys in --ids")
        a.add_argument("--note", default="", help="a note kept in the history entry")
        a.add_argument("tags", nargs="+", metavar="TAG")
        add_store_options(a, suppress=True)  # `embedscope tag add --store X ...` as on other commands
        a.set_defaults(func=run)


def read_id_file(path: Path) -> list[str]:
    """The non-blank, non-comment lines of an id file (BadInputError naming the file when unreadable)."""
    try:
        if path.stat().st_size > MAX_ID_FILE_BYTES:
            raise BadInputError(f"{path} is larger than {MAX_ID_FILE_BYTES // 2**20} MB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"Cannot read the id file {path}: {e}") from e
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def ids_from_file(store: VectorStore, project: str, path: Path, dataset: str | None) -> list[str]:
    """Point ids from an id file: point ids as they are; item keys (with dataset) resolved."""
    lines = read_id_file(path)
    if not lines:
        raise BadInputError(f"The id file {path} lists no ids")
    if dataset is None:
        bad = [line for line in lines if not _is_uuid(line)]
        if bad:
            raise BadInputError(f"{path}: not point ids (UUIDs): {named(bad)}; for item keys pass --dataset")
        return lines
    return points_of_keys(store, project, [(dataset, line) for line in lines])


def chosen_points(store: VectorStore, args: argparse.Namespace) -> list[str]:
    """The point ids the options name (NotFoundError for an unknown project or collection)."""
    projects = store.list_projects()
    if args.project not in projects:
        raise NotFoundError(f"no project {args.project!r} (projects: {', '.join(projects) or 'none'})")
    if args.ids is not None:
        return ids_from_file(store, args.project, args.ids, args.dataset)
    if args.collection is not None:
        return list(collections.get(store, args.project, args.collection, with_items=False).ids)
    flt = parse_filter(args.filter)
    found: dict[str, None] = {}
    for info in store.list_spaces(args.project):
        found.update(dict.fromkeys(store.payloads(args.project, info.name, flt, fields=["key"]).index))
    return list(found)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope tag add|remove`; 0 done (also when nothing changed), 2 usage error."""
    if args.dataset is not None and args.ids is None:
        return usage_error("tag", "--dataset goes with --ids (a file of item keys)")
    with opened_store(settings) as store:
        points = chosen_points(store, args)
        change = tags.add_tags if args.action == "add" else tags.remove_tags
        changed = change(store, args.project, points, args.tags, actor=local_actor(settings),
                         note=args.note) if points else 0
    verb = "tagged" if args.action == "add" else "untagged"
    sys.stdout.write(f"{verb} {changed} of {len(points)} chosen point(s) ({', '.join(args.tags)}); "
                     f"{len(points) - changed} unchanged\n")
    return EXIT_OK
