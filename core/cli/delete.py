"""`embedscope delete`: remove a dataset, an embedding space or a whole project (after confirmation)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.auth import Permission, local_actor, require
from core.cli.common import EXIT_FAILURE, EXIT_OK, confirm, opened_store, usage_error
from core.config import Settings
from core.errors import NotFoundError
from core.pipeline import delete
from core.store.base import VectorStore


def register(subparsers: Any) -> None:
    """Add the `delete` command."""
    p = subparsers.add_parser(
        "delete", help="delete a dataset, a space or a project",
        description="Delete a dataset (its points in every space), one embedding space (its "
        "vectors; other spaces stay) or a whole project, with the saved maps, analyses and "
        "comparisons made from it and its entries in collections. Asks for confirmation on stdin "
        "unless --yes; with no answer on stdin it refuses (exit 2).",
    )
    p.add_argument("--project", required=True)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", help="delete this dataset's points in every space")
    what.add_argument("--space", help="drop this embedding space (other spaces stay)")
    what.add_argument("--whole-project", action="store_true", help="delete the project and everything in it")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=run)


def _describe(store: VectorStore, args: argparse.Namespace) -> str:
    """What will be deleted, in words; NotFoundError when it does not exist."""
    projects = store.list_projects()
    if args.project not in projects:
        raise NotFoundError(f"no project {args.project!r} (projects: {', '.join(projects) or 'none'})")
    datasets = {d.name: d for d in store.list_datasets(args.project)}
    if args.dataset is not None:
        if args.dataset not in datasets:
            raise NotFoundError(f"no dataset {args.dataset!r} in project {args.project!r} "
                                f"(datasets: {', '.join(sorted(datasets)) or 'none'})")
        counts = datasets[args.dataset].counts
        return (f"dataset {args.dataset!r} of project {args.project!r} "
                f"({sum(counts.values())} points in {len(counts)} space(s))")
    if args.space is not None:
        space = store.get_space(args.project, args.space)
        points = sum(d.counts.get(space.name, 0) for d in datasets.values())
        return f"space {space.name!r} of project {args.project!r} ({points} points)"
    return f"project {args.project!r} ({len(datasets)} dataset(s), all spaces and saved results)"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope delete`; 0 deleted, 1 declined or not found, 2 no one to ask."""
    actor = local_actor(settings)  # EMBEDSCOPE_ACTOR_NAME / EMBEDSCOPE_ACTOR_ROLE
    with opened_store(settings) as store:
        target = _describe(store, args)
        require(actor, Permission.DELETE, f"deleting {target}")  # refused before asking, and again in core
        if not args.yes:
            answer = confirm(f"Delete {target}?")
            if answer is None:
                return usage_error("delete", "no confirmation on stdin; pass --yes to delete without asking")
            if not answer:
                sys.stderr.write("not deleted\n")
                return EXIT_FAILURE
        if args.dataset is not None:
            report = delete.delete_dataset(store, args.project, args.dataset, actor=actor)
            sys.stdout.write(f"deleted {target}: {report.points} points removed ({report.summary()})\n")
        elif args.space is not None:
            report = delete.delete_space(store, args.project, args.space, actor=actor)
            sys.stdout.write(f"deleted {target} ({report.summary()})\n")
        else:
            delete.delete_project(store, args.project, actor=actor)
            sys.stdout.write(f"deleted {target}\n")
    return EXIT_OK
