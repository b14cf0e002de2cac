"""`embedscope import-project`: read a project bundle into this store, all or nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_OK, PROGRESS_MODES, opened_store, progress_display
from core.config import Settings


def register(subparsers: Any) -> None:
    """Add the `import-project` command."""
    p = subparsers.add_parser(
        "import-project", help="read a project bundle into this store (all or nothing)",
        description="Import a bundle written by `export-project`: same point ids, vectors, payloads and "
        "documents. The bundle is verified whole first (a damaged one writes nothing); a failure part-way "
        "removes what was written and puts a replaced project back. Needs the admin role.",
    )
    p.add_argument("bundle", type=Path, metavar="PATH", help="the bundle folder")
    p.add_argument("--project", metavar="NEW", help="import under this name (default: the bundle's); "
                      "points get the ids this name gives, maps and analyses are computed again")
    p.add_argument("--replace", action="store_true", help="replace a project of that name (else refused)")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope import-project`."""
    from core.auth import local_actor
    from core.portability import import_project

    with opened_store(settings) as store, progress_display(args.progress, "points") as progress:
        report = import_project(store, args.bundle, actor=local_actor(settings), project=args.project,
                                replace=args.replace, progress=progress)
    left_out = f" ({report.skipped_documents} maps / analyses left out: computed again on first use)" \
        if report.skipped_documents else ""
    sys.stdout.write(f"{'replaced' if report.replaced else 'imported'} project {report.project!r}: "
                     f"{sum(report.points.values())} points, {report.documents} documents{left_out} "
                     f"in {report.seconds:.1f} s\n")
    return EXIT_OK
