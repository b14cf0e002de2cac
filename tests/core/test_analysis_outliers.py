"""Outlier scores: planted outliers rank on top, on blobs of very different densities."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.knn import knn_graph
from core.analysis.outliers import outlier_scores


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
