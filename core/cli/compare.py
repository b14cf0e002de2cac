"""`embedscope compare`: how dataset (or split) B differs from A: drift figures, regions, most novel items."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core import export
from core.auth import local_actor
from core.cli.common import EXIT_OK, PROGRESS_MODES, opened_store, progress_display, table_lines, usage_error
from core.config import Settings
from core.pipeline.analysis_io import export_scores
from core.pipeline.compare import CompareResult, run_compare
from core.pipeline.compare_sides import CompareSide
from core.pipeline.vector_cache import cache_folder
from core.types import ITEM_KIND, OBJECT_KIND

NOVELTY_COLUMNS = ["dataset", "key", "label", "prediction", "novelty", "nearest_similarity",
                   "duplicate_of_a", "region"]
REGION_COLUMNS = ["region", "size", "n_a", "n_b", "expected_b", "ratio_b", "p_value", "status"]
LABEL_COLUMNS = ["label", "count_a", "share_a", "count_b", "share_b", "difference"]


def register(subparsers: Any) -> None:
    """Add the `compare` command."""
    p = subparsers.add_parser(
        "compare", help="how dataset B differs from dataset A (drift, regions, novel items)",
        description="Compare B (e.g. production) against A (e.g. train) in one embedding space, as "
        "the Compare page does: the drift figures (domain classifier AUC, kNN mixing test, label "
        "shift), the regions where B is over- or under-represented, and B's most novel items. A "
        "side is a dataset, or one split of it as DATASET:SPLIT (items whose split is SPLIT). The "
        "result is kept in the store and reused until the data changes.",
    )
    p.add_argument("a", metavar="A", help="the reference: a dataset, or DATASET:SPLIT")
    p.add_argument("b", metavar="B", help="the dataset (or DATASET:SPLIT) compared against A")
    p.add_argument("--project", required=True)
    p.add_argument("--space", required=True, help="embedding space to compare in")
    p.add_argument("--top", type=int, default=10, help="novel items and regions printed (default 10)")
    p.add_argument("--out", type=Path, help="write the novelty of every B item to a .csv or .jsonl file")
    p.add_argument("--objects", action="store_true",
                   help="compare the detection objects (boxes) of A and B instead of their images: which kinds "
                        "of objects B has that A lacks (a comparison kept apart from the image one)")
    p.add_argument("--force", action="store_true", help="recompute even if nothing changed")
    p.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                   help="progress display on stderr (default: a bar on a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Execute `embedscope compare`; returns the exit code (0 ok, 2 usage error). CoreErrors
    (unknown dataset, overlapping sides, too few points, a bad --out suffix) propagate to
    core.__main__ (exit 1)."""
    if args.top < 0:
        return usage_error("compare", "--top must be >= 0")
    side_a, side_b = CompareSide.parse(args.a), CompareSide.parse(args.b)
    if args.out is not None:
        export.format_for(args.out)  # a bad suffix fails before computing
    with opened_store(settings) as store:
        with progress_display(args.progress, "compare") as progress:
            result = run_compare(store, args.project, args.space, side_a, side_b, actor=local_actor(settings),
                                 progress=progress,
                                 force=args.force, cache_dir=cache_folder(settings),
                                 kind=OBJECT_KIND if args.objects else ITEM_KIND)
    sys.stdout.write(report(result, args.top))
    if args.out is not None:
        frame = export_scores(result.novelty, "novelty")
        extra = [c for c in ("nearest_a", "nearest_similarity", "duplicate_of_a", "region")
                 if c in result.novelty.columns]
        frame = frame.join(result.novelty[extra], on="id")
        export.write(frame, args.out)
        sys.stdout.write(f"{len(frame)} rows written to {args.out} (score = novelty)\n")
    return EXIT_OK


def report(result: CompareResult, top: int) -> str:
    """The terminal summary: drift figures in words, label shift, regions, most novel B items (or
    detection objects, for a comparison of objects)."""
    s, a, b = result.summary, result.name_a, result.name_b
    how = "reused" if result.reused else f"computed in {s.get('seconds', 0):.1f} s"
    points = "objects" if result.kind == OBJECT_KIND else "items"
    lines = [f"{result.project}/{result.space}: {b} ({s['n_b']} {points}) compared with {a} "
             f"({s['n_a']} {points}) - {how}", ""]
    lines += drift_lines(result)
    if result.label_field is not None and result.label_tv is not None:
        lines.append(f"Label shift ({result.label_field}): total variation {float(result.label_tv):.2f} "
                     f"(the share of {a}'s class mix that would have to change to match {b}'s; 0 = "
                     "the same mix, 1 = no class in common)")
        lines += table_lines("Class shares", result.labels.sort_values(
            "difference", key=abs, ascending=False).head(top), LABEL_COLUMNS)
    else:
        lines.append("Label shift: no labels (or predictions) on both sides")
    lines += [""] + region_lines(result, top)
    lines += table_lines(f"Most novel {points} of {b} (novelty 1 = as close to {a} as {a}'s {points} are "
                         "to each other)", result.novelty.head(top), NOVELTY_COLUMNS)
    return "\n".join(lines) + "\n"


def drift_lines(result: CompareResult) -> list[str]:
    """The domain classifier AUC and the kNN mixing test, each with its meaning."""
    d = result.drift
    p = float(d["knn_p_value"])
    mixed = ": the two are not mixed" if p < 0.01 else ""
    return [
        f"Drift: domain classifier AUC {float(d['domain_auc']):.3f}",
        f"  {d.get('domain_auc_meaning', '')}",
        f"kNN test: {float(d['knn_same_share']):.1%} of each item's nearest neighbours come from its "
        f"own dataset, against {float(d['knn_expected_share']):.1%} if mixed at random "
        f"(p = {p:.3g}{mixed})",
        f"  {d.get('knn_meaning', '')}",
    ]


def region_lines(result: CompareResult, top: int) -> list[str]:
    """The count of regions by status, then the regions that are not balanced."""
    regions = result.regions
    if regions.empty:
        return ["Regions: none found (the joint set has no clusters)"]
    counts = regions["status"].value_counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    notable = regions[regions["status"] != "balanced"].head(top)
    return [f"Regions: {len(regions)} clusters of {result.name_a} + {result.name_b} ({summary})",
            *table_lines("Regions where the two differ", notable, REGION_COLUMNS,
                         formats={"p_value": ".3g", "expected_b": ".1f", "ratio_b": ".2f"})]
