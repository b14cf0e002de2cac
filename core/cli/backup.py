"""`embedscope backup`: every project of the store as a new folder of project bundles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_OK, PROGRESS_MODES, opened_store, progress_display
from core.config import Settings


def register(subparsers: Any) -> None:
    """Add the `backup` command."""
    p = subparsers.add_parser(
        "backup", help="copy every project of the store to a new folder (the dashboard keeps running)",
        description="Write every project as a project bundle (see export-project) into a new folder with "
        "backup.json. Works on the embedded store and on a Qdrant server alike, while the dashboard runs: "
        "the store is read page by page and each project is exported again if it was written meanwhile. "
        "Needs the admin role.",
    )
    p.add_argument("dest", type=Path, metavar="DEST", help="the backup folder to create")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope backup`."""
    from core.auth import local_actor
    from core.portability import backup_store

    with opened_store(settings) as store, progress_display(args.progress, "projects") as progress:
        report = backup_store(store, args.dest, actor=local_actor(settings), progress=progress)
    sys.stdout.write(f"backed up {len(report.projects)} projects ({sum(report.projects.values())} points) to "
                     f"{report.path} in {report.seconds:.1f} s\n")
    return EXIT_OK
