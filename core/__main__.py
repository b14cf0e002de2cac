"""The `embedscope` / `python -m core` entry point: parse, build settings, configure logging, run."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from core.cli.common import EXIT_FAILURE, EXIT_USAGE, add_store_options, error, settings_from_args
from core.errors import CoreError
from core.logging_setup import configure_logging

# Command modules in core/cli/, in help order. Each exposes register(subparsers).
COMMANDS: tuple[str, ...] = ("ingest", "list", "delete", "search", "collections", "export",
                             "import_labels", "tag", "label", "history", "undo", "analyse", "compare",
                             "evaluate", "models", "demo", "migrate", "export_project",
                             "import_project", "backup", "restore")


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global store options, then one sub-command per module of COMMANDS."""
    parser = argparse.ArgumentParser(
        prog="embedscope",
        description="Understand and fix datasets through embeddings: ingest, list, delete, search, "
        "analyse, compare (`embedscope models` lists the models that work offline). Settings come "
        "from EMBEDSCOPE_* variables (and .env).",
        epilog="Exit codes: 0 success, 1 failure, 2 usage error, 3 partial success (some items rejected).",
    )
    add_store_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        # A missing or broken command module is a bug: the import error surfaces, never a skip.
        importlib.import_module(f"core.cli.{name}").register(commands)
    for sub in commands.choices.values():
        add_store_options(sub, suppress=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (0 ok, 1 failure, 2 usage, 3 partial)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): return instead of exiting
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        settings = settings_from_args(args)
        configure_logging(args.log_level or settings.log_level)
    except CoreError as e:  # load_settings names each bad setting, without its value
        return error(str(e))
    except ValueError as e:  # a bad --log-level
        return error(f"invalid settings: {e}")
    try:
        return int(args.func(args, settings))
    except CoreError as e:
        return error(str(e))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: what was stored so far is kept; run the command again to resume\n")
        return 130
    except BrokenPipeError:  # `embedscope list | head`
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
