"""The shared kNN graph: exact results, self excluded, IVF recall, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.knn import knn_between, knn_graph, knn_search, recall_at_k


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, d: int = 24, centres: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    return _unit(c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, d)))


def test_exact_graph_matches_brute_force_and_excludes_self() -> None:
    x = _clustered(300)
    idx, sims = knn_graph(x, 7, method="exact")
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    expected = np.sort(full, axis=1)[:, ::-1][:, :7]
    assert idx.shape == (300, 7) and sims.dtype == np.float32
    assert not (idx == np.arange(300)[:, None]).any()
    np.testing.assert_allclose(sims, expected, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # nearest first
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), sims, atol=1e-5)


def test_duplicate_rows_find_each_other_not_themselves() -> None:
    x = _clustered(50)
    x = np.vstack([x, x[:5]])  # rows 50..54 copy rows 0..4
    idx, sims = knn_graph(x, 1, method="exact")
    assert list(idx[50:55, 0]) == [0, 1, 2, 3, 4]
    assert np.allclose(sims[50:55, 0], 1.0, atol=1e-5)


def test_ivf_recall_is_high_on_clustered_data() -> None:
    x = _clustered(3000, seed=1)
    exact, _ = knn_graph(x, 10, method="exact")
    approx, _ = knn_graph(x, 10, method="ivf")
    assert not (approx == np.arange(3000)[:, None]).any()
    assert recall_at_k(approx, exact) >= 0.95


def test_search_between_sets_matches_exact() -> None:
    both = _clustered(1000, seed=2)
    a, b = both[:800], both[800:]
    idx, sims = knn_search(b, a, 5, method="exact")
    truth = np.argsort(-(b @ a.T), axis=1)[:, :5]
    assert recall_at_k(idx, truth) == 1.0
    ivf_idx, _ = knn_search(b, a, 5, method="ivf")
    assert recall_at_k(ivf_idx, truth) >= 0.9


def test_blocks_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _clustered(400, seed=4)
    whole = knn_between(x, x, 5, exclude=np.arange(400))
    monkeypatch.setattr("core.analysis.knn._BLOCK_VALUES", 400 * 7)  # blocks of 7 rows
    blocked = knn_between(x, x, 5, exclude=np.arange(400))
    np.testing.assert_array_equal(whole[0], blocked[0])


def test_bad_inputs_raise_value_errors() -> None:
    x = _clustered(20)
    with pytest.raises(ValueError, match="k must be"):
        knn_graph(x, 20)
    with pytest.raises(ValueError, match="method must be one of"):
        knn_graph(x, 3, method="hnsw")  # type: ignore[arg-type]
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        knn_graph(bad, 3)
