"""`embedscope analyse --objects`: the per-class matching table and the detection-object findings."""

from __future__ import annotations

import argparse
import sys

from core import export
from core.analysis.box_matching import with_total
from core.auth import local_actor
from core.cli.common import EXIT_OK, opened_store, progress_display, table_lines
from core.config import Settings
from core.curation.corrected import corrected_ids
from core.pipeline.analyse_objects import ObjectAnalysis, findings_frame, run_object_analysis
from core.pipeline.vector_cache import cache_folder
from core.types import KEY

TABLE_COLUMNS = ["class", "labels", "predictions", "tp", "misclassified", "misclassified_predictions",
                 "poor_localisation", "missed", "spurious", "duplicate", "precision", "recall"]


def run_objects(args: argparse.Namespace, settings: Settings, datasets: list[str] | None) -> int:
    """Execute `embedscope analyse --objects` (args as core.cli.analyse parsed them); returns 0.
    CoreErrors (no objects in the space, a bad --out suffix...) propagate to core.__main__ (exit 1)."""
    if args.out is not None:
        export.format_for(args.out)  # fail on a bad suffix before computing
    with opened_store(settings) as store:
        with progress_display(args.progress, "analyse objects") as progress:
            result = run_object_analysis(store, args.project, args.space, datasets, actor=local_actor(settings),
                                         progress=progress,
                                         force=args.force, cache_dir=cache_folder(settings))
        corrected = corrected_ids(store, args.project, args.space)
    sys.stdout.write(report(result, args.top, corrected))
    if args.out is not None:
        frame = findings_frame(result)
        export.write(frame, args.out)
        sys.stdout.write(f"{len(frame)} rows written to {args.out}\n")
    return EXIT_OK


def report(result: ObjectAnalysis, top: int, corrected: set[str] | frozenset[str] = frozenset()) -> str:
    """The terminal summary: counts, the per-class matching table with a total row, then the top rows of
    each finder (likely mislabeled boxes, likely missing labels, background predictions, failure clusters,
    near-duplicate boxes and leakage).
    corrected: ids of boxes a person relabeled or reviewed (core.curation.corrected.corrected_ids), left out
    of the mislabeled boxes."""
    s = result.summary
    how = "reused" if result.reused else f"computed in {s.get('seconds', 0):.1f} s"
    lines = [f"{result.project}/{result.space} [{', '.join(result.datasets)}]: {s['objects']} objects "
             f"({s['labels']} label boxes, {s['predictions']} predicted boxes) - {how}"]
    lines += table_lines("Matching per class (precision = tp / predictions, recall = tp / labels)",
                         with_total(result.table), TABLE_COLUMNS)
    lines.append("")
    lines.append(f"{s['likely_mislabels']} likely mislabeled boxes, {s['likely_missing']} likely missing labels, "
                 f"{s['likely_background']} background-like predictions, {s['failure_clusters']} failure cluster(s); "
                 "the tables below rank every candidate")
    where = ["dataset", "key"]
    open_boxes = result.mislabels[~result.mislabels.index.isin(list(corrected))]
    done = len(result.mislabels) - len(open_boxes)
    lines += table_lines("Likely mislabeled boxes" + (f" ({done} corrected or reviewed box(es) left out)" if done else ""),
                         open_boxes.head(top),
                         where + ["label", "suggested_label", "match", "mislabel"])
    lines += table_lines("Likely missing labels (spurious predictions that look like labelled objects)",
                         result.missing.head(top), where + ["prediction", "confidence", "agreement", "missing"])
    lines += table_lines("Spurious predictions that look like background", result.background.head(top),
                         where + ["prediction", "confidence", "spurious_share", "background"])
    lines += table_lines("Failure clusters (objects the detector fails on more often than average)",
                         result.clusters.head(top),
                         ["cluster", "size", "failures", "failure_rate", "lift", "p_value", "description"],
                         formats={"p_value": ".2g"})
    lines += _duplicate_lines(result, top)
    return "\n".join(lines) + "\n"


def _duplicate_lines(result: ObjectAnalysis, top: int) -> list[str]:
    """Near-duplicate boxes (one object boxed twice, one crop repeated) and the groups leaking across
    datasets or splits, biggest groups first; each group named by its first keys."""
    s, groups = result.summary, result.duplicates
    title = (f"Near-duplicate boxes: {s.get('duplicate_groups', len(groups))} group(s), "
             f"{s.get('leakage_objects', 0)} box(es) leaking across datasets/splits")
    if not len(groups):
        return ["", title]
    keys = result.objects[KEY].astype(str).to_dict()
    shown = groups.head(top).assign(
        datasets=[", ".join(d) for d in groups["datasets"].head(top)],
        keys=[", ".join(keys.get(i, "?") for i in ids[:3]) + (" ..." if len(ids) > 3 else "")
              for ids in groups["ids"].head(top)])
    return table_lines(title, shown, ["group", "size", "source", "datasets", "leakage", "keys"])
