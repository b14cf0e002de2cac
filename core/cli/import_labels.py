"""`embedscope import-labels`: corrected labels from a Label Studio export, a COCO file or a CSV, previewed, then applied."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_OK, opened_store, table_lines
from core.config import Settings
from core.errors import BadInputError
from core.interop.label_import import FORMATS, ImportPreview, apply_import, preview_import, read_labels

SHOWN = 50  # rows of each list printed


def register(subparsers: Any) -> None:
    """Add the `import-labels` command."""
    p = subparsers.add_parser(
        "import-labels", help="import corrected labels from Label Studio, COCO or CSV (preview, then apply)",
        description="Match each task / image / row to an item by its point id (embedscope_id) or by dataset "
        "and key, print what changes (changed, unchanged, unknown), then set the new labels; each import is "
        "one entry of the project's history (`embedscope history`, `embedscope undo`).",
    )
    p.add_argument("file", type=Path, help="a Label Studio JSON / JSON-MIN export, a COCO .json or a .csv")
    p.add_argument("--project", required=True)
    p.add_argument("--dataset", help="the dataset of rows that name a key but no dataset")
    p.add_argument("--format", choices=FORMATS, default="auto", help="default: from the file")
    p.add_argument("--dry-run", action="store_true", help="print the preview, change nothing")
    p.set_defaults(func=run)


def report(preview: ImportPreview) -> str:
    """The preview as text: the summary, then the changed, unknown and unchanged items."""
    frame = preview.frame()
    lines = [preview.summary()]
    for status, title in (("changed", "changed"), ("unknown", "unknown (no such item)"), ("unchanged", "unchanged")):
        part = frame[frame["status"] == status]
        more = f" (first {SHOWN} of {len(part)})" if len(part) > SHOWN else ""
        lines += table_lines(title + more, part.head(SHOWN), ["dataset", "key", "old", "new", "where"])
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope import-labels`; CoreErrors (a bad file, naming the task / row / field)
    propagate to core.__main__ (exit 1)."""
    from core.auth import local_actor

    try:
        data = args.file.read_bytes()
    except OSError as e:
        raise BadInputError(f"Cannot read {str(args.file)!r}: {e.strerror or e}") from e
    labels = read_labels(data, str(args.file), args.format)
    with opened_store(settings) as store:
        preview = preview_import(store, args.project, labels, dataset=args.dataset, source=args.file.name)
        sys.stdout.write(report(preview))
        if args.dry_run:
            sys.stdout.write("dry run: nothing changed\n")
            return EXIT_OK
        entry = apply_import(store, args.project, preview, actor=local_actor(settings))
    if entry is None:
        sys.stdout.write("nothing to change\n")
    else:
        sys.stdout.write(f"set {len(entry.rows)} label(s): history entry {entry.entry} "
                         f"(undo: embedscope undo --project {args.project} {entry.entry})\n")
    return EXIT_OK
