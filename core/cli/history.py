"""`embedscope history`: the project's curation history (newest first), or the changes of one item."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.cli.common import EXIT_OK, opened_store, usage_error
from core.config import Settings
from core.curation.history import HistoryEntry, read_history
from core.display import shorten
from core.errors import NotFoundError

ROWS_SHOWN = 20  # rows printed per entry with --rows (the count covers all)


def register(subparsers: Any) -> None:
    """Add the `history` command."""
    p = subparsers.add_parser(
        "history", help="list the label / tag / review changes of a project, newest first",
        description="Every change made through embedscope (label set, suggestions accepted, tags, "
        "review state, imports, undos) is one entry: who, when, why, and per item the old and new value.")
    p.add_argument("--project", required=True)
    p.add_argument("--dataset", help="only the changes of this dataset's items")
    p.add_argument("--key", help="only the changes of this item (with --dataset)")
    p.add_argument("--limit", type=int, default=50, help="at most this many entries (default 50; 0: all)")
    p.add_argument("--rows", action="store_true", help="print each entry's rows (always with --key)")
    p.add_argument("--json", action="store_true", help="machine-readable output (every row)")
    p.set_defaults(func=run)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(shorten(v) for v in value) + "]"
    return "(none)" if value is None else shorten(value)


def entry_lines(entry: HistoryEntry, rows: bool) -> list[str]:
    """One entry as terminal lines: a header, then (rows=True) up to ROWS_SHOWN rows."""
    state = f"  [undone by {entry.undone_by}]" if entry.undone_by else ""
    what = f"undo of {entry.undoes}" if entry.undoes else (entry.note or "")
    lines = [f"{entry.entry}  {entry.at}  {entry.who}  {entry.why:<7} {entry.field:<8} "
             f"{len(entry.rows)} item(s)  {shorten(what)}{state}".rstrip()]
    if rows:
        lines += [f"    {r.dataset}/{shorten(r.key)}: {_value(r.old)} -> {_value(r.new)}" for r in entry.rows[:ROWS_SHOWN]]
        if len(entry.rows) > ROWS_SHOWN:
            lines.append(f"    ... and {len(entry.rows) - ROWS_SHOWN} more")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope history`; 0 done, 2 usage error."""
    if args.key is not None and args.dataset is None:
        return usage_error("history", "--key needs --dataset")
    if args.limit < 0:
        return usage_error("history", "--limit must be >= 0")
    with opened_store(settings) as store:
        projects = store.list_projects()
        if args.project not in projects:
            raise NotFoundError(f"no project {args.project!r} (projects: {', '.join(projects) or 'none'})")
        entries = read_history(store, args.project, dataset=args.dataset, key=args.key, limit=args.limit or None)
    if args.json:
        sys.stdout.write(json.dumps([{**e.to_doc(), "undone_by": e.undone_by} for e in entries], indent=1) + "\n")
        return EXIT_OK
    if not entries:
        sys.stdout.write("no changes recorded\n")
        return EXIT_OK
    lines = [line for e in entries for line in entry_lines(e, args.rows or args.key is not None)]
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK
