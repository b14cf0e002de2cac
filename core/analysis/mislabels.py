"""Likely-mislabel scores: how little out-of-sample evidence supports each item's given label."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence

import numpy as np
from joblib import Parallel, delayed
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

# The linear probe runs on at most this many PCA components: the probe's cost grows with d, and
# above ~64-128 components the out-of-sample probabilities barely change.
PROBE_MAX_DIM = 64


def encode_labels(labels: Sequence[object]) -> tuple[np.ndarray, list[str]]:
    """Labels as codes: (n,) int64 with -1 for a missing label, and the sorted class names."""
    present = sorted({str(v) for v in labels if _present(v)})
    lookup = {name: i for i, name in enumerate(present)}
    codes = np.array([lookup[str(v)] if _present(v) else -1 for v in labels], dtype=np.int64)
    return codes, present


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def knn_label_probs(
    idx: np.ndarray, sims: np.ndarray, codes: np.ndarray, n_classes: int, *, prior_weight: float = 1.0
) -> np.ndarray:
    """Similarity-weighted label distribution of each item's neighbours (out-of-sample: the kNN
    graph excludes the item itself), shrunk toward the class prior by prior_weight pseudo-votes.

    idx, sims: (n, k) kNN graph; codes: (n,) int, -1 = unlabeled (such neighbours do not vote).
    Returns (n, n_classes) float32, rows summing to 1.
    """
    n, k = idx.shape
    neighbour_codes = codes[idx]
    weights = np.clip(sims, 0.0, None) * (neighbour_codes >= 0)
    votes = np.zeros((n, n_classes), dtype=np.float64)
    rows = np.repeat(np.arange(n), k)
    valid = neighbour_codes.ravel() >= 0
    np.add.at(votes, (rows[valid], neighbour_codes.ravel()[valid]), weights.ravel()[valid])
    prior = np.bincount(codes[codes >= 0], minlength=n_classes) / max(1, int((codes >= 0).sum()))
    probs = (votes + prior_weight * prior) / (votes.sum(axis=1, keepdims=True) + prior_weight)
    return probs.astype(np.float32)


def probe_label_probs(
    vectors: np.ndarray, codes: np.ndarray, n_classes: int, *, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Cross-validated logistic-regression probabilities on the embeddings (a linear probe).

    Each item's probabilities come from a model that never saw it, so a wrong label cannot
    vouch for itself. vectors: (n, d) float32; codes: (n,) int, -1 = unlabeled (not trained on,
    still predicted). Returns (n, n_classes) float32; classes absent from a training fold get 0.
    """
    labelled = np.flatnonzero(codes >= 0)
    x = StandardScaler().fit_transform(_reduce(vectors, seed))
    probs = np.zeros((vectors.shape[0], n_classes), dtype=np.float32)
    unlabelled = np.flatnonzero(codes < 0)
    n_splits = max(2, min(folds, labelled.size))
    splits = [(labelled[tr], np.concatenate([labelled[te], unlabelled]) if i == 0 else labelled[te])
              for i, (tr, te) in enumerate(
                  KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(labelled))]
    # One BLAS thread per fit, folds in parallel threads: lbfgs on these small matrices gains
    # nothing from a multi-threaded BLAS, and its spinning threads made one fit 40x slower
    # (8.7 s vs 0.19 s) on a loaded 2-core machine.
    with threadpool_limits(limits=1):
        fitted = Parallel(n_jobs=min(n_splits, os.cpu_count() or 1), prefer="threads")(
            delayed(_fold_probs)(x, codes, tr, te, n_classes) for tr, te in splits)
    for (_, te), fold_probs in zip(splits, fitted, strict=True):
        probs[te] = fold_probs
    return probs


def _fold_probs(x: np.ndarray, codes: np.ndarray, train: np.ndarray, test: np.ndarray,
                n_classes: int) -> np.ndarray:
    """(len(test), n_classes) probabilities of a logistic regression fitted on the train rows."""
    out = np.zeros((test.size, n_classes), dtype=np.float32)
    if np.unique(codes[train]).size < 2:
        out[:] = np.bincount(codes[train], minlength=n_classes) / train.size
        return out
    model = LogisticRegression(C=1.0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[train], codes[train])
    out[:, model.classes_] = model.predict_proba(x[test])
    return out


def _reduce(vectors: np.ndarray, seed: int) -> np.ndarray:
    """Top PCA components (at most PROBE_MAX_DIM) of the vectors, (n, <=PROBE_MAX_DIM)."""
    n, d = vectors.shape
    if d <= PROBE_MAX_DIM or n <= PROBE_MAX_DIM:
        return np.asarray(vectors, dtype=np.float32)
    pca = PCA(n_components=PROBE_MAX_DIM, svd_solver="randomized", random_state=seed)
    return pca.fit_transform(vectors).astype(np.float32)


def model_label_probs(
    pred_codes: np.ndarray, confidences: np.ndarray | None, codes: np.ndarray, n_classes: int
) -> np.ndarray:
    """The model's probability vector rebuilt from its top-1 prediction and confidence.

    Only the top class and its confidence are stored, so the rest of the mass is spread evenly
    over the other classes. A missing confidence is replaced by the model's accuracy on the
    labelled items (its best calibrated guess). pred_codes: (n,) int, -1 = no prediction (the
    row becomes NaN). Returns (n, n_classes) float32.
    """
    conf = np.full(pred_codes.shape, np.nan) if confidences is None else confidences.astype(float)
    both = (pred_codes >= 0) & (codes >= 0)
    accuracy = float(np.mean(pred_codes[both] == codes[both])) if both.any() else 0.5
    conf = np.where(np.isnan(conf), accuracy, np.clip(conf, 0.0, 1.0))
    rest = (1.0 - conf) / max(1, n_classes - 1)
    probs = np.repeat(rest[:, None], n_classes, axis=1)
    has = pred_codes >= 0
    probs[np.flatnonzero(has), pred_codes[has]] = conf[has]
    probs[~has] = np.nan
    return probs.astype(np.float32)


def label_probs(
    vectors: np.ndarray,
    idx: np.ndarray,
    sims: np.ndarray,
    codes: np.ndarray,
    n_classes: int,
    *,
    pred_codes: np.ndarray | None = None,
    confidences: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """The equal-weight mixture of every out-of-sample label distribution available.

    Sources: kNN label agreement, a cross-validated linear probe on the embeddings, and the
    model's own prediction where there is one. Each is an estimate of p(true class | item) that
    the item's own label did not shape; their average is a mixture of experts whose errors are
    partly independent (the kNN sees local structure, the probe global linear structure, the
    model its own training). Over 8 datasets x 3 seeds (digits pixels, noisy digits, MLP
    embeddings, overlapping and imbalanced blobs, wine, breast cancer) and in
    benchmarks/analysis.py, the mixture ranked flipped labels at least as well as the best
    single source; weighting sources by accuracy or likelihood, geometric means and rank
    averages did no better, so the plain mean it is.
    vectors: (n, d); idx, sims: (n, k) kNN graph; codes, pred_codes: (n,) int, -1 = missing;
    confidences: (n,) float or None. Returns (n, n_classes) float32.
    """
    sources = [
        knn_label_probs(idx, sims, codes, n_classes),
        probe_label_probs(vectors, codes, n_classes, folds=folds, seed=seed),
    ]
    mixture = np.mean(sources, axis=0)
    if pred_codes is not None and (pred_codes >= 0).any():
        model = model_label_probs(pred_codes, confidences, codes, n_classes)
        has = ~np.isnan(model[:, 0])
        mixture[has] = (mixture[has] * len(sources) + model[has]) / (len(sources) + 1)
    return mixture.astype(np.float32)


def mislabel_scores(probs: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """1 - p(given label) under the mixture (cleanlab's "self-confidence" on the same probs).

    probs: (n, C) from label_probs; codes: (n,) int, -1 = unlabeled. Returns (n,) float32 in
    [0, 1], NaN for unlabeled items.
    """
    scores = np.full(codes.shape, np.nan, dtype=np.float32)
    has = codes >= 0
    scores[has] = 1.0 - probs[np.flatnonzero(has), codes[has]]
    return scores
