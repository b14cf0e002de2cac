"""Which items a person already decided on, so the analysis' likely mislabels leave them out.

An item counts as corrected when its label was changed through core.curation (its
ORIGINAL_LABEL is set and differs from the current label) or a person marked it reviewed
(REVIEWED true, e.g. "keep label" in the review queue). An undo back to the original label lists
it again. The rule reads payload fields only, so it holds for an analysis computed before or
after the change without re-running it. A human decision also outlives a re-analysis: an item
relabeled by hand is not listed again under its new label (its history says who set it).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.curation.points import current_payloads, missing
from core.filters import Condition, Filter
from core.store.base import VectorStore
from core.types import LABEL, ORIGINAL_LABEL, REVIEWED

FIELDS: tuple[str, ...] = (LABEL, ORIGINAL_LABEL, REVIEWED)  # the payload columns the rule reads


def corrected_mask(payloads: pd.DataFrame) -> pd.Series:
    """(n,) bool aligned with payloads' index: True for corrected items. payloads: a payload frame
    (store.payloads / load_payloads rows) with any of FIELDS; absent columns count as unset."""
    n = len(payloads)
    label = payloads[LABEL] if LABEL in payloads.columns else pd.Series([None] * n, index=payloads.index)
    original = payloads.get(ORIGINAL_LABEL)
    reviewed = payloads.get(REVIEWED)
    relabeled = [False] * n if original is None else [
        not missing(o) and (missing(lab) or str(lab) != str(o)) for o, lab in zip(original, label, strict=True)]
    checked = [False] * n if reviewed is None else [v is True or v == 1 for v in reviewed]
    return pd.Series([a or b for a, b in zip(relabeled, checked, strict=True)], index=payloads.index, dtype=bool)


def drop_corrected(frame: pd.DataFrame, payloads: pd.DataFrame) -> pd.DataFrame:
    """frame (indexed by point id, e.g. the likely mislabels) without its corrected items, judged
    on payloads (indexed by point id; its rows for frame's ids, current: see corrected_payloads)."""
    mask = corrected_mask(payloads)
    corrected = set(mask.index[mask.to_numpy()])
    return frame[[pid not in corrected for pid in frame.index]] if corrected else frame


def corrected_payloads(store: VectorStore, project: str, ids: Sequence[str]) -> pd.DataFrame:
    """The current FIELDS of these points (one read by id; points no longer stored are left out):
    what drop_corrected judges on when the caller has no fresh payload frame at hand."""
    return current_payloads(store, project, list(ids), FIELDS, missing_ok=True)


def drop_corrected_from_store(store: VectorStore, project: str, frame: pd.DataFrame) -> pd.DataFrame:
    """drop_corrected(frame, corrected_payloads(store, project, frame.index)) in one call."""
    if frame.empty:
        return frame
    return drop_corrected(frame, corrected_payloads(store, project, [str(i) for i in frame.index]))


def corrected_ids(store: VectorStore, project: str, space: str) -> set[str]:
    """The ids of the corrected points of a space, read from the curated points only (those with
    an ORIGINAL_LABEL or REVIEWED true: few, found through the payload filter, not a scan of
    every payload). Key a cache on store.revision(project, space): every write changes it."""
    curated = [Filter(must_not=(Condition(ORIGINAL_LABEL, missing=True),)), Filter.where(**{REVIEWED: True})]
    frames = [store.payloads(project, space, flt, fields=list(FIELDS)) for flt in curated]
    frame = pd.concat(frames)
    frame = frame[~frame.index.duplicated()]
    mask = corrected_mask(frame)
    return {str(i) for i in frame.index[mask.to_numpy()]}
