"""`embedscope collections`: list, show, export, rename and delete saved collections."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core import collections, export
from core.auth import Actor, local_actor
from core.cli.common import EXIT_OK, opened_store
from core.cli.search import format_table
from core.config import Settings
from core.store.base import VectorStore


def register(subparsers: Any) -> None:
    """Add the `collections` command (with list / show / export / rename / delete actions)."""
    p = subparsers.add_parser("collections", help="list, show, export, rename or delete saved collections")
    p.add_argument("--project", required=True)
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the project's collections")
    show = actions.add_parser("show", help="a collection's points with their current labels")
    show.add_argument("name")
    exp = actions.add_parser("export", help="write a collection as .csv or .jsonl")
    exp.add_argument("name")
    exp.add_argument("--out", type=Path, required=True)
    ren = actions.add_parser("rename", help="give a collection a new name")
    ren.add_argument("name")
    ren.add_argument("new_name")
    ren.add_argument("--overwrite", action="store_true", help="replace a collection of the new name")
    rm = actions.add_parser("delete", help="delete a collection (its points stay)")
    rm.add_argument("name")
    p.set_defaults(func=run)


def _act(store: VectorStore, args: argparse.Namespace, actor: Actor) -> str:
    """Do the action; return what to print."""
    if args.action == "list":
        rows = [
            f"{c.name}\t{len(c)} points\t{c.space}\t{c.created}\t{c.description}"
            for c in collections.list_collections(store, args.project)
        ]
        return "\n".join(rows) + "\n" if rows else f"no collections in project {args.project!r}\n"
    if args.action == "show":
        coll = collections.get(store, args.project, args.name)
        assert coll.items is not None
        head = f"{coll.name}: {len(coll)} points of space {coll.space}, saved {coll.created}\n"
        gone = f"{len(coll.missing)} point(s) no longer in the store\n" if coll.missing else ""
        return head + gone + format_table(export.export_frame(coll.items))
    if args.action == "export":
        frame = collections.export_frame(store, args.project, args.name)
        export.write(frame, args.out)
        return f"{len(frame)} rows written to {args.out}\n"
    if args.action == "rename":
        coll = collections.rename(store, args.project, args.name, args.new_name, actor=actor,
                                  overwrite=args.overwrite)
        return f"renamed {args.name!r} to {coll.name!r}\n"
    collections.delete(store, args.project, args.name, actor=actor)
    return f"deleted collection {args.name!r}\n"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope collections ...`; returns the exit code (0 ok; CoreErrors propagate
    to core.__main__, which prints them and exits 1)."""
    if args.action == "export":
        export.format_for(args.out)
    with opened_store(settings) as store:
        sys.stdout.write(_act(store, args, local_actor(settings)))
    return EXIT_OK
