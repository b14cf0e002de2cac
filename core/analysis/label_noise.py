"""A noisy-channel model of the given labels: how sharp the class probabilities really are, how many labels are random.

The given label of an item is modelled as drawn from softmax(log p / T) with probability 1 - rate and
uniformly from the other classes with probability rate. T and rate are fitted by maximum likelihood
on the given labels themselves (no ground truth of which labels are wrong); the fitted model then
says, item by item, how likely its label is one of the random ones (flip_posterior).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The fit looks at most this many labelled items (a seeded sample): two numbers are pinned down long
# before, and it keeps the cost flat in n (one (sample, C) softmax per temperature tried).
FIT_SAMPLE = 10_000
# Temperatures tried, then refined around the best: the mixture's probabilities are mostly too soft
# (T < 1: kNN votes are shrunk toward the prior), sometimes too sharp (T > 1: a probe overfitting).
TEMPERATURES = np.geomspace(0.02, 20.0, 25)
REFINE_STEPS = 12
RATE_STEPS = 30  # bisection steps on the rate's likelihood equation (the log-likelihood is concave in it)
TINY = 1e-12


@dataclass(frozen=True)
class LabelNoise:
    """temperature: the T that calibrates the probabilities to the given labels; rate: the share of
    labels drawn at random from the other classes (0 to (C-1)/C)."""

    temperature: float
    rate: float


def fit_label_noise(probs: np.ndarray, codes: np.ndarray, *, seed: int = 0) -> LabelNoise:
    """The temperature and random-label rate that make the given labels most likely.

    probs: (n, C) out-of-sample class probabilities; codes: (n,) int, -1 = unlabeled (left out).
    Where classes separate only partly, the probabilities' confident disagreements with the labels
    fit a softer T, not a higher rate: a random label is as likely on an easy item as on a hard one,
    while a model's own errors gather on the hard ones. That difference is what tells the two apart.
    """
    n_classes = probs.shape[1]
    lab = np.flatnonzero(codes >= 0)
    if lab.size == 0 or n_classes < 2:
        return LabelNoise(1.0, 0.0)
    if lab.size > FIT_SAMPLE:
        lab = np.sort(np.random.default_rng(seed).choice(lab, FIT_SAMPLE, replace=False))
    logp = np.log(np.maximum(probs[lab].astype(np.float64), TINY))
    given = codes[lab]

    def score(log_t: float) -> tuple[float, float]:
        p_given = _tempered(logp, given, float(np.exp(log_t)))
        rate = _best_rate(p_given, n_classes)
        return _loglik(p_given, rate, n_classes), rate

    grid = np.log(TEMPERATURES)
    scores = [score(t)[0] for t in grid]
    best = int(np.argmax(scores))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    refined = _golden_max(lambda t: score(t)[0], lo, hi, REFINE_STEPS)
    log_t = refined if score(refined)[0] >= scores[best] else grid[best]
    return LabelNoise(float(np.exp(log_t)), score(log_t)[1])


def flip_posterior(probs: np.ndarray, codes: np.ndarray, noise: LabelNoise) -> np.ndarray:
    """P(the given label is a random one | the item, its label) under the fitted model, per row.

    probs: (m, C); codes: (m,) int >= 0. Returns (m,) float64 in [0, 1].
    """
    n_classes = probs.shape[1]
    logp = np.log(np.maximum(probs.astype(np.float64), TINY))
    p_given = _tempered(logp, codes, noise.temperature)
    share = noise.rate / (n_classes - 1)  # the chance a random label lands on this one class
    flipped = share * (1.0 - p_given)
    likely = (1.0 - noise.rate - share) * p_given + share
    return np.divide(flipped, likely, out=np.zeros_like(flipped), where=likely > 0)


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row: probabilities made sharper (T < 1) or softer (T > 1), their
    order within a row kept. probs: (n, C); returns (n, C) float32 (probs itself when T == 1)."""
    if temperature == 1.0:
        return probs
    scaled = np.log(np.maximum(probs.astype(np.float64), TINY)) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    out = np.exp(scaled)
    out /= out.sum(axis=1, keepdims=True)
    return out.astype(np.float32)


def _tempered(logp: np.ndarray, codes: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logp / T)[row, code] for each row, computed stably."""
    scaled = logp / temperature
    top = scaled.max(axis=1)
    norm = np.log(np.exp(scaled - top[:, None]).sum(axis=1)) + top
    return np.exp(scaled[np.arange(codes.size), codes] - norm)


def _loglik(p_given: np.ndarray, rate: float, n_classes: int) -> float:
    share = rate / (n_classes - 1)
    return float(np.log(np.maximum((1.0 - rate - share) * p_given + share, TINY)).mean())


def _best_rate(p_given: np.ndarray, n_classes: int) -> float:
    """The rate maximising the mean log-likelihood: the root of its derivative, which falls with the
    rate, by bisection on [0, (C-1)/C] (at the top, every label is random)."""
    top = (n_classes - 1) / n_classes
    slope = (1.0 - n_classes * p_given) / (n_classes - 1)  # d likelihood / d rate, per item

    def derivative(rate: float) -> float:
        return float(np.mean(slope / np.maximum(p_given + rate * slope, TINY)))

    if derivative(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, top
    for _ in range(RATE_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if derivative(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def _golden_max(fn: Callable[[float], float], lo: float, hi: float, steps: int) -> float:
    """The x in [lo, hi] maximising fn, by golden-section search (fn unimodal there)."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lo + (1 - ratio) * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = fn(a), fn(b)
    for _ in range(steps):
        if fa >= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - ratio) * (hi - lo)
            fa = fn(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = fn(b)
    return a if fa >= fb else b
