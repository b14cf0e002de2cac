"""The compare use case: how B differs from A (datasets or splits) in one space, persisted, reused."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import clusters as cl
from core.analysis import drift
from core.analysis.duplicates import DEFAULT_RELATIVE, DEFAULT_THRESHOLD, duplicate_cutoff
from core.analysis.knn import KnnMethod, knn_graph, knn_search
from core.analysis.novelty import Novelty, novelty_from_graphs
from core.auth import Actor, Permission, require
from core.errors import BadInputError
from core.pipeline.analyse import resolve_params
from core.pipeline.analysis_io import (
    Selection,
    doc_to_frame,
    fingerprint,
    frame_to_doc,
    load_payload,
    load_selection,
    resolve_datasets,
)
from core.pipeline.compare_sides import CompareSide, as_side, compare_key, kind_filter, side_problem
from core.pipeline.freshness import REVISION_FIELD, is_stale, stamped
from core.store.base import VectorStore
from core.store.documents import FORMAT, Upgrade, read_document
from core.types import ITEM_KIND, LABEL, PREDICTION, Progress

logger = logging.getLogger(__name__)

DOC_KIND = "compare"
# Format of the compare document (FORMAT field); a bump needs COMPARE_UPGRADES[old] (None: recompute).
COMPARE_FORMAT = 1
COMPARE_UPGRADES: dict[int, Upgrade] = {}
DEFAULT_PARAMS: dict[str, Any] = {
    "k": 10,
    "knn_method": "auto",
    "duplicate_threshold": DEFAULT_THRESHOLD,
    "duplicate_relative": DEFAULT_RELATIVE,
    "min_cluster_size": None,
    "min_samples": 5,
    "alpha": 0.01,  # significance level of a region's over/under-representation
    "permutations": 200,
    "max_per_side": 5000,  # domain classifier subsample per dataset
    "seed": 0,
}
KNN_MEANING = (
    "Share of each item's nearest neighbours (in A and B pooled) that come from its own "
    "dataset, against the share expected if the two were mixed at random; the p-value is the "
    "chance of a share this high under random mixing (permutation test).")
_STEPS = 6
@dataclass
class CompareResult:
    """What run_compare found.

    novelty: B's items indexed by point id, most novel first: payload columns, novelty (~1 =
      as close to A as A's items are to each other, >> 1 = unlike anything in A; see
      core.analysis.novelty), nearest_a
      (id), nearest_similarity, duplicate_of_a (a near-copy of an A item: leakage), region.
    regions: drift.region_table columns + representatives (ids) for clusters of A and B pooled.
    drift: domain_auc + domain_auc_meaning, knn_same_share, knn_expected_share, knn_p_value,
      knn_meaning.
    labels: drift.label_distribution table for label_field ("label", else "prediction" when
      only predictions exist on both sides, None when neither); label_tv: its total variation.
    dataset_a / dataset_b: the sides' dataset names; side_a / side_b: the sides (set by
      run_compare; None reads as the whole dataset); name_a / name_b: their display names.
    stale: the space was written since this result was computed (set by load_compare).
    kind: the points compared: ITEM_KIND, or OBJECT_KIND (the detection objects of both sides: which
      kinds of objects B has that A lacks; novelty / regions then hold object point ids).
    """

    project: str
    space: str
    dataset_a: str
    dataset_b: str
    params: dict[str, Any]
    fingerprint: str
    novelty: pd.DataFrame
    regions: pd.DataFrame
    drift: dict[str, Any]
    labels: pd.DataFrame
    label_field: str | None
    label_tv: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    side_a: CompareSide | None = None
    side_b: CompareSide | None = None
    stale: bool = False
    kind: str = ITEM_KIND

    @property
    def name_a(self) -> str:
        return (self.side_a or CompareSide(self.dataset_a)).name

    @property
    def name_b(self) -> str:
        return (self.side_b or CompareSide(self.dataset_b)).name


def run_compare(
    store: VectorStore, project: str, space: str, dataset_a: str | CompareSide,
    dataset_b: str | CompareSide, *, actor: Actor, params: dict[str, Any] | None = None,
    progress: Progress | None = None, force: bool = False, cache_dir: Path | None = None,
    kind: str = ITEM_KIND,
) -> CompareResult:
    """Compare B (e.g. production, may be unlabeled) against A (e.g. train) in one space:
    per-item novelty of B, over/under-represented regions, an overall drift figure, label
    shift. A side is a dataset name, a CompareSide, or its text form ("all-data:test": only
    the items of all-data whose split is "test"). Reuses the persisted result when data and
    params are unchanged; force recomputes. BadInputError for overlapping sides. cache_dir: as in
    run_analysis (vector blocks kept between runs). kind: OBJECT_KIND compares the detection objects
    of the two sides instead of their items (persisted under its own key). PermissionDeniedError
    unless actor may ANALYSE (viewers read persisted comparisons: load_compare)."""
    require(actor, Permission.ANALYSE, f"comparing {dataset_a} with {dataset_b} in project {project!r}")
    side_a, side_b = as_side(dataset_a), as_side(dataset_b)
    flt_a, flt_b = kind_filter(side_a, kind), kind_filter(side_b, kind)
    problem = side_problem(side_a, side_b)
    if problem is not None:
        raise BadInputError(problem)
    started = time.perf_counter()
    resolve_datasets(store, project, [side_a.dataset, side_b.dataset])
    full = resolve_params(params, DEFAULT_PARAMS)
    revision = store.revision(project, space)  # before reading: a write meanwhile makes it stale
    a = load_selection(store, project, space, [side_a.dataset], min_points=int(full["k"]) + 2,
                       flt=flt_a, cache_dir=cache_dir)
    b = load_selection(store, project, space, [side_b.dataset], min_points=2,
                       flt=flt_b, cache_dir=cache_dir)
    _tick(progress, 1)
    fp = _fingerprint(full if kind == ITEM_KIND else {**full, "kind": kind}, side_a, side_b, a, b)
    key = compare_key(space, side_a, side_b, kind)
    doc = None if force else read_document(store, project, DOC_KIND, key, COMPARE_FORMAT, COMPARE_UPGRADES)
    sides = (side_a, side_b)
    if doc is not None and doc.get("fingerprint") == fp:
        logger.info("comparison reused: %s/%s %s vs %s", project, space, side_a, side_b)
        if doc.get(REVISION_FIELD) != revision:  # same data, newer revision: current again
            store.put_document(project, DOC_KIND, key, stamped(doc, revision))
        _tick(progress, _STEPS)
        return _from_doc(doc, project, space, sides, full, fp, b, kind=kind)
    result = _compute(a, b, full, progress)
    result["summary"]["seconds"] = round(time.perf_counter() - started, 3)
    store.put_document(project, DOC_KIND, key, stamped(_to_doc(result, full, fp, space, sides, kind), revision))
    _tick(progress, _STEPS)
    logger.info("comparison computed: %s/%s %s vs %s in %.1f s", project, space, side_a,
                side_b, result["summary"]["seconds"])
    return _from_doc(_to_doc(result, full, fp, space, sides, kind), project, space, sides, full, fp, b,
                     reused=False, kind=kind)


def load_compare(store: VectorStore, project: str, space: str, dataset_a: str | CompareSide,
                 dataset_b: str | CompareSide, kind: str = ITEM_KIND) -> CompareResult | None:
    """The last persisted comparison of B against A (of `kind` points), without recomputing it (no
    vectors are read); `.stale` says whether the space was written since. None when never computed."""
    side_a, side_b = as_side(dataset_a), as_side(dataset_b)
    key = compare_key(space, side_a, side_b, kind)
    doc = read_document(store, project, DOC_KIND, key, COMPARE_FORMAT, COMPARE_UPGRADES)
    if doc is None:
        return None
    payload = load_payload(store, project, space, [side_b.dataset], flt=kind_filter(side_b, kind))
    b = Selection(ids=list(payload.index), vectors=np.empty((0, 0), np.float32), payload=payload)
    result = _from_doc(doc, project, space, (side_a, side_b), doc["params"], doc["fingerprint"], b, kind=kind)
    result.stale = is_stale(doc, store, project, space)
    return result


def _fingerprint(params: dict[str, Any], side_a: CompareSide, side_b: CompareSide,
                 a: Selection, b: Selection) -> str:
    # Dataset-level comparisons keep the fingerprint they had before splits existed (so results
    # persisted then are reused); split sides add their names, so no two comparisons share one.
    if side_a.split is None and side_b.split is None:
        return fingerprint(params, a, b)
    return fingerprint({**params, "sides": [side_a.name, side_b.name]}, a, b)


def _tick(progress: Progress | None, step: int) -> None:
    if progress is not None:
        progress(step, _STEPS)


def _compute(a: Selection, b: Selection, p: dict[str, Any],
             progress: Progress | None) -> dict[str, Any]:
    k, seed = int(p["k"]), int(p["seed"])
    idx, sims, nov = _joint_graph(a.vectors, b.vectors, k, p["knn_method"], seed)
    _tick(progress, 2)
    joint = StackedRows(a.vectors, b.vectors)
    is_b = np.r_[np.zeros(len(a.ids), bool), np.ones(len(b.ids), bool)]
    regions = cl.cluster_labels(idx, sims, joint, min_cluster_size=p["min_cluster_size"],
                                min_samples=int(p["min_samples"]), seed=seed)
    table = drift.region_table(regions, is_b, alpha=float(p["alpha"]))
    joint_ids = np.array(a.ids + b.ids, dtype=object)
    table["representatives"] = [
        [str(v) for v in joint_ids[cl.representatives(joint, _shown_members(regions, is_b, r, status), 5)]]
        for r, status in zip(table["region"], table["status"], strict=True)]
    _tick(progress, 3)
    auc = drift.domain_classifier_auc(a.vectors, b.vectors, max_per_side=int(p["max_per_side"]),
                                      seed=seed)
    test = drift.knn_two_sample(idx, is_b, permutations=int(p["permutations"]), seed=seed)
    _tick(progress, 4)
    field_name = _label_field(a, b)
    labels, tv = (drift.label_distribution(a.column(field_name), b.column(field_name))
                  if field_name else (pd.DataFrame(), float("nan")))
    _tick(progress, 5)
    novelty = pd.DataFrame({
        "novelty": nov.scores, "nearest_a": [a.ids[i] for i in nov.nearest],
        "nearest_similarity": nov.nearest_sim,
        "duplicate_of_a": nov.nearest_sim >= duplicate_cutoff(
            nov.a_nn_sims, float(p["duplicate_threshold"]), float(p["duplicate_relative"])),
        "region": regions[len(a.ids):],
    }, index=pd.Index(b.ids, name="id"))
    novelty = novelty.sort_values("novelty", ascending=False, kind="stable")
    drift_doc = {"domain_auc": auc, "domain_auc_meaning": drift.DOMAIN_AUC_MEANING,
                 "knn_same_share": test.statistic, "knn_expected_share": test.expected,
                 "knn_p_value": test.p_value, "knn_meaning": KNN_MEANING}
    summary = {"n_a": len(a.ids), "n_b": len(b.ids), "regions": int(len(table)),
               "regions_only_in_b": int((table["status"] == "only in B").sum()),
               "duplicates_of_a": int(novelty["duplicate_of_a"].sum())}
    return {"novelty": novelty, "regions": table, "drift": drift_doc, "labels": labels,
            "label_field": field_name, "label_tv": None if np.isnan(tv) else tv,
            "summary": summary}


class StackedRows:
    """A and B seen as one (n_a + n_b, d) set of rows without stacking them (a joint copy is
    2 GB at 1M x 512): rows by integer index, as the clustering reads them (clusters.Rows)."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        self._a, self._b = a, b
        self.shape = (a.shape[0] + b.shape[0], a.shape[1])

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        in_a = rows < self._a.shape[0]
        out = np.empty((rows.size, self.shape[1]), dtype=np.result_type(self._a, self._b))
        out[in_a] = self._a[rows[in_a]]
        out[~in_a] = self._b[rows[~in_a] - self._a.shape[0]]
        return out


def _shown_members(regions: np.ndarray, is_b: np.ndarray, region: int, status: str) -> np.ndarray:
    """The members a region is shown by: those of its over-represented side (a region with excess
    production items shows production items, not the few train items among them), else all."""
    inside = regions == region
    if status in ("only in B", "more B"):
        inside &= is_b
    elif status in ("only in A", "less B"):
        inside &= ~is_b
    return np.flatnonzero(inside)


def _joint_graph(a: np.ndarray, b: np.ndarray, k: int, method: KnnMethod, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, Novelty]:
    """The kNN graph of A and B pooled (B's rows after A's) and B's novelty, from four searches
    on the two sets as they are (no joint copy): A in A, B in A (which novelty also needs), A in
    B, B in B, each row's k best of its two lists kept."""
    aa_idx, aa_sims = knn_graph(a, k, method=method, seed=seed)
    ba_idx, ba_sims = knn_search(b, a, k, method=method, seed=seed)
    nov = novelty_from_graphs(aa_sims, ba_idx, ba_sims)
    n_a, n_b = a.shape[0], b.shape[0]
    ab_idx, ab_sims = knn_search(a, b, min(k, n_b), method=method, seed=seed)
    bb_idx, bb_sims = knn_graph(b, min(k, n_b - 1), method=method, seed=seed)
    a_rows = _best_of(aa_idx, aa_sims, ab_idx + n_a, ab_sims, k)
    b_rows = _best_of(ba_idx, ba_sims, bb_idx + n_a, bb_sims, k)
    return np.vstack([a_rows[0], b_rows[0]]), np.vstack([a_rows[1], b_rows[1]]), nov


def _best_of(idx1: np.ndarray, sims1: np.ndarray, idx2: np.ndarray, sims2: np.ndarray,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k most similar of two neighbour lists, nearest first (ties: the first list)."""
    idx, sims = np.hstack([idx1, idx2]), np.hstack([sims1, sims2])
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(sims, order, axis=1)


def _label_field(a: Selection, b: Selection) -> str | None:
    for name in (LABEL, PREDICTION):
        if any(v is not None for v in a.column(name)) and any(v is not None for v in b.column(name)):
            return name
    return None


def _to_doc(r: dict[str, Any], params: dict[str, Any], fp: str, space: str,
            sides: tuple[CompareSide, CompareSide], kind: str = ITEM_KIND) -> dict[str, Any]:
    # space and datasets: what the result refers to (deleting either deletes it, core.pipeline.delete).
    return {FORMAT: COMPARE_FORMAT, "space": space, "datasets": sorted({s.dataset for s in sides}),
            "sides": [s.name for s in sides], "kind": kind,
            "fingerprint": fp, "params": params, "summary": r["summary"], "drift": r["drift"],
            "label_field": r["label_field"], "label_tv": r["label_tv"],
            "novelty": frame_to_doc(r["novelty"]), "regions": frame_to_doc(r["regions"]),
            "labels": frame_to_doc(r["labels"])}


def _from_doc(doc: dict[str, Any], project: str, space: str,
              sides: tuple[CompareSide, CompareSide], params: dict[str, Any], fp: str,
              b: Selection, reused: bool = True, kind: str = ITEM_KIND) -> CompareResult:
    computed = doc_to_frame(doc["novelty"]).astype(
        {"novelty": "float32", "nearest_similarity": "float32", "duplicate_of_a": "bool",
         "region": "int64"})
    joined = b.payload.join(computed, how="inner")
    # Novelty order; items deleted since the comparison (a stale result) are left out.
    novelty = joined.loc[computed.index[computed.index.isin(joined.index)]]
    return CompareResult(
        project, space, sides[0].dataset, sides[1].dataset, params, fp, novelty=novelty,
        regions=doc_to_frame(doc["regions"]), drift=doc["drift"],
        labels=doc_to_frame(doc["labels"]), label_field=doc["label_field"],
        label_tv=doc["label_tv"], summary=doc["summary"], reused=reused, side_a=sides[0],
        side_b=sides[1], kind=kind)
