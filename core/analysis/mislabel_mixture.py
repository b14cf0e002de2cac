"""Mixture weights of the mislabel signals, fitted on the data: EM on the likelihood of the given labels."""

from __future__ import annotations

import numpy as np

NOISE = "noise"  # the mixture's uniform component: p = 1/C for every class (see fit_weights)
_EM_STEPS = 500
# The model's top-1 prediction gets at most this share of the signals' weight (the pre-adaptive
# equal share of three sources): predictions on the model's own training items repeat the labels
# it learned, flips included, and would win any likelihood contest with out-of-sample evidence.
MODEL_MAX_SHARE = 1 / 3


def fit_weights(signals: dict[str, np.ndarray], codes: np.ndarray, n_classes: int) -> dict[str, float]:
    """Mixture weights (summing to 1, NOISE included) maximising the likelihood of the given labels.

    signals: name -> (m, C) out-of-sample probabilities of m labelled items (NaN rows: no
    estimate, those items are left out); codes: (m,) int >= 0. EM on the weights of a mixture of
    fixed components: each step moves every weight to the average share its component has in
    explaining the given labels, which never lowers the likelihood. The NOISE component (1/C for
    every class) stands for the flipped labels: without it a signal that is confidently right
    would be punished without limit on every flipped item and lose to a vaguer, worse one.
    """
    names = list(signals)
    rows = np.arange(codes.size)
    lik = np.column_stack([signals[s][rows, codes] for s in names] + [np.full(codes.size, 1 / n_classes)])
    lik = lik[~np.isnan(lik).any(axis=1)].astype(np.float64)
    w = np.full(lik.shape[1], 1.0 / lik.shape[1])
    for _ in range(_EM_STEPS if lik.shape[0] else 0):
        share = lik * w
        share /= np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
        new = share.mean(axis=0)
        done = np.abs(new - w).max() < 1e-6
        w = new
        if done:
            break
    return dict(zip([*names, NOISE], (float(v) for v in w), strict=True))


def cap_model(weights: dict[str, float]) -> dict[str, float]:
    """weights with "model" cut to MODEL_MAX_SHARE of the signals' total, the rest scaled up to fill."""
    total = sum(w for name, w in weights.items() if name != NOISE)
    model = weights.get("model", 0.0)
    if total <= 0 or model <= MODEL_MAX_SHARE * total:
        return weights
    rest = [name for name in weights if name not in (NOISE, "model")]
    others, scale = total - model, (1 - MODEL_MAX_SHARE) * total
    out = {name: scale * (weights[name] / others if others > 0 else 1 / len(rest)) for name in rest}
    return {**out, "model": MODEL_MAX_SHARE * total, NOISE: weights[NOISE]}


def mix(signals: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted mixture of the signals, the NOISE component left out and the rest renormalised
    (a uniform component shifts every class alike: the ranking is the same without it). A row
    where a signal is missing (NaN: no model prediction) is mixed from the others."""
    total = np.zeros_like(next(iter(signals.values())), dtype=np.float32)
    norm = np.zeros((total.shape[0], 1), dtype=np.float32)
    for name, p in signals.items():
        w = np.float32(weights.get(name, 0.0))
        has = ~np.isnan(p[:, :1])
        total += np.where(has, w * p, 0)
        norm += w * has
    return np.where(norm > 0, total / np.maximum(norm, 1e-12), np.float32(1.0 / total.shape[1]))
