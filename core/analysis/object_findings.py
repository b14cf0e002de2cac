"""Detection-object finders on arrays: likely mislabeled boxes, likely missing labels, background predictions, failure clusters.

Every function takes the objects' vectors (n, d) float32 L2-normalised and a frame of their
payloads (rows aligned, indexed by point id) with the columns source ("label" | "prediction"),
label (the class of a label box), prediction and confidence (the class and score of a predicted
box), match (core.analysis.box_matching.MATCH_STATUSES) and match_id (the partner's id); other
columns (dataset, key, box_area, meta.*) are carried into the results and described.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import clusters as cl
from core.analysis import mislabels as ml
from core.analysis.box_matching import LABEL_FAILURES, MISCLASSIFIED, POOR, PREDICTION_FAILURES, SPURIOUS, TP
from core.analysis.cluster_errors import describe
from core.analysis.knn import knn_graph, knn_search
from core.types import BOX_AREA, CONFIDENCE, DATASET, LABEL, LABEL_SOURCE, MATCH, MATCH_ID, PREDICTION, SOURCE

logger = logging.getLogger(__name__)

MIN_CLASS_OBJECTS = 2  # the spurious-box scores need at least this many label boxes to compare with
MIN_MISLABEL_BOXES = 5  # ... and the mislabel finder this many (and two classes): its probes cross-validate
_PAIRED = (TP, MISCLASSIFIED, POOR)  # statuses whose label has a prediction partner (the model's vote)


def object_class(frame: pd.DataFrame) -> np.ndarray:
    """The class of each object: its label for a label box, its prediction for a predicted box. (n,) object."""
    is_label = (frame[SOURCE] == LABEL_SOURCE).to_numpy()
    values = np.where(is_label, frame[LABEL].to_numpy(dtype=object), frame[PREDICTION].to_numpy(dtype=object))
    return np.array([None if _missing(v) else str(v) for v in values], dtype=object)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def likely_mislabeled_boxes(vectors: np.ndarray, frame: pd.DataFrame, *, k: int = 10, folds: int = 5,
                            seed: int = 0) -> pd.DataFrame:
    """Label boxes whose class the evidence does not support, most suspicious first.

    The image finder's evidence (core.analysis.mislabels.fit_label_probs) on the label boxes only:
    kNN agreement among label boxes, cross-validated probes, and the detector's class where a
    prediction is matched to the box (tp, misclassified, poor_localisation: its class and score).
    Columns added: mislabel (1 - p(given class)), likely_mislabel (the confident-learning cut-off,
    mislabels.likely_mislabels), suggested_label. Empty when there are fewer than two classes.
    """
    rows = np.flatnonzero((frame[SOURCE] == LABEL_SOURCE).to_numpy())
    labels = frame.iloc[rows]
    codes, classes = ml.encode_labels(list(labels[LABEL]))
    if len(classes) < 2 or rows.size < MIN_MISLABEL_BOXES:
        logger.info("likely mislabeled boxes skipped: %d label box(es), %d class(es)", rows.size, len(classes))
        return labels.iloc[:0].assign(mislabel=[], likely_mislabel=[], suggested_label=[])
    x = vectors[rows]
    idx, sims = knn_graph(x, min(k, rows.size - 1), seed=seed)
    pred_codes, conf = _partner_votes(frame, labels, classes)
    fit = ml.fit_label_probs(x, idx, sims, codes, len(classes), pred_codes=pred_codes, confidences=conf,
                             folds=folds, seed=seed)
    likely, _ = ml.likely_mislabels(fit.probs, codes)
    out = labels.assign(mislabel=ml.mislabel_scores(fit.probs, codes), likely_mislabel=np.asarray(likely, bool),
                        suggested_label=np.array(classes, dtype=object)[np.argmax(fit.probs, axis=1)])
    return out.sort_values("mislabel", ascending=False, kind="stable", na_position="last")


def _partner_votes(frame: pd.DataFrame, labels: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The class code (-1 = none) and score of the prediction matched to each label box."""
    lookup = {c: i for i, c in enumerate(classes)}
    partner = labels[MATCH_ID].where(labels[MATCH].isin(_PAIRED))
    found = partner.map(lambda v: v if isinstance(v, str) and v in frame.index else None)
    pred = frame[PREDICTION].reindex(found.dropna()).to_dict()
    score = pd.to_numeric(frame[CONFIDENCE], errors="coerce").reindex(found.dropna()).to_dict()
    codes = np.array([lookup.get(str(pred.get(v)), -1) if v else -1 for v in found], dtype=np.int64)
    conf = np.array([score.get(v, np.nan) if v else np.nan for v in found], dtype=float)
    return codes, conf


def _confidences(frame: pd.DataFrame) -> np.ndarray:
    """Scores of the rows, a missing one replaced by the median known score (1 when none is known)."""
    conf = pd.to_numeric(frame[CONFIDENCE], errors="coerce").to_numpy(dtype=float)
    known = conf[~np.isnan(conf)]
    return np.where(np.isnan(conf), float(np.median(known)) if known.size else 1.0, np.clip(conf, 0.0, 1.0))


# The agreement is used as a value (it scales the missing-label score), not only as a ranking: a vote
# of a few neighbours is kept well short of 1.0 (benchmarks/detection_findings.py measured at 3).
AGREEMENT_PRIOR_VOTES = 3.0


def spurious_scores(vectors: np.ndarray, frame: pd.DataFrame, *, k: int = 10) -> pd.DataFrame:
    """The spurious predictions (no label matched) scored two ways, rows of frame plus:

    agreement: the predicted class's share of the k nearest label boxes' similarity-weighted vote,
      shrunk toward the class prior by AGREEMENT_PRIOR_VOTES pseudo-votes;
    closeness: min(1, d_ref / d), d = 1 - the mean similarity to the k nearest label boxes and
      d_ref the median of the same over the label boxes themselves: 1 for a box as close to the
      labelled objects as they are to each other, 0.5 at twice their typical distance;
    spurious_share: share of its k nearest objects (labels and predictions) that are spurious too;
    missing = confidence * agreement * closeness: a confident box that looks like the labelled
      objects of its class (a likely missing label), likely_missing when the vote's top class is the
      predicted one and closeness >= 0.5;
    background = 1 - (1 - spurious_share) * closeness: far from every label box, or among other
      spurious boxes (what the detector fires on without an object), likely_background when >= 0.5
      and not likely_missing.
    Empty when there are no spurious predictions or fewer than MIN_CLASS_OBJECTS label boxes.
    """
    spur = np.flatnonzero(((frame[SOURCE] != LABEL_SOURCE) & (frame[MATCH] == SPURIOUS)).to_numpy())
    lab = np.flatnonzero((frame[SOURCE] == LABEL_SOURCE).to_numpy())
    cols = ["agreement", "closeness", "spurious_share", "missing", "background", "likely_missing",
            "likely_background"]
    if spur.size == 0 or lab.size < MIN_CLASS_OBJECTS:
        return frame.iloc[:0].assign(**{c: [] for c in cols})
    codes, classes = ml.encode_labels(list(frame[LABEL].iloc[lab]))
    kl = min(k, lab.size - 1)
    idx, sims = knn_search(vectors[spur], vectors[lab], kl)
    votes = ml.knn_label_probs(idx, sims, codes, len(classes), prior_weight=AGREEMENT_PRIOR_VOTES)
    lookup = {c: i for i, c in enumerate(classes)}
    pred = np.array([lookup.get(str(v), -1) for v in frame[PREDICTION].iloc[spur]], dtype=np.int64)
    agreement = np.where(pred >= 0, votes[np.arange(spur.size), np.maximum(pred, 0)], 0.0)
    _, lab_sims = knn_graph(vectors[lab], kl)
    d_ref = float(np.median(1.0 - lab_sims.mean(axis=1)))
    d = np.maximum(1.0 - sims.mean(axis=1), 1e-9)
    closeness = np.minimum(1.0, max(d_ref, 1e-9) / d)
    share = _spurious_share(vectors, frame, spur, k)
    missing = _confidences(frame.iloc[spur]) * agreement * closeness
    likely_missing = (pred >= 0) & (votes.argmax(axis=1) == pred) & (closeness >= 0.5)
    background = 1.0 - (1.0 - share) * closeness
    return frame.iloc[spur].assign(
        agreement=agreement, closeness=closeness, spurious_share=share, missing=missing, background=background,
        likely_missing=likely_missing, likely_background=(background >= 0.5) & ~likely_missing)


def _spurious_share(vectors: np.ndarray, frame: pd.DataFrame, rows: np.ndarray, k: int) -> np.ndarray:
    """Share of each row's k nearest other objects whose status is spurious. (len(rows),)"""
    n = vectors.shape[0]
    if n < 2:
        return np.zeros(rows.size)
    is_spur = ((frame[SOURCE] != LABEL_SOURCE) & (frame[MATCH] == SPURIOUS)).to_numpy()
    kk = min(k, n - 1)
    idx, _ = knn_search(vectors[rows], vectors, kk + 1)  # +1: the row itself is its own nearest
    own = idx == rows[:, None]
    keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(kk + 1)[None, :] < kk)
    return (is_spur[idx] & keep).sum(axis=1) / kk


def likely_missing_labels(spurious: pd.DataFrame) -> pd.DataFrame:
    """spurious_scores' rows ranked by the missing score (highest first)."""
    return spurious.sort_values("missing", ascending=False, kind="stable")


def background_predictions(spurious: pd.DataFrame) -> pd.DataFrame:
    """spurious_scores' rows ranked by the background score (highest first)."""
    return spurious.sort_values("background", ascending=False, kind="stable")


FAILURE_COLUMNS = ["cluster", "size", "failures", "failure_rate", "lift", "p_value", "excess_failures",
                   "dominant_class", "class_share", "top_failure", "median_box_area", "description", "examples"]


def failed(frame: pd.DataFrame) -> pd.Series:
    """Boolean Series (frame's index): a label box missed, misclassified or loosely found; a predicted box
    spurious, duplicate, misclassified or loose (box_matching.LABEL_FAILURES / PREDICTION_FAILURES); <NA> for
    a box without a status."""
    is_label = (frame[SOURCE] == LABEL_SOURCE).to_numpy()
    status = frame[MATCH]
    bad = np.where(is_label, status.isin(LABEL_FAILURES), status.isin(PREDICTION_FAILURES))
    return pd.Series(bad, index=frame.index, dtype="boolean").mask(status.isna())


def failure_clusters(vectors: np.ndarray, frame: pd.DataFrame, *, k: int = 10, min_cluster_size: int | None = None,
                     min_samples: int = 5, examples: int = 8, seed: int = 0,
                     metadata: list[str] | None = None) -> pd.DataFrame:
    """Kinds of objects the detector fails on: clusters of the objects' kNN graph (core.analysis.clusters,
    label and predicted boxes together) holding significantly more failures than average, highest lift first.

    lift, p_value, excess_failures: core.analysis.cluster_errors.error_clusters with a failure
    (failed()) as the error: failure rate in the cluster / over every object with a status,
    Bonferroni-corrected hypergeometric tail. dominant_class, class_share: the commonest class
    (object_class) among its members; top_failure: its commonest failure status "missed (12)";
    median_box_area in px^2; description: class, failures, box size and the metadata that stand out
    (dataset, source and meta.* columns, or the given metadata columns); examples: ids of up to
    `examples` failing members nearest its medoid (the crops to show). Empty without failures.
    """
    n = vectors.shape[0]
    fail = failed(frame)
    known, bad = fail.notna().to_numpy(dtype=bool), fail.fillna(False).to_numpy(dtype=bool)
    if n < max(min_samples, 3) or not bad.any():
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    idx, sims = knn_graph(vectors, min(k, n - 1), seed=seed)
    clusters = cl.cluster_labels(idx, sims, vectors, min_cluster_size=min_cluster_size,
                                 min_samples=min_samples, seed=seed)
    ok = np.full(n, None, dtype=object)
    ok[known] = "ok"
    outcome = ok.copy()
    outcome[bad] = "failed"
    table = cl.cluster_table(vectors, clusters, ok, outcome)
    if table.empty:  # every object is noise: no kind of object stands out
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    found = cl.error_clusters(table, clusters, ok, outcome).drop(columns=["description", "top_confusion"]).rename(
        columns={"errors": "failures", "error_rate": "failure_rate", "excess_errors": "excess_failures"})
    if found.empty:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    classes = object_class(frame)
    meta = {c: frame[c].to_numpy(dtype=object) for c in (metadata if metadata is not None else _meta_columns(frame))}
    extra = [_cluster_facts(vectors, frame, clusters == c, bad, classes, meta, examples) for c in found["cluster"]]
    return pd.concat([found.reset_index(drop=True), pd.DataFrame(extra)], axis=1)[FAILURE_COLUMNS]


def _meta_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a description may contrast: dataset, source and metadata, but not identifiers
    (COCO's annotation_id, an image_id...): "mean meta.annotation_id 512 vs 430 overall" says nothing."""
    meta = [c for c in frame.columns if c.startswith("meta.") and not _is_identifier(c.removeprefix("meta."))]
    return [c for c in (DATASET, SOURCE) if c in frame.columns] + meta


def _is_identifier(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("id", "uuid", "key") or lowered.endswith(("_id", "-id", " id", "_uuid")) or name.endswith("Id")


def _cluster_facts(vectors: np.ndarray, frame: pd.DataFrame, members: np.ndarray, bad: np.ndarray,
                   classes: np.ndarray, meta: dict[str, np.ndarray], examples: int) -> dict[str, Any]:
    names = pd.Series(classes[members]).dropna().value_counts()
    names = names.sort_index().sort_values(ascending=False, kind="stable")  # ties: by name
    dominant = str(names.index[0]) if len(names) else None
    share = float(names.iloc[0] / members.sum()) if len(names) else float("nan")
    overall = float(np.mean(classes == dominant)) if dominant is not None else float("nan")
    statuses = frame[MATCH].to_numpy(dtype=object)[members & bad]
    counts = pd.Series(statuses).value_counts().sort_index().sort_values(ascending=False, kind="stable")
    area = pd.to_numeric(frame[BOX_AREA], errors="coerce") if BOX_AREA in frame.columns else None
    median = float(np.nanmedian(area[members])) if area is not None and area[members].notna().any() else float("nan")
    parts = [f"class {dominant} {share:.0%} of its objects vs {overall:.0%} overall" if dominant else "",
             "failures: " + ", ".join(f"{s} {c}" for s, c in counts.items())]
    if area is not None and not np.isnan(median):
        parts.append(f"median box {np.sqrt(median):.0f} px (side) vs {np.sqrt(np.nanmedian(area)):.0f} px overall")
    parts.append(describe(members, np.zeros_like(members), classes, classes, meta))
    failing = np.flatnonzero(members & bad)
    reps = cl.representatives(vectors, failing, examples) if failing.size else np.zeros(0, dtype=np.int64)
    return {"dominant_class": dominant, "class_share": share,
            "top_failure": f"{counts.index[0]} ({int(counts.iloc[0])})" if len(counts) else "",
            "median_box_area": median, "description": "; ".join(p for p in parts if p),
            "examples": [str(frame.index[i]) for i in reps]}
