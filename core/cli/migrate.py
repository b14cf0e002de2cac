"""`embedscope migrate`: upgrade a store written by an older embedscope to the current layout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.auth import local_actor
from core.cli.common import EXIT_OK
from core.config import Settings


def register(subparsers: Any) -> None:
    """Add the `migrate` command."""
    p = subparsers.add_parser(
        "migrate", help="upgrade the store to this version's storage layout",
        description="Upgrade, in place, a store written by an older embedscope: every point, map "
        "and collection is kept. Prints each change; running it again changes nothing. A store "
        "written by a newer embedscope is refused.",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope migrate`; 0 when the store is (or would be) at the current layout."""
    from core.store import open_store
    from core.store.migrate import migrate

    store = open_store(settings, check_schema=False)  # the one caller allowed to open any layout
    try:
        report = migrate(store, actor=local_actor(settings), dry_run=args.dry_run)
    finally:
        store.close()
    for line in report.changes:
        sys.stdout.write(f"{'would change' if args.dry_run else 'changed'}: {line}\n")
    sys.stdout.write(report.summary() + "\n")
    return EXIT_OK
