"""Likely-mislabel scores: planted label flips rank highest; the model's view is used."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from core.analysis import mislabels as ml
from core.analysis.knn import knn_graph


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _flip(y: np.ndarray, n_classes: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.choice(y.size, int(rate * y.size), replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, n_classes, flipped.size)) % n_classes
    return noisy, flipped


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    rng = np.random.default_rng(0)
    keep = rng.choice(len(data.target), 600, replace=False)
    return _unit(data.data[keep] + 1e-3), data.target[keep]


def test_flipped_labels_rank_highest(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    noisy, flipped = _flip(y, 10, 0.05, seed=1)
    idx, sims = knn_graph(x, 10)
    probs = ml.label_probs(x, idx, sims, noisy, 10)
    scores = ml.mislabel_scores(probs, noisy)
    truth = np.isin(np.arange(y.size), flipped)
    assert roc_auc_score(truth, scores) >= 0.97
    top = np.argsort(-scores)[: flipped.size]
    assert truth[top].mean() >= 0.8  # precision at k = number flipped
    # The suggested label (the mixture's argmax) recovers most true labels of flipped items.
    assert np.mean(probs[flipped].argmax(axis=1) == y[flipped]) >= 0.8


def test_model_predictions_sharpen_the_ranking(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    noisy, flipped = _flip(y, 10, 0.05, seed=2)
    # An embedding that carries no class information, and a model that is right 95% of the time.
    rng = np.random.default_rng(3)
    blind = _unit(rng.standard_normal(x.shape))
    pred = np.where(rng.random(y.size) < 0.95, y, (y + 1) % 10)
    idx, sims = knn_graph(blind, 10)
    without = ml.mislabel_scores(ml.label_probs(blind, idx, sims, noisy, 10), noisy)
    probs = ml.label_probs(blind, idx, sims, noisy, 10, pred_codes=pred,
                           confidences=np.full(y.size, 0.9))
    with_model = ml.mislabel_scores(probs, noisy)
    truth = np.isin(np.arange(y.size), flipped)
    assert roc_auc_score(truth, without) < 0.7
    assert roc_auc_score(truth, with_model) >= 0.9


def test_unlabelled_items_get_nan_and_do_not_vote(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    labels: list[object] = [str(v) for v in y]
    for i in range(0, 600, 3):
        labels[i] = None
    codes, classes = ml.encode_labels(labels)
    assert classes == [str(c) for c in range(10)] and (codes[::3] == -1).all()
    idx, sims = knn_graph(x, 10)
    probs = ml.label_probs(x, idx, sims, codes, len(classes))
    scores = ml.mislabel_scores(probs, codes)
    assert np.isnan(scores[::3]).all() and not np.isnan(scores[1::3]).any()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # Unlabelled items still get a distribution: the argmax is mostly their true class.
    assert np.mean(probs[::3].argmax(axis=1) == y[::3]) >= 0.9


def test_model_probs_without_confidence_use_model_accuracy() -> None:
    codes = np.array([0, 1, 2, 0, -1])
    preds = np.array([0, 1, 0, 0, 2])
    probs = ml.model_label_probs(preds, None, codes, 3)
    assert probs[0, 0] == pytest.approx(0.75)  # 3 of 4 labelled predictions right
    assert probs[2, 2] == pytest.approx(0.125)
    assert probs[4, 2] == pytest.approx(0.75)
    assert np.isnan(ml.model_label_probs(np.array([-1]), None, np.array([0]), 3)).all()
