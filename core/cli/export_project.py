"""`embedscope export-project`: write one project to a self-describing Parquet bundle folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_OK, PROGRESS_MODES, opened_store, progress_display
from core.config import Settings


def register(subparsers: Any) -> None:
    """Add the `export-project` command."""
    p = subparsers.add_parser(
        "export-project", help="write one project to a self-describing Parquet bundle folder",
        description="Write every point (ids, payloads, the vectors of each space), persisted map, analysis, "
        "collection, saved view and history entry of a project to a new bundle folder: manifest.json, "
        "points/<space>.parquet, documents.jsonl.gz. `import-project` reads it into any store (embedded or "
        "server). Image files are referenced by path or URL, not copied.",
    )
    p.add_argument("--project", required=True)
    p.add_argument("--out", type=Path, required=True, metavar="PATH", help="the bundle folder to create")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope export-project`."""
    from core.auth import local_actor
    from core.portability import export_project

    with opened_store(settings) as store, progress_display(args.progress, "points") as progress:
        report = export_project(store, args.project, args.out, actor=local_actor(settings), progress=progress)
    total = sum(report.points.values())
    sys.stdout.write(f"exported project {args.project!r} to {report.path}: {total} points in "
                     f"{len(report.points)} spaces, {report.documents} documents, {report.bytes / 1e6:.1f} MB "
                     f"in {report.seconds:.1f} s\n")
    return EXIT_OK
