"""`embedscope label set|accept-suggestions`: relabel one item, or accept the analysis' suggested labels."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.auth import Actor, local_actor
from core.cli.common import EXIT_OK, add_store_options, opened_store, table_lines, usage_error
from core.config import Settings
from core.curation import labels
from core.curation.points import points_of_keys
from core.errors import NotFoundError
from core.store.base import VectorStore

PREVIEW_ROWS = 50  # rows of the preview table printed (the count covers all)


def register(subparsers: Any) -> None:
    """Add the `label` command (set / accept-suggestions)."""
    p = subparsers.add_parser(
        "label", help="set an item's label, or accept the suggested labels of the mislabel finder",
        description="Change labels in the store (every space of the project). Each call is one entry of "
        "the history; the first change of an item keeps its original label in `original_label`.")
    actions = p.add_subparsers(dest="action", required=True)
    one = actions.add_parser("set", help="set the label of one item")
    one.add_argument("--project", required=True)
    one.add_argument("--dataset", required=True)
    one.add_argument("--key", required=True, help="the item key (as listed by search / analyse)")
    one.add_argument("label", nargs="?", help="the new label (omit with --clear)")
    one.add_argument("--clear", action="store_true", help="remove the label (the item becomes unlabeled)")
    one.add_argument("--note", default="", help="a note kept in the history entry")
    bulk = actions.add_parser("accept-suggestions", help="accept the analysis' suggested labels (preview first)")
    bulk.add_argument("--project", required=True)
    bulk.add_argument("--space", required=True, help="the space whose analysis suggests the labels")
    bulk.add_argument("--datasets", help="comma-separated datasets of the analysis (default: all)")
    bulk.add_argument("--min-score", type=float, help="every labelled item with a mislabel score >= this "
                      "(default: the analysis' likely mislabels, past its own cut-off)")
    bulk.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    bulk.add_argument("--note", default="", help="a note kept in the history entry")
    for sub in (one, bulk):
        add_store_options(sub, suppress=True)
        sub.set_defaults(func=run)


def _check_project(store: VectorStore, project: str) -> None:
    projects = store.list_projects()
    if project not in projects:
        raise NotFoundError(f"no project {project!r} (projects: {', '.join(projects) or 'none'})")


def _set(store: VectorStore, args: argparse.Namespace, actor: Actor) -> str:
    point = points_of_keys(store, args.project, [(args.dataset, args.key)])[0]
    new = None if args.clear else args.label
    entry = labels.set_labels(store, args.project, [point], [new], actor=actor, why="manual", note=args.note)
    if entry is None:
        return f"{args.dataset}/{args.key}: label unchanged ({new!r})\n"
    row = entry.rows[0]
    return f"{row.dataset}/{row.key}: {row.old!r} -> {row.new!r} (history entry {entry.entry})\n"


def _accept(store: VectorStore, args: argparse.Namespace, actor: Actor) -> str:
    datasets = [d.strip() for d in (args.datasets or "").split(",") if d.strip()] or None
    changes = labels.suggestions(store, args.project, args.space, min_score=args.min_score, datasets=datasets)
    if not changes:
        return "no suggested labels to accept (none past the cut-off, or all corrected already)\n"
    frame = labels.changes_frame(changes)
    shown = table_lines(f"{len(changes)} suggested label change(s)", frame.head(PREVIEW_ROWS),
                        ["dataset", "key", "old", "new", "score"])
    more = [f"... and {len(changes) - PREVIEW_ROWS} more"] if len(changes) > PREVIEW_ROWS else []
    text = "\n".join(shown[1:] + more) + "\n"
    if args.dry_run:
        return text + "dry run: nothing changed\n"
    entry = labels.set_labels(store, args.project, [c.point for c in changes], [c.new for c in changes],
                              actor=actor, why="finding", note=args.note or f"accepted suggestions of {args.space}")
    count = len(entry.rows) if entry is not None else 0
    where = f" (history entry {entry.entry}; `embedscope undo --project {args.project}` reverts it)" if entry else ""
    return text + f"relabeled {count} item(s){where}\n"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope label ...`; 0 done, 2 usage error; CoreErrors go to core.__main__ (1)."""
    if args.action == "set" and (args.label is None) == (not args.clear):
        return usage_error("label set", "give a LABEL or --clear (not both)")
    with opened_store(settings) as store:
        _check_project(store, args.project)
        actor = local_actor(settings)  # EMBEDSCOPE_ACTOR_NAME / EMBEDSCOPE_ACTOR_ROLE
        sys.stdout.write(_set(store, args, actor) if args.action == "set" else _accept(store, args, actor))
    return EXIT_OK
