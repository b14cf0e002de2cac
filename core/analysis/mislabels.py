"""Likely-mislabel scores: how little out-of-sample evidence supports each item's given label.

The evidence (core.analysis.mislabel_signals) is mixed with weights fitted on the data itself;
likely_mislabels turns the scores into a list with a confident-learning cut-off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.analysis import mislabel_mixture as mixture
from core.analysis import mislabel_signals as sig
from core.analysis.label_noise import fit_label_noise, flip_posterior, temper
from core.analysis.mislabel_mixture import NOISE, fit_weights  # noqa: F401 - public names
from core.analysis.mislabel_signals import (  # noqa: F401 - the public names callers use
    PROBE_MAX_DIM,
    PROBE_MAX_TRAIN,
    knn_label_probs,
    model_accuracy,
    model_label_probs,
    probe_label_probs,
)

logger = logging.getLogger(__name__)


def encode_labels(labels: Sequence[object]) -> tuple[np.ndarray, list[str]]:
    """Labels as codes: (n,) int64 with -1 for a missing label, and the sorted class names."""
    present = sorted({str(v) for v in labels if _present(v)})
    lookup = {name: i for i, name in enumerate(present)}
    codes = np.array([lookup[str(v)] if _present(v) else -1 for v in labels], dtype=np.int64)
    return codes, present


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


# kNN label agreement is measured at these neighbourhood sizes (the graph's first k columns, nearest
# first) and at the graph's own k: a small k sees fine structure, a large k averages out noise.
KNN_KS = (5, 10, 20, 50)
# Each kNN vote is shrunk toward the class prior by this many pseudo-votes, so that a class none of
# a few neighbours carries keeps some probability (how sharp the votes should be is left to the
# temperature each signal gets from the data, below).
KNN_PRIOR_VOTES = 1.0
# The mixture weights are fitted on at most this many labelled items (a seeded sample): a handful of
# weights is pinned down long before, and it keeps the fit's cost flat in n.
WEIGHT_SAMPLE = 20_000
# The probes' cross-validation is repeated (different splits, probabilities averaged) on data up to
# these sizes: on a few hundred items one split's luck moves the ranking of the few flipped ones,
# and the repeats cost little there.
PROBE_REPEATS = 3
REPEAT_MAX_ITEMS = 50_000
REPEAT_MAX_LABELLED = 5_000


@dataclass(frozen=True)
class LabelProbs:
    """probs: (n, C) float32 mixture of the signals (rows sum to 1); weights: the mixture weight of
    each signal ("probe", "linear", "knn5", "knn10", ..., "model") and of the NOISE component, summing to 1;
    temperatures: the temperature each signal was calibrated by before mixing (1.0: as computed);
    signals: each signal's (n, C) probabilities, uncalibrated, when asked for (keep_signals), else empty."""

    probs: np.ndarray
    weights: dict[str, float]
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)


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
    """The adaptive mixture of every out-of-sample label distribution available (fit_label_probs).

    vectors: (n, d); idx, sims: (n, k) kNN graph; codes, pred_codes: (n,) int, -1 = missing;
    confidences: (n,) float or None. Returns (n, n_classes) float32, rows summing to 1.
    """
    return fit_label_probs(vectors, idx, sims, codes, n_classes, pred_codes=pred_codes,
                           confidences=confidences, folds=folds, seed=seed).probs


def fit_label_probs(
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
    keep_signals: bool = False,
) -> LabelProbs:
    """A mixture of out-of-sample estimates of p(class | item), weighted by how well each predicts
    the given labels of items it never saw.

    Signals: kNN label agreement at several k (KNN_KS), two cross-validated linear probes ("probe"
    on the top PCA components rescaled; "linear" on the vectors as given, cleanlab's own workflow,
    up to sig.RAW_MAX_DIM dimensions and sig.RAW_MAX_ITEMS items; each cross-validation repeated
    PROBE_REPEATS times on small data), and the model's own prediction/confidence where there is
    one. None of them saw the item's own label, so the likelihood of the given labels under a
    mixture is an out-of-fold score of that mixture;
    the weights maximising it (fit_weights) favour whichever signal explains the labels best on
    this data: kNN on data with fine local structure, the probe where classes are linearly
    separable but neighbourhoods are noisy. Memory: the probe's (n, C) float32 output is reused for
    the mixture, "linear" is one more (n, C) float32, the other signals are computed in row blocks
    (keep_signals=True keeps them all, for benchmarks and tests).
    """
    small = vectors.shape[0] <= REPEAT_MAX_ITEMS and int((codes >= 0).sum()) <= REPEAT_MAX_LABELLED
    repeats = PROBE_REPEATS if small else 1
    probs = sig.probe_label_probs(vectors, codes, n_classes, folds=folds, seed=seed, repeats=repeats)
    raw = vectors.shape[1] <= sig.RAW_MAX_DIM and vectors.shape[0] <= sig.RAW_MAX_ITEMS
    linear = sig.probe_label_probs(vectors, codes, n_classes, folds=folds, seed=seed, repeats=repeats,
                                   raw=True) if raw else None
    ks = sorted({k for k in KNN_KS if k < idx.shape[1]} | {idx.shape[1]})
    known = pred_codes if pred_codes is not None and bool((pred_codes >= 0).any()) else None
    accuracy = sig.model_accuracy(known, codes) if known is not None else 0.5

    def signals(rows: np.ndarray | slice) -> dict[str, np.ndarray]:
        out = {"probe": probs[rows]} | ({"linear": linear[rows]} if linear is not None else {})
        for k in ks:
            out[f"knn{k}"] = sig.knn_label_probs(idx[rows, :k], sims[rows, :k], codes, n_classes,
                                                 prior_weight=KNN_PRIOR_VOTES)
        if known is not None:
            conf = None if confidences is None else confidences[rows]
            out["model"] = sig.model_label_probs(known[rows], conf, codes[rows], n_classes, accuracy=accuracy)
        return out

    sample = _weight_sample(codes, seed)
    weights = {"probe": 1.0, mixture.NOISE: 0.0}  # no labelled item: nothing to fit on
    temperatures: dict[str, float] = {}
    if sample.size:
        sampled = signals(sample)
        temperatures = _temperatures(sampled, codes[sample], seed)
        weights = mixture.cap_model(mixture.fit_weights(
            _calibrated(sampled, temperatures), codes[sample], n_classes))
    # Copies: the mixture below overwrites the probe's array.
    kept = {name: p.copy() for name, p in signals(slice(None)).items()} if keep_signals else {}
    for start in range(0, probs.shape[0], sig.PREDICT_BLOCK):
        rows = slice(start, start + sig.PREDICT_BLOCK)
        probs[rows] = mixture.mix(_calibrated(signals(rows), temperatures), weights)
    logger.info("mislabel signal weights: %s; temperatures: %s", {k: round(v, 3) for k, v in weights.items()},
                {k: round(v, 3) for k, v in temperatures.items()})
    return LabelProbs(probs, weights, kept, temperatures)


def _temperatures(signals: dict[str, np.ndarray], codes: np.ndarray, seed: int) -> dict[str, float]:
    """Each signal's temperature under the noisy channel of the labels (core.analysis.label_noise).

    Why: the mixture's weights follow the likelihood of the given labels, which rewards a sharp
    signal on the many clean items more than it rewards ranking the few flipped ones first. A probe
    reads 0.99 where a unanimous kNN vote reads 0.8 (pseudo-votes, similarity weights), so the probe
    won the weights even where the kNN vote ranks the flips better (1,797 shifted digits in a HOG
    space: precision@k 0.92 against plain kNN disagreement's 0.96). Each signal calibrated first to
    how often it is right on these labels, the weights compare what the signals know, not how loud
    they say it (0.97 there). The model's prediction is left as it is (its rows may be missing).
    """
    return {name: fit_label_noise(p, codes, seed=seed).temperature
            for name, p in signals.items() if name != "model"}


def _calibrated(signals: dict[str, np.ndarray], temperatures: dict[str, float]) -> dict[str, np.ndarray]:
    return {name: temper(p, temperatures.get(name, 1.0)) for name, p in signals.items()}


def _weight_sample(codes: np.ndarray, seed: int) -> np.ndarray:
    labelled = np.flatnonzero(codes >= 0)
    if labelled.size <= WEIGHT_SAMPLE:
        return labelled
    return np.sort(np.random.default_rng(seed + 1).choice(labelled, WEIGHT_SAMPLE, replace=False))


def mislabel_scores(probs: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """1 - p(given label) under the mixture (cleanlab's "self-confidence" on the same probs).

    probs: (n, C) from label_probs; codes: (n,) int, -1 = unlabeled. Returns (n,) float32 in
    [0, 1], NaN for unlabeled items.
    """
    scores = np.full(codes.shape, np.nan, dtype=np.float32)
    has = codes >= 0
    scores[has] = 1.0 - probs[np.flatnonzero(has), codes[has]]
    return scores


def likely_mislabels(probs: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Which items are likely mislabelled, by confident learning, and the estimated precision.

    probs: (n, C) out-of-sample class probabilities (label_probs); codes: (n,) int, -1 =
    unlabeled (never flagged). Per-class thresholds t_j = mean p(j) over the items labelled j (the
    class's typical self-confidence, so the cut-off comes from the data, not a constant). An item
    labelled y is flagged when (1) another class j has p(j) >= t_j and is the most probable such
    class (the item is off the diagonal of cleanlab's confident joint), (2) p(y) < t_y and (3) the
    argmax is not y (its suggested label differs from its label). Nothing is flagged when the
    calibrated confident joint puts more than (C-1)/(2C) of the items off its diagonal, half way to
    labels drawn at random: such a space does not separate the classes, and its disagreements with
    the labels are its own errors more than the labels'. When the noisy channel fitted to all the
    labels (core.analysis.label_noise) finds random labels, at most round(rate * labelled) items are
    listed, the least self-confident first (cleanlab prunes by its own noise rate the same way): with
    5-10 % random flips rate x n lands within a few items of the number flipped, while the confident
    joint alone also lists the overlap of classes the space confuses (iris with 5-10 % flips: 19
    listed at 45 % precision on average; capped, 11 at 69 %). Clean, well-separated data flags nothing.

    Precision (no ground truth): the higher of (a) the mean posterior that a flagged item's label is
    a random one, under a noisy channel fitted to all the labels (core.analysis.label_noise: the
    probabilities' temperature and the random-label rate) and (b) the mean two-way contest
    p(j) / (p(j) + p(y)) times (1 - noise rate / ((C-1)/(2C))). (b) alone trusts the probabilities,
    which read ~0.75 on every flagged set where classes overlap; (a) alone reads a flip rate near 0
    where the noise gathers on one partner class per class. Against the real precision in
    benchmarks/analysis.py (5-10% random flips, 13 real spaces that flag anything, 16 seeds):
    |estimate - real| at most 0.09, mean 0.03, but for textiles / EfficientNet, where the list capped
    by the noise rate is 0.87 right and the estimate, made for the confident joint's longer list
    (0.31 right then, 0.21 stated), reads 0.50: it errs low there. With (b) alone undiscounted the
    error reached 0.45. With each class flipped to its nearest class instead (before the cap): at
    most 0.27, mean 0.12 (digits 0.70-0.80 for 0.84-0.98 real).
    Returns (bool (n,), precision or None when nothing is flagged).
    """
    n, n_classes = probs.shape
    flagged = np.zeros(n, dtype=bool)
    lab = np.flatnonzero(codes >= 0)
    if lab.size == 0 or n_classes < 2:
        return flagged, None
    y, p = codes[lab], probs[lab].astype(np.float64)
    rows = np.arange(lab.size)
    self_conf = p[rows, y]
    counts = np.bincount(y, minlength=n_classes)
    thresholds = np.bincount(y, weights=self_conf, minlength=n_classes) / np.maximum(counts, 1)
    thresholds[counts == 0] = np.inf  # a class nobody carries is never "confidently" anyone's
    above = p >= thresholds - 1e-6  # cleanlab's tolerance for ties at the threshold
    confident = np.where(above, p, -1.0).argmax(axis=1)
    counted = above.any(axis=1)
    rate = _noise_rate(y[counted], confident[counted], counts)
    limit = (n_classes - 1) / (2 * n_classes)
    if rate > limit:
        logger.info("no likely mislabels listed: the confident joint's noise rate %.2f says this space "
                    "does not separate the classes", rate)
        return flagged, None
    off = counted & (confident != y) & (self_conf < thresholds[y]) & (p.argmax(axis=1) != y)
    if not off.any():
        return flagged, None
    noise = fit_label_noise(probs, codes)  # only for a list: the cap and reading (a) below
    expected = max(1, int(round(noise.rate * lab.size)))
    logger.info("likely mislabels: %d confident-joint disagreements; the labels' noisy channel: rate %.3f "
                "(%.1f items), temperature %.3f", int(off.sum()), noise.rate, noise.rate * lab.size, noise.temperature)
    if noise.rate > 0 and off.sum() > expected:
        # At most as many as the noisy channel says are random, the least self-confident first (the
        # ranking's own order): the rest of the confident joint's disagreements are the space's own
        # confusions. Not when the fit finds no random label at all: a few flips among sharp
        # probabilities can fit as a softer temperature instead (8 of 300 on synthetic clusters).
        off[np.flatnonzero(off)[np.argsort(self_conf[off], kind="stable")[expected:]]] = False
    flagged[lab[off]] = True  # the cap keeps at least one: off is not empty
    # Two label-free readings of the flagged items, the higher kept: (a) random labels: the posterior
    # that each label is a random one under the noisy channel fitted to all the labels (right when the
    # label noise is spread over the classes, and low where the space itself confuses a pair of classes);
    # (b) the two-way contest p(j) / (p(j) + p(y)), which holds where noise gathers on one partner class
    # per class (a pair that (a) mistakes for the space's own confusion), discounted by how near the
    # space is to not separating the classes (0 at the limit above, where nothing is listed).
    random_labels = float(np.mean(flip_posterior(probs[lab[off]], y[off], noise)))
    suggested = p[rows[off], confident[off]]
    contest = float(np.mean(suggested / (suggested + self_conf[off])))
    return flagged, max(random_labels, contest * (1.0 - rate / limit))


def _noise_rate(given: np.ndarray, confident: np.ndarray, counts: np.ndarray) -> float:
    """Share of labelled items off the diagonal of the calibrated confident joint (cleanlab: each
    row of the joint rescaled to its class's item count)."""
    c = counts.size
    joint = np.zeros((c, c))
    np.add.at(joint, (given, confident), 1.0)
    rows = joint.sum(axis=1, keepdims=True)
    calibrated = np.divide(joint * counts[:, None], rows, out=np.zeros_like(joint), where=rows > 0)
    total = calibrated.sum()
    return float((total - np.trace(calibrated)) / total) if total > 0 else 0.0
