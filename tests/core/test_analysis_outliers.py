"""Outlier scores and their cut-off: planted outliers rank on top and are flagged, clean data is not."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.knn import knn_graph
from core.analysis.outliers import likely_outliers, outlier_scores


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _planted(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """600 points in 4 blobs whose spreads differ 6x, plus 8 isolated points and 4 points just
    off the two tightest blobs. Returns (vectors, indices of the 12 planted outliers)."""
    rng = np.random.default_rng(seed)
    d = 32
    centres = rng.standard_normal((4, d))
    spread = np.array([0.05, 0.05, 0.15, 0.3])
    lab = rng.integers(0, 4, 600)
    inliers = centres[lab] + rng.standard_normal((600, d)) * spread[lab, None] * 3 / np.sqrt(d)
    isolated = rng.standard_normal((8, d))
    off = centres[[0, 0, 1, 1]] + rng.standard_normal((4, d)) * 0.25
    x = _unit(np.vstack([inliers, isolated, off]))
    return x, np.arange(600, 612)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_outliers_rank_first(seed: int) -> None:
    x, planted = _planted(seed)
    idx, sims = knn_graph(x, 10)
    scores = outlier_scores(idx, sims)
    assert scores.shape == (612,) and scores.dtype == np.float32
    top = np.argsort(-scores)[: planted.size]
    assert set(top) == set(planted)


def test_plain_knn_distance_is_fooled_by_a_diffuse_blob() -> None:
    # Why the default blends in the local ratio: with plain kNN distance some members of the
    # diffuse blob outrank outliers that sit just off a tight blob.
    hits = []
    for seed in range(3):
        x, planted = _planted(seed)
        idx, sims = knn_graph(x, 10)
        top = np.argsort(-outlier_scores(idx, sims, method="knn"))[: planted.size]
        hits.append(len(set(top) & set(planted)))
    assert min(hits) < planted.size


def test_duplicates_keep_scores_finite_and_unknown_method_fails() -> None:
    x, _ = _planted(0)
    x = np.vstack([x, x[:20], x[:20]])
    idx, sims = knn_graph(x, 3)
    assert np.isfinite(outlier_scores(idx, sims)).all()
    with pytest.raises(ValueError, match="method must be one of"):
        outlier_scores(idx, sims, method="iforest")  # type: ignore[arg-type]


def _digits(seed: int, n_noise: int) -> tuple[np.ndarray, np.ndarray]:
    """Real images: 600 sklearn digits (pixels, L2-normalised) plus n_noise uniform-noise images
    with the digits' pixel range (a few: many would be each other's neighbours, a small cluster).
    Returns (vectors, indices of the noise images)."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits().data
    clean = digits[rng.choice(len(digits), 600, replace=False)]
    noise = rng.uniform(0, 16, (n_noise, digits.shape[1]))
    return _unit(np.vstack([clean, noise])), np.arange(600, 600 + n_noise)


@pytest.mark.parametrize("seed", [0, 1])
def test_likely_outliers_flag_planted_items_and_spare_clean_data(seed: int) -> None:
    for x, planted in (_planted(seed), _digits(seed, 3)):
        idx, sims = knn_graph(x, 10)
        mask, precision = likely_outliers(outlier_scores(idx, sims), idx)
        assert mask.dtype == bool and mask.shape == (len(x),)
        hits = int(mask[planted].sum())
        assert hits == planted.size, (hits, planted.size)
        assert int(mask.sum()) - hits <= 2
        assert precision is not None and 0.5 <= precision <= 1.0
        # The same data without the planted items: next to nothing is flagged.
        clean = np.delete(x, planted, axis=0)
        idx, sims = knn_graph(clean, 10)
        mask, _ = likely_outliers(outlier_scores(idx, sims), idx)
        assert int(mask.sum()) <= 1


def test_likely_outliers_small_clean_set_and_edge_cases() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 16)) * 3
    x = _unit(centres[np.arange(30) % 3] + rng.standard_normal((30, 16)))
    idx, sims = knn_graph(x, 5)
    mask, precision = likely_outliers(outlier_scores(idx, sims), idx)
    assert not mask.any() and precision is None
    # Too few scores to have a bulk, NaN scores, a constant space: nothing flagged.
    assert not likely_outliers(np.array([1.0, 1.0, 50.0], dtype=np.float32))[0].any()
    scores = np.r_[np.ones(40), np.nan, 40.0].astype(np.float32)
    mask, _ = likely_outliers(scores)
    assert mask.tolist() == [False] * 41 + [True]
    with pytest.raises(ValueError, match="z > 0"):
        likely_outliers(scores, z=0)
