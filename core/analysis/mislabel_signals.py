"""Out-of-sample estimates of p(true class | item) for the mislabel finder: kNN votes, linear probes, the model."""

from __future__ import annotations

import os
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from core.linalg import row_norms

# The linear probe runs on at most this many PCA components: the probe's cost grows with d, and
# above ~64-128 components the out-of-sample probabilities barely change.
PROBE_MAX_DIM = 64
# The probe trains on at most this many labelled items (a random pool); the rest are predicted.
PROBE_MAX_TRAIN = 50_000
# The raw probe (on the vectors as given, no PCA) trains on at most this many items, and runs only
# up to RAW_MAX_DIM dimensions and RAW_MAX_ITEMS items: its fits cost d/64 times the PCA probe's, and
# its (n, C) output is one more array; it earns its place on small data (a 5k pool is a weak probe
# of a million items, and at 1M x 100 classes the array alone would be 400 MB).
RAW_MAX_TRAIN = 5_000
RAW_MAX_DIM = 2_048
RAW_MAX_ITEMS = 200_000
PREDICT_BLOCK = 65_536  # rows per block of the PCA transform and the probe's predictions


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
    vectors: np.ndarray, codes: np.ndarray, n_classes: int, *, folds: int = 5, seed: int = 0,
    repeats: int = 1, raw: bool = False,
) -> np.ndarray:
    """Cross-validated logistic-regression probabilities on the embeddings (a linear probe).

    Each item's probabilities come from a model that never saw it, so a wrong label cannot
    vouch for itself. Above PROBE_MAX_TRAIN labelled items (RAW_MAX_TRAIN when raw) the probe
    trains on a random pool of that many (a linear model is saturated long before; it keeps the
    cost flat in n): pool items are predicted out-of-fold, the others by any fold's model.
    repeats: the cross-validation is run this many times with different fold splits and the
    probabilities averaged (on small data one split's luck moves the ranking of the few flipped
    items). raw: the vectors as given (cleanlab's documented workflow) instead of their top PCA
    components rescaled (_reduce); the two regularise differently and each wins on some data.
    vectors: (n, d) float32; codes: (n,) int, -1 = unlabeled (not trained on, still predicted).
    Returns (n, n_classes) float32; classes absent from a training fold get 0.
    """
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(codes >= 0)
    cap = RAW_MAX_TRAIN if raw else PROBE_MAX_TRAIN
    pool = labelled if labelled.size <= cap else np.sort(rng.choice(labelled, cap, replace=False))
    x = vectors if raw else _reduce(vectors, pool, seed)
    probs = np.zeros((vectors.shape[0], n_classes), dtype=np.float32)
    for rep in range(max(1, repeats)):
        part = probs if rep == 0 else np.zeros_like(probs)
        _cross_validate(x, codes, pool, n_classes, folds, seed + 7919 * rep, part)
        if rep:
            probs += part
    if repeats > 1:
        probs /= np.float32(repeats)
    return probs


def _cross_validate(x: np.ndarray, codes: np.ndarray, pool: np.ndarray, n_classes: int, folds: int,
                    seed: int, out: np.ndarray) -> None:
    """One cross-validation of the probe on the pool, every row of out written once."""
    others = np.setdiff1d(np.arange(x.shape[0]), pool, assume_unique=True)
    n_splits = max(2, min(folds, pool.size))
    splits = [(pool[tr], np.concatenate([pool[te], others[i::n_splits]]))
              for i, (tr, te) in enumerate(_folds(codes[pool], n_splits, seed))]
    # One BLAS thread per fit, folds in parallel threads: lbfgs on these small matrices gains
    # nothing from a multi-threaded BLAS, and its spinning threads made one fit 40x slower
    # (8.7 s vs 0.19 s) on a loaded 2-core machine.
    with threadpool_limits(limits=1):
        Parallel(n_jobs=min(n_splits, os.cpu_count() or 1), prefer="threads")(
            delayed(_fold_probs)(x, codes, tr, te, n_classes, out) for tr, te in splits)


def _folds(codes: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) positions of a shuffled split, stratified by label (plain when no class has n_splits items).

    Stratified: every training fold sees each class in its share, so no item gets 0 for a class
    its fold's model never saw, and on small many-class data (178 wines, 3 classes) the flipped
    items rank steadier (wine / 5 PCA components, 4 seeds x 5 and 10 % flips: precision@k 0.917 -> 0.938).
    """
    if np.bincount(codes).max() >= n_splits:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a class smaller than n_splits: still split
            return list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(codes, codes))
    return list(KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(codes))


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
    for start in range(0, test.size, PREDICT_BLOCK):
        rows = test[start : start + PREDICT_BLOCK]
        out[rows[:, None], model.classes_[None, :]] = model.predict_proba(x[rows])


def _reduce(vectors: np.ndarray, fit_rows: np.ndarray, seed: int) -> np.ndarray:
    """The top PCA components (at most PROBE_MAX_DIM) of the vectors, centred and scaled by ONE
    factor to unit root-mean-square norm, fitted on fit_rows (the training pool), applied in blocks.

    One factor, not a scaler per component: the space's own geometry is kept, so the probe's
    regularisation leans on the directions that carry the variance. Whitening every component
    instead lets the probe fit noise in the weak ones: on 200 face/non-face crops it ranked flipped
    labels at AUROC 0.88 against 0.99 with one factor (benchmarks/analysis.py).
    (n, <=PROBE_MAX_DIM) float32."""
    n, d = vectors.shape
    fit = vectors[fit_rows] if fit_rows.size >= 2 else vectors
    pca = None
    if d > PROBE_MAX_DIM and fit.shape[0] > PROBE_MAX_DIM:
        pca = PCA(n_components=PROBE_MAX_DIM, svd_solver="randomized", random_state=seed).fit(fit)
    out = np.empty((n, pca.n_components_ if pca is not None else d), dtype=np.float32)
    for start in range(0, n, PREDICT_BLOCK):
        block = vectors[start : start + PREDICT_BLOCK]
        out[start : start + PREDICT_BLOCK] = pca.transform(block) if pca is not None else block
    fitted = out[fit_rows] if fit_rows.size >= 2 else out
    centre = fitted.mean(axis=0)
    scale = float(np.sqrt(np.mean(row_norms(fitted - centre) ** 2))) or 1.0  # RMS distance to the centre
    for start in range(0, n, PREDICT_BLOCK):
        out[start : start + PREDICT_BLOCK] = (out[start : start + PREDICT_BLOCK] - centre) / scale
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
