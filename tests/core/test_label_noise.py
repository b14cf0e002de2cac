"""The noisy channel of the given labels: the temperature and random-label rate come back from labels drawn from it."""

from __future__ import annotations

import numpy as np

from core.analysis.label_noise import fit_label_noise, flip_posterior


def _channel(n: int, n_classes: int, temperature: float, rate: float, seed: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities too soft by `temperature` (the truth is softmax(log p / T)), labels drawn from the
    truth, then `rate` of them replaced by another class at random. Returns (probs, labels, flipped)."""
    rng = np.random.default_rng(seed)
    logits = 2.5 * rng.standard_normal((n, n_classes))
    truth = np.exp(logits - logits.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    soft = truth ** temperature  # log(soft) / T = log(truth) + const
    probs = (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)
    clean = (truth.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(max=n_classes - 1)
    flipped = rng.random(n) < rate
    labels = np.where(flipped, (clean + rng.integers(1, n_classes, n)) % n_classes, clean)
    return probs, labels, flipped


def test_the_temperature_and_rate_of_a_known_channel_come_back() -> None:
    probs, labels, flipped = _channel(8000, 5, temperature=0.5, rate=0.08, seed=0)
    labels[:200] = -1  # unlabeled items are left out of the fit
    noise = fit_label_noise(probs, labels)
    assert 0.4 <= noise.temperature <= 0.62 and abs(noise.rate - flipped[200:].mean()) <= 0.02, noise
    posterior = flip_posterior(probs[200:], labels[200:], noise)
    assert posterior[flipped[200:]].mean() > 3 * posterior[~flipped[200:]].mean()
    assert ((posterior >= 0) & (posterior <= 1)).all()


def test_clean_labels_fit_no_random_labels() -> None:
    probs, labels, _ = _channel(4000, 3, temperature=1.0, rate=0.0, seed=1)
    noise = fit_label_noise(probs, labels)
    assert noise.rate <= 0.01 and 0.85 <= noise.temperature <= 1.15, noise
    assert flip_posterior(probs, labels, noise).mean() <= 0.01


def test_no_labels_or_one_class_fit_nothing() -> None:
    probs = np.full((5, 3), 1 / 3, dtype=np.float32)
    assert fit_label_noise(probs, np.full(5, -1)).rate == 0.0
    assert fit_label_noise(np.ones((5, 1), dtype=np.float32), np.zeros(5, dtype=np.int64)).rate == 0.0


def test_the_fitted_temperature_restores_the_true_probabilities() -> None:
    from core.analysis.label_noise import temper

    probs, labels, _ = _channel(6000, 4, temperature=0.5, rate=0.05, seed=2)
    restored = temper(probs, fit_label_noise(probs, labels).temperature)
    truth = temper(probs, 0.5)  # softmax(log p / 0.5): the channel's own probabilities
    assert np.allclose(restored.sum(axis=1), 1.0, atol=1e-5)
    assert (restored.argmax(axis=1) == probs.argmax(axis=1)).all()  # the order within a row is kept
    assert np.abs(restored - truth).max() < 0.05
    assert temper(probs, 1.0) is probs
