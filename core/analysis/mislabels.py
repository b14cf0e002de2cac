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
# The probe trains on at most this many labelled items (a random pool); the rest are predicted.
PROBE_MAX_TRAIN = 50_000
_PREDICT_BLOCK = 65_536  # rows per block of the PCA transform and the probe's predictions


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
    vouch for itself. Above PROBE_MAX_TRAIN labelled items the probe trains on a random pool of
    that many (a 64-d linear model is saturated long before; it keeps the cost flat in n): pool
    items are predicted out-of-fold, the others by any fold's model (they trained none).
    vectors: (n, d) float32; codes: (n,) int, -1 = unlabeled (not trained on, still predicted).
    Returns (n, n_classes) float32; classes absent from a training fold get 0.
    """
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(codes >= 0)
    pool = labelled if labelled.size <= PROBE_MAX_TRAIN else np.sort(
        rng.choice(labelled, PROBE_MAX_TRAIN, replace=False))
    x = _reduce(vectors, pool, seed)
    probs = np.zeros((vectors.shape[0], n_classes), dtype=np.float32)
    others = np.setdiff1d(np.arange(vectors.shape[0]), pool, assume_unique=True)
    n_splits = max(2, min(folds, pool.size))
    splits = [(pool[tr], np.concatenate([pool[te], others[i::n_splits]]))
              for i, (tr, te) in enumerate(
                  KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(pool))]
    # One BLAS thread per fit, folds in parallel threads: lbfgs on these small matrices gains
    # nothing from a multi-threaded BLAS, and its spinning threads made one fit 40x slower
    # (8.7 s vs 0.19 s) on a loaded 2-core machine.
    with threadpool_limits(limits=1):
        Parallel(n_jobs=min(n_splits, os.cpu_count() or 1), prefer="threads")(
            delayed(_fold_probs)(x, codes, tr, te, n_classes, probs) for tr, te in splits)
    return probs


def _fold_probs(x: np.ndarray, codes: np.ndarray, train: np.ndarray, test: np.ndarray,
                n_classes: int, out: np.ndarray) -> None:
    """Probabilities of a logistic regression fitted on the train rows, written to out[test]
    block by block (no (n, n_classes) float64 temporary)."""
    if np.unique(codes[train]).size < 2:
        out[test] = np.bincount(codes[train], minlength=n_classes) / train.size
        return
    model = LogisticRegression(C=1.0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[train], codes[train])
    for start in range(0, test.size, _PREDICT_BLOCK):
        rows = test[start : start + _PREDICT_BLOCK]
        out[rows[:, None], model.classes_[None, :]] = model.predict_proba(x[rows])


def _reduce(vectors: np.ndarray, fit_rows: np.ndarray, seed: int) -> np.ndarray:
    """Standardised top PCA components (at most PROBE_MAX_DIM) of the vectors, fitted on
    fit_rows (the training pool) and applied in blocks. (n, <=PROBE_MAX_DIM) float32."""
    n, d = vectors.shape
    fit = vectors[fit_rows] if fit_rows.size >= 2 else vectors
    pca = None
    if d > PROBE_MAX_DIM and fit.shape[0] > PROBE_MAX_DIM:
        pca = PCA(n_components=PROBE_MAX_DIM, svd_solver="randomized", random_state=seed).fit(fit)
    out = np.empty((n, pca.n_components_ if pca is not None else d), dtype=np.float32)
    for start in range(0, n, _PREDICT_BLOCK):
        block = vectors[start : start + _PREDICT_BLOCK]
        out[start : start + _PREDICT_BLOCK] = pca.transform(block) if pca is not None else block
    scaler = StandardScaler().fit(out[fit_rows] if fit_rows.size >= 2 else out)
    for start in range(0, n, _PREDICT_BLOCK):
        out[start : start + _PREDICT_BLOCK] = scaler.transform(out[start : start + _PREDICT_BLOCK])
    return out


def model_label_probs(
    pred_codes: np.ndarray, confidences: np.ndarray | None, codes: np.ndarray, n_classes: int,
    *, accuracy: float | None = None,
) -> np.ndarray:
    """The model's probability vector rebuilt from its top-1 prediction and confidence.

    Only the top class and its confidence are stored, so the rest of the mass is spread evenly
    over the other classes. A missing confidence is replaced by the model's accuracy on the
    labelled items (its best calibrated guess; `accuracy` gives it when these rows are a block
    of a larger set). pred_codes: (n,) int, -1 = no prediction (the row becomes NaN).
    Returns (n, n_classes) float32.
    """
    conf = np.full(pred_codes.shape, np.nan) if confidences is None else confidences.astype(float)
    if accuracy is None:
        accuracy = model_accuracy(pred_codes, codes)
    conf = np.where(np.isnan(conf), accuracy, np.clip(conf, 0.0, 1.0))
    rest = (1.0 - conf) / max(1, n_classes - 1)
    probs = np.repeat(rest[:, None], n_classes, axis=1)
    has = pred_codes >= 0
    probs[np.flatnonzero(has), pred_codes[has]] = conf[has]
    probs[~has] = np.nan
    return probs.astype(np.float32)


def model_accuracy(pred_codes: np.ndarray, codes: np.ndarray) -> float:
    """Share of labelled items the model predicts right (0.5 when none is comparable)."""
    both = (pred_codes >= 0) & (codes >= 0)
    return float(np.mean(pred_codes[both] == codes[both])) if both.any() else 0.5


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
    # Row blocks: no (n, n_classes) float64 temporaries next to the probe's float32 output,
    # which is overwritten with the mixture.
    mixture = probe_label_probs(vectors, codes, n_classes, folds=folds, seed=seed)
    known = pred_codes if pred_codes is not None and bool((pred_codes >= 0).any()) else None
    accuracy = model_accuracy(known, codes) if known is not None else 0.5
    for start in range(0, idx.shape[0], _PREDICT_BLOCK):
        rows = slice(start, start + _PREDICT_BLOCK)
        block = (mixture[rows] + knn_label_probs(idx[rows], sims[rows], codes, n_classes)) / 2
        if known is not None:
            conf = None if confidences is None else confidences[rows]
            model = model_label_probs(known[rows], conf, codes[rows], n_classes, accuracy=accuracy)
            has = ~np.isnan(model[:, 0])
            block[has] = (block[has] * 2 + model[has]) / 3
        mixture[rows] = block
    return mixture


def mislabel_scores(probs: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """1 - p(given label) under the mixture (cleanlab's "self-confidence" on the same probs).

    probs: (n, C) from label_probs; codes: (n,) int, -1 = unlabeled. Returns (n,) float32 in
    [0, 1], NaN for unlabeled items.
    """
    scores = np.full(codes.shape, np.nan, dtype=np.float32)
    has = codes >= 0
    scores[has] = 1.0 - probs[np.flatnonzero(has), codes[has]]
    return scores
