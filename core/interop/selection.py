"""What an export holds: the items of a collection, a tag or a finding list, with their current payloads."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from core import collections
from core.errors import BadInputError, NotFoundError
from core.filters import Condition, Filter, items_only
from core.store.base import VectorStore
from core.types import DATASET, LABEL, TAGS

log = logging.getLogger(__name__)

FINDINGS: tuple[str, ...] = ("mislabels", "outliers", "error-cluster")


def pick_space(store: VectorStore, project: str, space: str | None) -> str:
    """space when given (checked), else the project's only space; BadInputError when it has several."""
    if space is not None:
        return store.get_space(project, space).name  # NotFoundError for an unknown one
    names = [s.name for s in store.list_spaces(project)]
    if len(names) == 1:
        return names[0]
    if not names:
        raise NotFoundError(f"Project {project!r} has no embedding space")
    raise BadInputError(f"Project {project!r} has several spaces ({', '.join(names)}): name one with --space")


def current_items(store: VectorStore, project: str, space: str, ids: Sequence[str],
                  scores: Sequence[float | None] | None = None) -> pd.DataFrame:
    """The current payloads of ids (in that order; ids no longer stored are left out), indexed by
    id, with a "score" column (NaN where there is none). Current, not as analysed: a label
    corrected since the analysis is exported as it is now."""
    frame = store.payloads(project, space, flt=Filter.ids(list(ids))) if ids else pd.DataFrame()
    order = [i for i in dict.fromkeys(ids) if i in frame.index]
    out = frame.reindex(order)
    out.index.name = "id"
    by_id = dict(zip(ids, scores, strict=True)) if scores is not None else {}
    out.insert(0, "score", pd.Series([by_id.get(i) for i in order], index=order, dtype="float64"))
    return out


def from_collection(store: VectorStore, project: str, name: str) -> tuple[str, pd.DataFrame]:
    """(space, items) of a saved collection, in its saved order, points no longer stored left out."""
    coll = collections.get(store, project, name)
    assert coll.items is not None
    return coll.space, coll.items.drop(index=[i for i in coll.missing if i in coll.items.index])


def from_tag(store: VectorStore, project: str, space: str, tag: str) -> pd.DataFrame:
    """The items carrying `tag` (payload field TAGS), ordered by dataset and key."""
    flt = items_only(Filter(must=(Condition(TAGS, equals=tag),)))
    frame = store.payloads(project, space, flt=flt)
    if frame.empty:
        raise NotFoundError(f"No item of space {space!r} in project {project!r} is tagged {tag!r}")
    frame = frame.sort_values([c for c in (DATASET, "key") if c in frame.columns], kind="stable")
    return current_items(store, project, space, list(frame.index))


def from_finding(store: VectorStore, project: str, space: str, finding: str, *,
                 datasets: Sequence[str] | None = None, cluster: int | None = None,
                 cache_dir: Path | None = None) -> pd.DataFrame:
    """The items of a finding of the persisted analysis, worst first, with the finding's score:
    "mislabels" (likely mislabels by mislabel score), "outliers" (likely outliers by outlier
    score) or "error-cluster" (the members of cluster `cluster`, errors first)."""
    from core.pipeline.analyse import load_analysis  # lazily: it loads sklearn / scipy, which export of a tag needs not

    if finding not in FINDINGS:
        raise ValueError(f"finding must be one of {FINDINGS}, got {finding!r}")
    result = load_analysis(store, project, space, datasets, cache_dir=cache_dir)
    if result is None:
        raise NotFoundError(f"Space {space!r} of project {project!r} has no persisted analysis for these "
                            f"datasets: run `embedscope analyse --project {project} --space {space}` first")
    scores = result.scores
    if finding == "error-cluster":
        if cluster is None:
            raise BadInputError("--finding error-cluster needs --cluster N (the error cluster's id)")
        members = scores[scores["cluster"] == cluster]
        if members.empty:
            raise NotFoundError(f"The analysis of space {space!r} has no cluster {cluster}")
        errors = members["is_error"].fillna(False).astype(bool)
        members = members.assign(_err=errors).sort_values("_err", ascending=False, kind="stable")
        return current_items(store, project, space, list(members.index), [None] * len(members))
    flag, score = ("likely_mislabel", "mislabel") if finding == "mislabels" else ("likely_outlier", "outlier")
    found = scores[scores[flag].fillna(False).astype(bool)].sort_values(score, ascending=False, kind="stable")
    if result.stale:
        log.warning("The analysis of %s/%s is older than the data: labels are exported as they are now",
                    project, space)
    items = current_items(store, project, space, list(found.index), found[score].tolist())
    if finding == "mislabels":  # what the finder proposes, for the annotator to see beside the image
        items["suggested_label"] = found["suggested_label"].reindex(items.index)
    return items


def project_classes(store: VectorStore, project: str, space: str, items: pd.DataFrame) -> list[str]:
    """Every label of the project's items in the space (so an annotator can choose any class, also
    one only another dataset has: the demo's 9s live in production alone), plus the exported items'
    labels, predictions and suggested labels; sorted."""
    labels = store.payloads(project, space, flt=items_only(), fields=[LABEL])
    found = {str(v) for v in labels.get(LABEL, pd.Series(dtype=object)).dropna()}
    for column in (LABEL, "prediction", "suggested_label"):
        if column in items.columns:
            found |= {str(v) for v in items[column].dropna()}
    return sorted(v for v in found if v.strip())
