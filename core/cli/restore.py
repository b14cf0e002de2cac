"""`embedscope restore`: import every project of a backup folder, all or nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_OK, PROGRESS_MODES, opened_store, progress_display
from core.config import Settings


def register(subparsers: Any) -> None:
    """Add the `restore` command."""
    p = subparsers.add_parser(
        "restore", help="import every project of a backup (all or nothing)",
        description="Import every project of a backup folder. Projects that exist are refused unless "
        "--replace; projects not in the backup are left alone. A failure part-way removes what was written "
        "and puts replaced projects back. Needs the admin role.",
    )
    p.add_argument("src", type=Path, metavar="SRC", help="a folder written by `embedscope backup`")
    p.add_argument("--replace", action="store_true", help="replace the projects of the backup that exist")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope restore`."""
    from core.auth import local_actor
    from core.portability import restore_store

    with opened_store(settings) as store, progress_display(args.progress, "projects") as progress:
        report = restore_store(store, args.src, actor=local_actor(settings), replace=args.replace,
                               progress=progress)
    sys.stdout.write(f"restored {len(report.projects)} projects ({sum(report.projects.values())} points) from "
                     f"{report.path} in {report.seconds:.1f} s\n")
    return EXIT_OK
