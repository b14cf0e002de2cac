"""`embedscope list`: projects, their embedding spaces and datasets with point counts."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.cli.common import EXIT_OK, opened_store
from core.config import Settings
from core.errors import NotFoundError
from core.store.base import VectorStore


def register(subparsers: Any) -> None:
    """Add the `list` command."""
    p = subparsers.add_parser("list", help="list projects, spaces and datasets with counts",
                              description="Show what the store holds: projects, their embedding "
                              "spaces, and their datasets with point counts per space.")
    p.add_argument("--project", help="only this project")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def inventory(store: VectorStore, project: str | None = None) -> dict[str, Any]:
    """{"store": ..., "projects": [{"name", "spaces": [SpaceInfo dicts], "datasets": [{"name",
    "counts": {space: n}}]}]}. NotFoundError for an unknown project."""
    names = store.list_projects()
    if project is not None:
        if project not in names:
            raise NotFoundError(f"no project {project!r} (projects: {', '.join(names) or 'none'})")
        names = [project]
    return {
        "store": store.describe(),
        "projects": [
            {
                "name": name,
                "spaces": [space.to_dict() for space in store.list_spaces(name)],
                "datasets": [{"name": d.name, "counts": dict(d.counts)} for d in store.list_datasets(name)],
            }
            for name in names
        ],
    }


def format_inventory(data: dict[str, Any]) -> str:
    """The inventory as indented text."""
    lines = [f"store: {data['store']}"]
    if not data["projects"]:
        lines.append("no projects (ingest one with `embedscope ingest`)")
    for project in data["projects"]:
        lines.append(f"project {project['name']}")
        lines.append("  spaces:" if project["spaces"] else "  spaces: none")
        for space in project["spaces"]:
            source = space["model"] or "own vectors"
            extra = ", text search" if space["text_side"] else ""
            layer = f" layer {space['layer']}" if space["layer"] else ""
            lines.append(f"    {space['name']}: {space['dim']}-d {space['modality']} ({source}{layer}{extra})")
        lines.append("  datasets:" if project["datasets"] else "  datasets: none")
        for dataset in project["datasets"]:
            counts = ", ".join(f"{space} {n}" for space, n in sorted(dataset["counts"].items()))
            lines.append(f"    {dataset['name']}: {counts or 'no points'}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope list`; returns 0 (CoreError propagates to the entry point)."""
    with opened_store(settings) as store:
        data = inventory(store, args.project)
    sys.stdout.write(json.dumps(data, indent=2) + "\n" if args.json else format_inventory(data))
    return EXIT_OK
