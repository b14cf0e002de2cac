"""Relabeling points: preview, set (one history entry per operation), accept the analysis' suggestions, undo.

The first change of an item's label also writes ORIGINAL_LABEL (the label it had before), once:
later changes and undos leave it, so the original label stays recoverable from the payload as
well as from the history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from core.auth import Actor, Permission, require
from core.curation import history as hist
from core.curation.corrected import corrected_mask
from core.curation.points import canonical_ids, current_payloads, missing, rows_of
from core.curation.rematch import rematch_objects
from core.curation.undo import undo
from core.errors import BadInputError, NotFoundError
from core.pipeline.analyse import load_analysis
from core.store.base import VectorStore
from core.types import DATASET, KEY, LABEL, ORIGINAL_LABEL, REVIEWED

log = logging.getLogger(__name__)

__all__ = ["LabelChange", "preview_labels", "set_labels", "suggestions", "undo"]


@dataclass(frozen=True)
class LabelChange:
    """A label that would change: the point, its (dataset, item key), its current and new label."""

    point: str
    dataset: str
    key: str
    old: str | None
    new: str | None
    score: float | None = None  # the mislabel score behind a suggestion (None for other changes)


def _check_label(label: str | None) -> str | None:
    if label is None:
        return None
    if not isinstance(label, str) or not label.strip():
        raise BadInputError(f"A label must be non-empty text (or None to clear it), got {label!r}")
    return label


def preview_labels(store: VectorStore, project: str, points: Sequence[str],
                   labels: Sequence[str | None]) -> list[LabelChange]:
    """The changes set_labels would make: only the points whose current label differs from the
    new one (reads the current payloads), in the order given; a point listed twice: the last wins.
    NotFoundError names points not in the project; BadInputError an empty label."""
    return _changes(store, project, points, labels)[0]


def _changes(store: VectorStore, project: str, points: Sequence[str],
             labels: Sequence[str | None]) -> tuple[list[LabelChange], pd.DataFrame]:
    """(preview_labels' changes, the current LABEL / ORIGINAL_LABEL frame they were read from)."""
    if len(points) != len(labels):
        raise ValueError(f"preview_labels got {len(points)} points but {len(labels)} labels")
    wanted = {p: _check_label(label) for p, label in zip(canonical_ids(points), labels, strict=True)}
    frame = current_payloads(store, project, list(wanted), [LABEL, ORIGINAL_LABEL])
    changes = []
    for pid, dataset, key, label in rows_of(frame, LABEL):  # column lists: no Series per row
        old = None if missing(label) else str(label)
        new = wanted[pid]
        if old != new:
            changes.append(LabelChange(pid, dataset, key, old, new))
    return changes, frame


def set_labels(store: VectorStore, project: str, points: Sequence[str], labels: Sequence[str | None], *,
               actor: Actor, why: str, note: str = "") -> hist.HistoryEntry | None:
    """Set the labels of points (labels[i] for points[i]; None clears one) in every space of the
    project, and record the operation as one history entry (None when no label changes).
    PermissionDeniedError unless actor may relabel."""
    require(actor, Permission.RELABEL, f"relabeling in project {project!r}")
    if why not in hist.WHYS or why == "undo":
        raise ValueError(f"why must be one of {[w for w in hist.WHYS if w != 'undo']}, got {why!r}")
    changes, frame = _changes(store, project, points, labels)
    if not changes:
        return None
    first = _first_changes(store, project, frame.loc[[c.point for c in changes], ORIGINAL_LABEL])
    values = [{LABEL: c.new, **({ORIGINAL_LABEL: c.old} if c.point in first else {})} for c in changes]
    store.set_payload(project, [c.point for c in changes], values)
    rematch_objects(store, project, [c.point for c in changes])  # a relabeled box: its image's matches change
    rows = [hist.HistoryRow(c.point, c.dataset, c.key, c.old, c.new) for c in changes]
    return hist.append_entry(store, project, field="label", why=why, who=actor.name, rows=rows, note=note)


def _first_changes(store: VectorStore, project: str, originals: pd.Series) -> set[str]:
    """The points (originals: their current ORIGINAL_LABEL by id) whose label was never changed:
    no ORIGINAL_LABEL and no label row in the history (an item that had no label keeps a null
    ORIGINAL_LABEL, so the history decides for those)."""
    candidates = {str(p) for p, v in zip(originals.index, originals.tolist(), strict=True) if missing(v)}
    if not candidates:
        return set()
    changed = {r.point for e in hist.all_entries(store, project) if e.field == "label" for r in e.rows}
    return candidates - changed


def suggestions(store: VectorStore, project: str, space: str, *, min_score: float | None = None,
                points: Sequence[str] | None = None, datasets: Sequence[str] | None = None) -> list[LabelChange]:
    """Label changes the persisted analysis suggests (its suggested label for likely mislabels),
    highest mislabel score first, leaving out items a person already corrected or reviewed
    (core.curation.corrected) and those whose label already is the suggestion.

    min_score: None takes the analysis' likely mislabels (its own cut-off); a number takes every
    labelled item whose mislabel score is at least that. points: only these. datasets: the
    analysed selection (default: all datasets, as `embedscope analyse` runs by default).
    NotFoundError when the space was never analysed.
    """
    result = load_analysis(store, project, space, datasets)
    if result is None:
        raise NotFoundError(f"Space {space!r} of project {project!r} has no analysis yet: run "
                            f"`embedscope analyse --project {project} --space {space}` first")
    scores = result.scores
    chosen = scores["likely_mislabel"] if min_score is None else scores["mislabel"] >= float(min_score)
    chosen &= scores["suggested_label"].notna() & scores[LABEL].notna()
    chosen &= scores["suggested_label"].astype(str) != scores[LABEL].astype(str)
    if points is not None:
        chosen &= scores.index.isin(set(canonical_ids(points)))
    picked = scores[chosen].sort_values("mislabel", ascending=False)
    if picked.empty:
        return []
    current = current_payloads(store, project, list(picked.index), [LABEL, ORIGINAL_LABEL, REVIEWED],
                               missing_ok=True)
    keep = current.index[~corrected_mask(current)]
    picked = picked.loc[[i for i in picked.index if i in set(keep)]]
    return [LabelChange(str(pid), str(row[DATASET]), str(row[KEY]), _label(current.at[pid, LABEL]),
                        str(row["suggested_label"]), float(row["mislabel"])) for pid, row in picked.iterrows()]


def _label(value: object) -> str | None:
    return None if missing(value) else str(value)


def changes_frame(changes: Sequence[LabelChange]) -> pd.DataFrame:
    """Changes as a table (dataset, key, old, new, score, point): the preview the CLI and pages show."""
    return pd.DataFrame([(c.dataset, c.key, c.old, c.new, c.score, c.point) for c in changes],
                        columns=["dataset", "key", "old", "new", "score", "point"])
