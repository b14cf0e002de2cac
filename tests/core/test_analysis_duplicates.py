"""Near-duplicates: planted copies are grouped, chains merge, cross-dataset copies are leakage."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.duplicates import (
    cross_dataset_groups,
    duplicate_cutoff,
    duplicate_groups,
    group_members,
)
from core.analysis.knn import knn_graph


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def planted() -> tuple[np.ndarray, list[set[int]]]:
    """300 distinct points, then: 3 copies of point 0 (slightly perturbed), 1 copy of point 1,
    and a chain 2 -> 303+... where each link is a tiny step. Returns (vectors, expected groups)."""
    rng = np.random.default_rng(0)
    base = _unit(rng.standard_normal((300, 64)))
    copies = [base[0] + 0.01 * rng.standard_normal(64) for _ in range(3)]
    copies.append(base[1] + 0.01 * rng.standard_normal(64))
    chain = [base[2]]
    for _ in range(3):  # each step ~0.12 apart: neighbours are near-duplicates, ends are not
        chain.append(chain[-1] + 0.12 * _unit(rng.standard_normal((1, 64)))[0])
    x = _unit(np.vstack([base, np.array(copies), np.array(chain[1:])]))
    groups = [{0, 300, 301, 302}, {1, 303}, {2, 304, 305, 306}]
    return x, groups


def test_planted_duplicates_form_groups_biggest_first(
    planted: tuple[np.ndarray, list[set[int]]],
) -> None:
    x, expected = planted
    idx, sims = knn_graph(x, 5)
    assert float(x[2] @ x[306]) < 0.98  # the chain's ends alone would not be duplicates
    groups = duplicate_groups(idx, sims, threshold=0.99)
    found = [set(m.tolist()) for m in group_members(groups)]
    assert sorted(found, key=min) == sorted(expected, key=min)
    sizes = [len(m) for m in found]
    assert sizes == sorted(sizes, reverse=True)
    assert (groups[3:300] == -1).all()


def test_cross_dataset_groups_flag_leakage(planted: tuple[np.ndarray, list[set[int]]]) -> None:
    x, _ = planted
    idx, sims = knn_graph(x, 5)
    groups = duplicate_groups(idx, sims, threshold=0.99)
    dataset = np.zeros(x.shape[0], dtype=np.int64)
    dataset[301] = 1  # one copy of point 0 sits in the test set
    leak = cross_dataset_groups(groups, dataset)
    assert set(np.flatnonzero(leak)) == {0, 300, 301, 302}


def test_no_duplicates_and_bad_threshold() -> None:
    x = _unit(np.random.default_rng(1).standard_normal((50, 32)))
    idx, sims = knn_graph(x, 4)
    groups = duplicate_groups(idx, sims)
    assert (groups == -1).all() and group_members(groups) == []
    assert not cross_dataset_groups(groups, np.zeros(50, dtype=np.int64)).any()
    with pytest.raises(ValueError, match="threshold"):
        duplicate_groups(idx, sims, threshold=1.5)


def test_a_tightly_packed_space_flags_only_true_copies() -> None:
    # Like a classifier's penultimate layer: every item is within cosine 0.98 of its neighbours,
    # so an absolute threshold alone would call everything a duplicate.
    rng = np.random.default_rng(2)
    centre = rng.standard_normal(32)
    x = _unit(centre + 0.02 * np.linalg.norm(centre) * rng.standard_normal((200, 32)) / np.sqrt(32))
    x = np.vstack([x, x[:3] + 1e-5])
    idx, sims = knn_graph(_unit(x), 5)
    assert np.median(sims[:, 0]) > 0.98
    groups = duplicate_groups(idx, sims)
    assert [set(m.tolist()) for m in group_members(groups)] == [{0, 200}, {1, 201}, {2, 202}]
    assert duplicate_cutoff(sims[:, 0]) > 0.99
    with pytest.raises(ValueError, match="relative"):
        duplicate_cutoff(sims[:, 0], relative=0)
