"""`embedscope undo`: revert the newest change of a project, or a given history entry."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.auth import local_actor
from core.cli.common import EXIT_OK, opened_store
from core.cli.history import entry_lines
from core.config import Settings
from core.curation.undo import undo
from core.errors import NotFoundError


def register(subparsers: Any) -> None:
    """Add the `undo` command."""
    p = subparsers.add_parser(
        "undo", help="revert the newest change of a project, or one history entry",
        description="Write back the values a history entry replaced, recorded as a new entry (so an undo "
        "can be undone). Refused, naming the items, when any of them was changed again since.")
    p.add_argument("--project", required=True)
    p.add_argument("entry", nargs="?", help="the entry id, or a unique start of it (default: the newest "
                   "change not undone yet; see `embedscope history`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope undo`; 0 done; nothing to undo or a conflict is a CoreError (exit 1)."""
    with opened_store(settings) as store:
        projects = store.list_projects()
        if args.project not in projects:
            raise NotFoundError(f"no project {args.project!r} (projects: {', '.join(projects) or 'none'})")
        entry = undo(store, args.project, args.entry, actor=local_actor(settings))
    sys.stdout.write(f"undid {entry.undoes}: {len(entry.rows)} item(s) restored\n")
    sys.stdout.write("\n".join(entry_lines(entry, rows=True)) + "\n")
    return EXIT_OK
