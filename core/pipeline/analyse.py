"""The analyse use case: problem scores for a project's datasets in one space, persisted and reused."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from core.analysis import clusters as cl
from core.analysis import duplicates as dup
from core.analysis import mislabels as ml
from core.analysis.knn import KnnMethod, knn_graph
from core.analysis.outliers import likely_outliers, outlier_scores
from core.auth import Actor, Permission, require
from core.filters import Filter, items_only
from core.pipeline.analysis_io import (
    Selection,
    doc_key,
    doc_to_frame,
    fingerprint,
    frame_to_doc,
    load_payload,
    load_selection,
    resolve_datasets,
)
from core.pipeline.freshness import REVISION_FIELD, is_stale, labels_changed, stamped
from core.store.base import SERVER_KNN, VectorStore, has_capability
from core.store.documents import FORMAT, Upgrade, read_document
from core.types import CONFIDENCE, DATASET, LABEL, PREDICTION, SPLIT, Progress

logger = logging.getLogger(__name__)

DOC_KIND = "analysis"
# Format of the analysis document (FORMAT field); a bump needs ANALYSIS_UPGRADES[old] (None: recompute).
# 2: computed gains likely_outlier / likely_mislabel, summary the likely_* counts and precisions.
# A format-1 document is recomputed: the mislabel cut-off needs the label probabilities, never stored.
ANALYSIS_FORMAT = 2
ANALYSIS_UPGRADES: dict[int, Upgrade] = {1: lambda doc: None}
DEFAULT_PARAMS: dict[str, Any] = {
    "k": 10,  # neighbours in the shared kNN graph
    "knn_method": "auto",  # "auto" | "exact" | "ivf" | "server" (the store's neighbours())
    "outlier_method": "blend",  # "blend" | "knn" | "lof"
    "duplicate_threshold": dup.DEFAULT_THRESHOLD,  # cosine similarity
    "duplicate_relative": dup.DEFAULT_RELATIVE,  # x median nearest-neighbour distance
    "min_cluster_size": None,  # None = ~sqrt(n)/2
    "min_samples": 5,
    "probe_folds": 5,
    "representatives": 5,
    "seed": 0,
}
_STEPS = 7
# "auto" asks a store with SERVER_KNN (a Qdrant server/cluster) for the kNN graph above this many
# items: the server's HNSW answers batched queries where its memory and cores are.
SERVER_KNN_MIN_POINTS = 200_000


@dataclass
class AnalysisResult:
    """What run_analysis found.

    scores: DataFrame indexed by point id (sorted) with dataset, key, uri, label, prediction,
      confidence, split, outlier (higher = more unusual), likely_outlier (past the data's own
      cut-off, outliers.likely_outliers), mislabel (1 - p(given label), NaN when unlabeled),
      likely_mislabel (mislabels.likely_mislabels; False when unlabeled), suggested_label,
      cluster (-1 = noise), is_error (prediction != label; <NA>
      when either is missing), duplicate_group (-1 = none), leakage (its duplicate group spans
      datasets or splits).
    clusters: one row per cluster (cluster_table columns; representatives as point ids).
    duplicates: one row per duplicate group: group, size, ids, datasets, leakage.
    error_clusters: clusters with significantly more errors, highest lift first (cluster_errors.error_clusters columns).
    summary: counts and rates (items, labelled, with_prediction, error_rate, clusters,
      duplicate_groups, leakage_items, likely_outliers, outlier_precision, likely_mislabels,
      mislabel_precision (the precisions: estimates, None when unknown), seconds).
    stale: the space was written since this result was computed (load_analysis sets it; see
      core.pipeline.freshness): show it as out of date, recompute on request.
    """

    project: str
    space: str
    datasets: list[str]
    params: dict[str, Any]
    fingerprint: str
    scores: pd.DataFrame
    clusters: pd.DataFrame
    duplicates: pd.DataFrame
    error_clusters: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    stale: bool = False
    labels_changed: bool = False  # stale by payload writes only (labels, tags): usable as it is


def resolve_params(params: dict[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """defaults overridden by params; ValueError naming the allowed keys for an unknown one."""
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        raise ValueError(f"unknown analysis parameter(s) {unknown}; allowed: {sorted(defaults)}")
    return {**defaults, **(params or {})}


def run_analysis(
    store: VectorStore, project: str, space: str, datasets: Sequence[str] | None = None, *,
    actor: Actor, params: dict[str, Any] | None = None, progress: Progress | None = None, force: bool = False,
    cache_dir: Path | None = None,
) -> AnalysisResult:
    """Outliers, likely mislabels, clusters, error clusters and near-duplicates of the items of
    `datasets` (default: all) in one space, reusing the persisted result when neither the data
    (ids, vectors, labels, predictions) nor the params changed; force=True recomputes.
    progress(done, total) is called after each step. cache_dir: where the vectors are kept between
    runs (vector_cache.cache_folder(settings)); None reads them from the store.
    PermissionDeniedError unless actor may ANALYSE (viewers read persisted results: load_analysis)."""
    require(actor, Permission.ANALYSE, f"analysing space {space!r} of project {project!r}")
    started = time.perf_counter()
    names = resolve_datasets(store, project, datasets)
    full = resolve_params(params, DEFAULT_PARAMS)
    revision = store.revision(project, space)  # before reading: a write meanwhile makes it stale
    sel = load_selection(store, project, space, names, min_points=int(full["k"]) + 2, cache_dir=cache_dir)
    _tick(progress, 1)
    fp = fingerprint(full, sel)
    key = doc_key(space, *names)
    doc = None if force else read_document(store, project, DOC_KIND, key, ANALYSIS_FORMAT, ANALYSIS_UPGRADES)
    if doc is not None and doc.get("fingerprint") == fp:
        logger.info("analysis reused: %s/%s (%d items, fingerprint %s)", project, space,
                    len(sel.ids), fp[:12])
        if doc.get(REVISION_FIELD) != revision:  # same data, newer revision: current again
            store.put_document(project, DOC_KIND, key, stamped(doc, revision))
        _tick(progress, _STEPS)
        return _from_doc(doc, sel.payload, project, space, names, full, fp)
    graph = _server_graph(store, project, space, names, sel, full)
    result = compute_analysis(sel, full, progress, graph=graph)
    result.summary["seconds"] = round(time.perf_counter() - started, 3)
    doc = stamped(_to_doc(result, full, fp, space, names), revision)
    store.put_document(project, DOC_KIND, key, doc)
    _tick(progress, _STEPS)
    logger.info("analysis computed: %s/%s (%d items) in %.1f s", project, space, len(sel.ids),
                result.summary["seconds"])
    # Built from the stored document, so a fresh result and a reused one are identical.
    return _from_doc(doc, sel.payload, project, space, names, full, fp, reused=False)


def load_analysis(store: VectorStore, project: str, space: str,
                  datasets: Sequence[str] | None = None, *, cache_dir: Path | None = None) -> AnalysisResult | None:
    """The last persisted analysis of this selection, without recomputing it (fast: no vectors
    are read); `.stale` says whether the space was written since. None when never computed.
    cache_dir: where the payloads it joins are kept per space revision (core.pipeline.payload_cache:
    at 1M points a Parquet read instead of a scroll through the store)."""
    names = resolve_datasets(store, project, datasets)
    doc = read_document(store, project, DOC_KIND, doc_key(space, *names), ANALYSIS_FORMAT, ANALYSIS_UPGRADES)
    if doc is None:
        return None
    payload = load_payload(store, project, space, names, cache_dir=cache_dir)
    result = _from_doc(doc, payload, project, space, names, doc["params"], doc["fingerprint"])
    result.stale = is_stale(doc, store, project, space)
    result.labels_changed = labels_changed(doc, store, project, space)
    return result


def _server_graph(store: VectorStore, project: str, space: str, names: list[str], sel: Selection,
                  p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """The kNN graph from the store's own batched search (row indices into sel), or None to
    compute it in process: knn_method "server", or "auto" on a SERVER_KNN store above
    SERVER_KNN_MIN_POINTS items."""
    n = len(sel.ids)
    wanted = p["knn_method"] == "server" or (
        p["knn_method"] == "auto" and n > SERVER_KNN_MIN_POINTS and has_capability(store, SERVER_KNN))
    if not wanted:
        return None
    k = min(int(p["k"]), n - 1)
    started = time.perf_counter()
    ids, sims = store.neighbours(project, space, sel.ids, k, flt=items_only(Filter.datasets(names)))
    idx = pd.Index(sel.ids).get_indexer(ids.ravel()).reshape(ids.shape)
    if (idx < 0).any() or np.isnan(sims).any():
        raise ValueError("the store's neighbours are not all in the selection (written meanwhile?)")
    logger.info("kNN graph from the store: %d items, k=%d, %.1f s", n, k, time.perf_counter() - started)
    return idx.astype(np.int64), sims.astype(np.float32)


def _tick(progress: Progress | None, step: int) -> None:
    if progress is not None:
        progress(step, _STEPS)


@dataclass
class ComputedAnalysis:
    """compute_analysis's output: the score columns only (indexed by id), the tables, summary
    (with per-step "timings" in seconds)."""

    computed: pd.DataFrame
    clusters: pd.DataFrame
    duplicates: pd.DataFrame
    error_clusters: pd.DataFrame
    summary: dict[str, Any]


def compute_analysis(sel: Selection, p: dict[str, Any], progress: Progress | None = None, *,
                     graph: tuple[np.ndarray, np.ndarray] | None = None) -> ComputedAnalysis:
    """Every analysis score for an in-memory selection (no store access); p: full params.
    graph: the (indices, similarities) kNN graph when already known (the store's, see
    run_analysis), else it is computed here."""
    x, n = sel.vectors, len(sel.ids)
    clock = _Clock()
    if graph is None:
        method = cast(KnnMethod, "auto" if p["knn_method"] == "server" else p["knn_method"])
        graph = knn_graph(x, min(int(p["k"]), n - 1), method=method, seed=int(p["seed"]))
    idx, sims = graph
    clock.lap("knn", progress, 2)
    outlier = outlier_scores(idx, sims, method=p["outlier_method"])
    likely_outlier, outlier_precision = likely_outliers(outlier, idx)
    clock.lap("outliers", progress, 3)
    labels, preds = sel.column(LABEL), sel.column(PREDICTION)
    mislabel, suggested, likely_mislabel, mislabel_precision = _mislabels(sel, idx, sims, p)
    clock.lap("mislabels", progress, 4)
    groups = dup.duplicate_groups(idx, sims, float(p["duplicate_threshold"]),
                                  float(p["duplicate_relative"]))
    origin = [f"{d}\x1f{s}" for d, s in zip(sel.column(DATASET), sel.column(SPLIT), strict=True)]
    leakage = dup.cross_dataset_groups(groups, np.unique(origin, return_inverse=True)[1])
    clock.lap("duplicates", progress, 5)
    clusters = cl.cluster_labels(idx, sims, x, min_cluster_size=p["min_cluster_size"],
                                 min_samples=int(p["min_samples"]), seed=int(p["seed"]))
    table = cl.cluster_table(x, clusters, labels, preds, n_representatives=int(p["representatives"]))
    errors = cl.error_clusters(table, clusters, labels, preds, metadata={
        "split": sel.column(SPLIT), "dataset": sel.column(DATASET), "confidence": sel.column(CONFIDENCE)})
    clock.lap("clusters", progress, 6)
    ids = np.array(sel.ids, dtype=object)
    table["representatives"] = [[str(ids[i]) for i in reps] for reps in table["representatives"]]
    is_error = pd.array([None if a is None or b is None else str(a) != str(b)
                         for a, b in zip(labels, preds, strict=True)], dtype="boolean")
    computed = pd.DataFrame({
        "outlier": outlier, "likely_outlier": likely_outlier, "mislabel": mislabel,
        "likely_mislabel": likely_mislabel, "suggested_label": suggested, "cluster": clusters,
        "is_error": is_error, "duplicate_group": groups, "leakage": leakage,
    }, index=pd.Index(sel.ids, name="id"))
    dups = _duplicate_table(groups, ids, sel.column(DATASET), leakage)
    summary = {**_summary(computed, table, dups), "outlier_precision": outlier_precision,
               "mislabel_precision": mislabel_precision, "timings": clock.laps}
    return ComputedAnalysis(computed, table, dups, errors, summary)


class _Clock:
    """Per-step wall times, reported in the summary (where an analysis spends its time)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str, progress: Progress | None, step: int) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now
        _tick(progress, step)


def _mislabels(sel: Selection, idx: np.ndarray, sims: np.ndarray,
               p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """(mislabel scores (n,) float32 NaN when unlabeled, suggested labels (n,) object, likely
    mislabels (n,) bool, their estimated precision or None)."""
    n = len(sel.ids)
    codes, classes = ml.encode_labels(list(sel.column(LABEL)))
    if len(classes) < 2:
        logger.info("mislabel scores skipped: %d distinct label(s)", len(classes))
        return (np.full(n, np.nan, dtype=np.float32), np.full(n, None, dtype=object),
                np.zeros(n, dtype=bool), None)
    lookup = {c: i for i, c in enumerate(classes)}
    pred_codes = np.array([lookup.get(str(v), -1) if v is not None else -1
                           for v in sel.column(PREDICTION)], dtype=np.int64)
    conf = pd.to_numeric(sel.payload[CONFIDENCE], errors="coerce").to_numpy(dtype=float)
    probs = ml.label_probs(sel.vectors, idx, sims, codes, len(classes), pred_codes=pred_codes,
                           confidences=conf, folds=int(p["probe_folds"]), seed=int(p["seed"]))
    suggested = np.array(classes, dtype=object)[np.argmax(probs, axis=1)]
    likely, precision = ml.likely_mislabels(probs, codes)
    return ml.mislabel_scores(probs, codes), suggested, np.asarray(likely, dtype=bool), precision


def _duplicate_table(groups: np.ndarray, ids: np.ndarray, datasets: np.ndarray,
                     leakage: np.ndarray) -> pd.DataFrame:
    rows = [{"group": g, "size": int(m.size), "ids": [str(v) for v in ids[m]],
             "datasets": sorted({str(v) for v in datasets[m]}), "leakage": bool(leakage[m[0]])}
            for g, m in enumerate(dup.group_members(groups))]
    return pd.DataFrame(rows, columns=["group", "size", "ids", "datasets", "leakage"])


def _summary(computed: pd.DataFrame, table: pd.DataFrame, dups: pd.DataFrame) -> dict[str, Any]:
    known = computed["is_error"].dropna()
    return {
        "items": int(len(computed)),
        "labelled": int(computed["mislabel"].notna().sum()),
        "with_prediction": int(len(known)),
        "error_rate": float(known.mean()) if len(known) else None,
        "clusters": int(len(table)),
        "noise": int((computed["cluster"] == cl.NOISE).sum()),
        "duplicate_groups": int(len(dups)),
        "leakage_items": int(computed["leakage"].sum()),
        "likely_outliers": int(computed["likely_outlier"].sum()),
        "likely_mislabels": int(computed["likely_mislabel"].sum()),
    }


def _with_payload(payload: pd.DataFrame, computed: pd.DataFrame) -> pd.DataFrame:
    return payload.join(computed, how="inner")


def _to_doc(result: ComputedAnalysis, params: dict[str, Any], fp: str, space: str,
            datasets: list[str]) -> dict[str, Any]:
    # space and datasets: what the result refers to (deleting either deletes it, core.pipeline.delete).
    computed = result.computed.astype({"is_error": object})
    return {FORMAT: ANALYSIS_FORMAT, "space": space, "datasets": sorted(datasets),
            "fingerprint": fp, "params": params, "summary": result.summary,
            "computed": frame_to_doc(computed), "clusters": frame_to_doc(result.clusters),
            "duplicates": frame_to_doc(result.duplicates),
            "error_clusters": frame_to_doc(result.error_clusters)}


def _from_doc(doc: dict[str, Any], payload: pd.DataFrame, project: str, space: str,
              names: list[str],
              params: dict[str, Any], fp: str, reused: bool = True) -> AnalysisResult:
    computed = doc_to_frame(doc["computed"])
    computed["is_error"] = computed["is_error"].astype("boolean")
    for col, dtype in (("outlier", "float32"), ("mislabel", "float32"), ("cluster", "int64"),
                       ("duplicate_group", "int64"), ("leakage", "bool"), ("likely_outlier", "bool"),
                       ("likely_mislabel", "bool")):
        if col.startswith("likely_") and col not in computed.columns:  # not in older documents
            computed[col] = False
        computed[col] = computed[col].astype(dtype)
    return AnalysisResult(
        project, space, names, params, fp, scores=_with_payload(payload, computed),
        clusters=doc_to_frame(doc["clusters"]), duplicates=doc_to_frame(doc["duplicates"]),
        error_clusters=doc_to_frame(doc["error_clusters"]), summary=doc["summary"], reused=reused)
