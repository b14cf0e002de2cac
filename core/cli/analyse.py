"""`embedscope analyse`: outliers, likely mislabels, error clusters and duplicates from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core import export
from core.auth import local_actor
from core.cli.analyse_objects import run_objects
from core.cli.common import EXIT_OK, PROGRESS_MODES, opened_store, progress_display, table_lines, usage_error
from core.config import Settings
from core.curation.corrected import corrected_ids
from core.pipeline.analyse import AnalysisResult, run_analysis
from core.pipeline.analysis_io import export_scores
from core.pipeline.vector_cache import cache_folder

SCORES = ("mislabel", "outlier")
EXTRA_COLUMNS = ("outlier", "likely_outlier", "mislabel", "likely_mislabel", "suggested_label", "cluster",
                 "is_error", "duplicate_group", "leakage")


def register(subparsers: Any) -> None:
    """Add the `analyse` command to the CLI's subparsers."""
    p = subparsers.add_parser(
        "analyse", help="find outliers, likely mislabels, error clusters and near-duplicates",
        description="Score every item of a project's datasets in one embedding space. Results "
                    "are kept in the store and reused until the data or parameters change.",
    )
    p.add_argument("--project", required=True)
    p.add_argument("--space", required=True, help="embedding space to analyse")
    p.add_argument("--datasets", help="comma-separated datasets (default: all of the project)")
    p.add_argument("--force", action="store_true", help="recompute even if nothing changed")
    p.add_argument("--out", type=Path, help="write every item's scores to a .csv or .jsonl file")
    p.add_argument("--rank-by", choices=SCORES, help="the `score` column of --out and the order "
                   "(default: mislabel when there are labels, else outlier)")
    p.add_argument("--top", type=int, default=10, help="rows per table printed (default 10)")
    p.add_argument("--objects", action="store_true", help="analyse the detection objects instead: the "
                   "per-class matching table, likely mislabeled boxes, likely missing labels, background "
                   "predictions, failure clusters (--out writes every ranked object)")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                   help="progress display on stderr (default: a bar on a terminal)")
    p.set_defaults(func=run, _parser=p)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope analyse`; returns the exit code (0 ok, 2 usage error). CoreErrors
    (unknown project, too few points, a bad --out suffix...) propagate to core.__main__ (exit 1)."""
    if args.top < 0:
        return usage_error("analyse", "--top must be >= 0")
    datasets = [d.strip() for d in (args.datasets or "").split(",") if d.strip()] or None
    if args.objects:
        return run_objects(args, settings, datasets)
    if args.out is not None:
        export.format_for(args.out)  # fail on a bad suffix before computing
    with opened_store(settings) as store:
        with progress_display(args.progress, "analyse") as progress:
            result = run_analysis(store, args.project, args.space, datasets, actor=local_actor(settings),
                                  progress=progress, force=args.force, cache_dir=cache_folder(settings))
        corrected = corrected_ids(store, args.project, args.space)
    sys.stdout.write(report(result, args.top, corrected))
    if args.out is not None:
        score = args.rank_by or _default_score(result)
        frame = export_scores(result.scores, score)
        frame = frame.join(result.scores[list(EXTRA_COLUMNS)], on="id")
        export.write(frame, args.out)
        sys.stdout.write(f"{len(frame)} rows written to {args.out} (score = {score})\n")
    return EXIT_OK


def _default_score(result: AnalysisResult) -> str:
    return "mislabel" if result.scores["mislabel"].notna().any() else "outlier"


def report(result: AnalysisResult, top: int, corrected: set[str] | frozenset[str] = frozenset()) -> str:
    """The terminal summary: counts, then the top outliers, likely mislabels, error clusters.
    corrected: ids of items a person relabeled or reviewed (core.curation.corrected.corrected_ids),
    left out of the mislabel table."""
    s = result.summary
    how = "reused" if result.reused else f"computed in {s.get('seconds', 0):.1f} s"
    lines = [
        f"{result.project}/{result.space} [{', '.join(result.datasets)}]: {s['items']} items, "
        f"{s['labelled']} labelled, {s['clusters']} clusters, {s['duplicate_groups']} duplicate "
        f"groups ({s['leakage_items']} items leak across datasets/splits) - {how}",
    ]
    if s.get("error_rate") is not None:
        lines.append(f"model error rate: {s['error_rate']:.1%} of {s['with_prediction']} items")
    precision = s.get("mislabel_precision")
    lines.append(f"{s.get('likely_outliers', 0)} likely outliers, {s.get('likely_mislabels', 0)} likely mislabels"
                 + ("" if precision is None else f" (estimated precision {precision:.0%})")
                 + " past the cut-offs from the data; the tables below rank every item")
    cols = ["dataset", "key", "label", "prediction"]
    lines += table_lines("Top outliers", result.scores.nlargest(top, "outlier"), cols + ["outlier"])
    if result.scores["mislabel"].notna().any():
        open_items = result.scores[~result.scores.index.isin(list(corrected))]
        done = len(result.scores) - len(open_items)
        lines += table_lines("Likely mislabels" + (f" ({done} corrected or reviewed item(s) left out)" if done else ""),
                             open_items.nlargest(top, "mislabel"), cols + ["suggested_label", "mislabel"])
    if len(result.error_clusters):
        lines += table_lines("Error clusters", result.error_clusters.head(top),
                             ["cluster", "size", "errors", "error_rate", "lift", "p_value", "description"],
                             formats={"p_value": ".2g"})
    return "\n".join(lines) + "\n"
