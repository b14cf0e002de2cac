"""The demo's data and model: scikit-learn's digits, split with planted drift, and a small MLP.

Everything here is deterministic for a seed and offline (load_digits ships with scikit-learn).
Planted structure, so the dashboard has something to find:
  * drift: every 9 is held out of train and test and goes to production, so the classifier has
    never seen the class that production brings (its 9s get confident wrong predictions);
  * label noise: a few train labels are flipped (meta.true_label keeps the truth);
  * unlabeled production: a quarter of production has no label;
  * model errors: the MLP's own mistakes on test / production.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.neural_network import MLPClassifier

HELD_OUT = 9  # the digit class only production has
SPLITS: tuple[str, ...] = ("train", "test", "production")
TRAIN_SHARE, TEST_SHARE = 0.6, 0.2  # of all 1797 digits; production gets the rest (+ every 9)
NOISY_SHARE = 0.02  # share of train labels flipped
UNLABELED_SHARE = 0.25  # share of production left without a label
HIDDEN = 64  # width of the MLP's hidden (penultimate) layer: the "demo-mlp" space's dim


@dataclass(frozen=True)
class DemoData:
    """The digits and everything planted on them; row i is load_digits() sample i.

    images: (n, 8, 8) float in [0, 16]; truth: (n,) int; split: (n,) str;
    label: (n,) object, the label shown to the user (str, flipped for noisy rows, None where
    unlabeled); noisy: (n,) bool; prediction: (n,) str; confidence: (n,) float32;
    embedding: (n, HIDDEN) float32, the MLP's penultimate activations; pixels: (n, 64) float32.
    """

    images: np.ndarray
    truth: np.ndarray
    split: np.ndarray
    label: np.ndarray
    noisy: np.ndarray
    prediction: np.ndarray
    confidence: np.ndarray
    embedding: np.ndarray
    pixels: np.ndarray


def assign_splits(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n,) split names: HELD_OUT rows all go to production; the rest are shuffled into train
    (TRAIN_SHARE of all rows), test (TEST_SHARE) and production (what is left)."""
    n = len(truth)
    rng = np.random.default_rng(seed)
    known = rng.permutation(np.flatnonzero(truth != HELD_OUT))
    n_train, n_test = round(TRAIN_SHARE * n), round(TEST_SHARE * n)
    split = np.full(n, "production", dtype=object)
    split[known[:n_train]] = "train"
    split[known[n_train:n_train + n_test]] = "test"
    return split


def plant_labels(truth: np.ndarray, split: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(labels (n,) object of str / None, noisy (n,) bool): truth as text, a NOISY_SHARE of train
    flipped to another seen class, an UNLABELED_SHARE of production set to None."""
    rng = np.random.default_rng(seed + 1)
    labels = np.array([str(t) for t in truth], dtype=object)
    noisy = np.zeros(len(truth), dtype=bool)
    train = np.flatnonzero(split == "train")
    flips = rng.choice(train, round(NOISY_SHARE * len(train)), replace=False)
    seen = [c for c in range(10) if c != HELD_OUT]
    for row in flips:
        labels[row] = str(rng.choice([c for c in seen if c != truth[row]]))
    noisy[flips] = True
    prod = np.flatnonzero(split == "production")
    labels[rng.choice(prod, round(UNLABELED_SHARE * len(prod)), replace=False)] = None
    return labels, noisy


def train_mlp(x: np.ndarray, labels: np.ndarray, seed: int = 0) -> MLPClassifier:
    """A one-hidden-layer MLPClassifier (HIDDEN ReLU units) fitted on x (n, 64) in [0, 1]."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), max_iter=400, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a demo model; 400 epochs is plenty
        clf.fit(x, labels)
    return clf


def penultimate(clf: MLPClassifier, x: np.ndarray) -> np.ndarray:
    """(n, HIDDEN) float32: the hidden layer's ReLU activations, the layer before the softmax."""
    weights, bias = clf.coefs_[0], clf.intercepts_[0]
    return np.maximum(x @ weights + bias, 0.0).astype(np.float32)


def build_demo_data(seed: int = 0) -> DemoData:
    """Load the digits, plant the structure, train the MLP on train, embed and predict all rows."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64)
    truth = np.asarray(digits.target, dtype=int)
    x = (images.reshape(len(images), -1) / 16.0).astype(np.float32)
    split = assign_splits(truth, seed)
    labels, noisy = plant_labels(truth, split, seed)
    train = split == "train"
    clf = train_mlp(x[train], labels[train].astype(str), seed)
    proba = clf.predict_proba(x)
    classes = np.asarray(clf.classes_)
    prediction = classes[proba.argmax(axis=1)].astype(object)
    return DemoData(
        images=images, truth=truth, split=split, label=labels, noisy=noisy, prediction=prediction,
        confidence=proba.max(axis=1).astype(np.float32), embedding=penultimate(clf, x),
        pixels=x.copy(),
    )
