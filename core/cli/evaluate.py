"""`embedscope evaluate`: which embedding space is best — the representation scorecard of a project's spaces."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from core import export
from core.auth import local_actor
from core.cli.common import EXIT_OK, PROGRESS_MODES, opened_store, progress_display, table_lines, usage_error
from core.config import Settings
from core.display import shorten
from core.pipeline.evaluate import DEFAULT_SAMPLE, MAX_SAMPLE, Scorecard, evaluate_spaces
from core.pipeline.payload_cache import cache_folder as payload_folder
from core.pipeline.vector_cache import cache_folder

FORMATS = ("table", "csv", "json")
# Columns of the printed table (the csv and json carry every column).
SHOWN = ("evaluated", "labelled", "classes", "knn_accuracy", "probe_accuracy", "balanced_recall",
         "precision_at_k", "ari", "nmi", "clusters", "trustworthiness", "note")
SHORT = {"knn_accuracy": "knn_acc", "probe_accuracy": "probe_acc", "balanced_recall": "bal_recall",
         "precision_at_k": "p@k", "trustworthiness": "trust"}


def register(subparsers: Any) -> None:
    """Add the `evaluate` command to the CLI's subparsers."""
    p = subparsers.add_parser(
        "evaluate", help="which embedding space is best: a scorecard of every space of a project",
        description="Score every embedding space of a project on the same labelled items: kNN accuracy "
                    "(leave-one-out), linear-probe accuracy (cross-validated), per-class recall, retrieval "
                    "precision@k, cluster/label agreement (ARI, NMI) and the trustworthiness of the space's "
                    "persisted map. Rows are kept in the store and reused until a space changes.",
    )
    p.add_argument("--project", required=True)
    p.add_argument("--space", action="append", metavar="SPACE",
                   help="a space to score (repeat, or comma-separate; default: every space of the project)")
    p.add_argument("--datasets", help="comma-separated datasets (default: all of the project)")
    p.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                   help=f"at most this many items per space, a seeded sample (default {DEFAULT_SAMPLE:,}, "
                        f"at most {MAX_SAMPLE:,})")
    p.add_argument("--k", type=int, default=10, help="neighbours for kNN accuracy and precision@k (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, the probe's folds and the clusters")
    p.add_argument("--format", choices=FORMATS, default="table", help="output on stdout (default: table)")
    p.add_argument("--force", action="store_true", help="recompute even if nothing changed")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                   help="progress display on stderr (default: a bar on a terminal)")
    p.set_defaults(func=run, _parser=p)


def _names(values: list[str] | None) -> list[str] | None:
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return names or None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope evaluate`; returns 0, or 2 for a bad --sample / --k. CoreErrors (unknown
    project, space or dataset) propagate to core.__main__ (exit 1)."""
    if not 10 <= args.sample <= MAX_SAMPLE:
        return usage_error("evaluate", f"--sample must be between 10 and {MAX_SAMPLE}")
    if not 1 <= args.k <= 100:
        return usage_error("evaluate", "--k must be between 1 and 100")
    with opened_store(settings) as store:
        with progress_display(args.progress, "evaluate (spaces)") as progress:
            card = evaluate_spaces(store, args.project, _names(args.space), _names([args.datasets or ""]),
                                   actor=local_actor(settings), sample=args.sample, k=args.k, seed=args.seed,
                                   force=args.force,
                                   cache_dir=cache_folder(settings), payload_cache=payload_folder(settings),
                                   progress=progress)
    sys.stdout.write({"table": report, "csv": as_csv, "json": as_json}[args.format](card))
    return EXIT_OK


def report(card: Scorecard) -> str:
    """The terminal scorecard: what it was computed on, one row per space, the per-class recall,
    and which space is best."""
    table = card.table.reset_index().rename(columns=SHORT)
    lines = [f"Scorecard of project {card.project} ({len(card.table)} spaces)", card.sample_line()]
    lines += table_lines("Spaces", table, ["space", *(SHORT.get(c, c) for c in SHOWN)])
    if not card.recall.empty:
        recall = card.recall.reset_index(names="space")
        recall.columns = [shorten(str(c), 20) for c in recall.columns]  # class names are user text
        lines += table_lines("Per-class recall of the linear probe", recall, list(recall.columns))
    no_map = [str(s) for s in card.table.index[card.table["trustworthiness"].isna()]]
    if no_map:
        lines += ["", f"trust is blank for spaces without a persisted map yet ({', '.join(no_map)}): open them "
                      "in Explore, or run `embedscope demo --maps` for the demo"]
    lines += ["", card.best_line()]
    return "\n".join(lines) + "\n"


def as_csv(card: Scorecard) -> str:
    """One row per space, every column (recall per class as recall:<class>)."""
    frame = card.table
    if not card.recall.empty:
        frame = frame.join(card.recall.add_prefix("recall:"))
    return export.to_csv(frame.reset_index()).decode("utf-8")


def as_json(card: Scorecard) -> str:
    """{"project", "datasets", "params", "best", "best_by", "spaces": [row, ...]} (NaN as null)."""
    spaces = []
    for space, row in card.table.iterrows():
        record = {"space": space, **{k: _plain(v) for k, v in row.items()}}
        if space in card.recall.index:
            record["recall"] = {str(c): _plain(v) for c, v in card.recall.loc[space].items()}
        spaces.append(record)
    doc = {"project": card.project, "datasets": card.datasets, "params": card.params,
           "best": card.best, "best_by": card.best_by, "spaces": spaces}
    return json.dumps(doc, indent=2) + "\n"


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value
