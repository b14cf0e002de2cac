"""Novelty and drift: a planted novel cluster in B is found; identical distributions are not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.analysis import drift
from core.analysis.clusters import cluster_labels
from core.analysis.knn import knn_graph
from core.analysis.novelty import novelty_scores


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def sets() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A: 4 blobs (500 items); B: the same 4 blobs (300) + a novel 5th blob (40); and a second
    sample of A's distribution. Returns (a, b, novel mask of b, a2)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 32)) * 2

    def sample(n: int, which: np.ndarray) -> np.ndarray:
        return _unit(centres[which[rng.integers(0, which.size, n)]]
                     + 0.5 * rng.standard_normal((n, 32)))

    a = sample(500, np.arange(4))
    b = np.vstack([sample(300, np.arange(4)), sample(40, np.array([4]))])
    return a, b, np.r_[np.zeros(300, bool), np.ones(40, bool)], sample(300, np.arange(4))


def test_novel_cluster_scores_highest(sets: tuple[np.ndarray, ...]) -> None:
    a, b, novel, _ = sets
    result = novelty_scores(a, b, 10)
    assert result.scores.shape == (340,)
    assert roc_auc_score(novel, result.scores) >= 0.99
    assert set(np.argsort(-result.scores)[:40]) == set(np.flatnonzero(novel))
    assert np.median(result.scores[~novel]) == pytest.approx(1.0, abs=0.25)
    assert np.allclose(result.nearest_sim, (b @ a.T).max(axis=1), atol=1e-5)


def test_domain_auc_high_for_drift_and_near_half_for_same(sets: tuple[np.ndarray, ...]) -> None:
    a, b, novel, a2 = sets
    assert drift.domain_classifier_auc(a, b[novel]) >= 0.95
    assert 0.35 <= drift.domain_classifier_auc(a, a2) <= 0.65


def test_knn_two_sample_and_regions(sets: tuple[np.ndarray, ...]) -> None:
    a, b, novel, a2 = sets
    joint = np.vstack([a, b])
    is_b = np.r_[np.zeros(500, bool), np.ones(340, bool)]
    idx, sims = knn_graph(joint, 10)
    assert drift.knn_two_sample(idx, is_b, permutations=99).p_value <= 0.02
    same = np.vstack([a, a2])
    same_idx, _ = knn_graph(same, 10)
    null = drift.knn_two_sample(same_idx, np.r_[np.zeros(500, bool), np.ones(300, bool)],
                                permutations=99)
    assert null.p_value > 0.01
    regions = cluster_labels(idx, sims, joint)
    table = drift.region_table(regions, is_b)
    novel_region = np.bincount(regions[500:][novel][regions[500:][novel] >= 0]).argmax()
    row = table.set_index("region").loc[novel_region]
    assert row["status"] == "only in B" and row["n_a"] == 0 and row["n_b"] >= 35
    assert table.iloc[0]["region"] == novel_region  # largest deviation first
    assert (table.set_index("region").drop(novel_region)["status"] == "balanced").all()


def test_label_distribution_and_total_variation() -> None:
    la = np.array(["cat"] * 50 + ["dog"] * 50 + [None] * 5, dtype=object)
    lb = np.array(["cat"] * 20 + ["dog"] * 60 + ["fox"] * 20, dtype=object)
    table, tv = drift.label_distribution(la, lb)
    assert list(table["label"]) == ["cat", "dog", "fox"]
    assert list(table["count_a"]) == [50, 50, 0] and list(table["count_b"]) == [20, 60, 20]
    assert tv == pytest.approx(0.5 * (0.3 + 0.1 + 0.2))
    _, unknown = drift.label_distribution(la, np.array([None, None], dtype=object))
    assert np.isnan(unknown)
