"""Clusters on planted blobs: found, with correct purity / error statistics and error ranking."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from core.analysis import clusters as cl
from core.analysis.knn import knn_graph


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, 32)) * 3
    truth = np.repeat(np.arange(5), 80)
    x = centres[truth] + rng.standard_normal((400, 32)) * 0.4
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def test_blobs_are_found() -> None:
    x, truth = _blobs()
    idx, sims = knn_graph(x, 10)
    found = cl.cluster_labels(idx, sims, x)
    kept = found != cl.NOISE
    assert kept.mean() >= 0.9
    assert len(set(found[kept])) == 5
    assert adjusted_rand_score(truth[kept], found[kept]) >= 0.95


def test_table_and_error_clusters_on_planted_errors() -> None:
    x, truth = _blobs(1)
    labels = np.array([f"c{t}" for t in truth], dtype=object)
    labels[truth == 4] = np.array(["c4"] * 60 + ["c0"] * 20, dtype=object)  # blob 4: 75% pure
    preds = labels.copy()
    blob2 = np.flatnonzero(truth == 2)
    preds[blob2[:30]] = "c3"  # the model fails on blob 2 ...
    preds[np.flatnonzero(truth == 0)[:2]] = "c1"  # ... and twice elsewhere
    preds[np.flatnonzero(truth == 1)[:5]] = None  # no prediction for 5 items
    idx, sims = knn_graph(x, 10)
    found = cl.cluster_labels(idx, sims, x)
    table = cl.cluster_table(x, found, labels, preds)
    assert len(table) == 5
    by_blob = {int(np.bincount(truth[found == c]).argmax()): row for c, row in
               zip(table["cluster"], table.to_dict("records"), strict=True)}
    blob4 = by_blob[4]
    assert blob4["top_labels"][:2] == ["c4", "c0"]
    assert abs(blob4["purity"] - 0.75) < 0.05
    blob2_row = by_blob[2]
    assert blob2_row["errors"] == np.sum((found == blob2_row["cluster"]) & np.isin(
        np.arange(400), blob2[:30]))
    assert by_blob[1]["predicted"] == by_blob[1]["size"] - int(
        np.sum((found == by_blob[1]["cluster"]) & np.isin(np.arange(400),
                                                             np.flatnonzero(truth == 1)[:5])))
    reps = blob2_row["representatives"]
    assert len(reps) == 5 and all(found[r] == blob2_row["cluster"] for r in reps)
    errors = cl.error_clusters(table, found, labels, preds)
    assert errors.iloc[0]["cluster"] == blob2_row["cluster"]
    assert errors.iloc[0]["lift"] > 3 and errors.iloc[0]["p_value"] < 1e-6
    assert errors.iloc[0]["top_confusion"].startswith("c2 -> c3")


def test_medoid_is_the_most_central_member() -> None:
    x, truth = _blobs(2)
    members = np.flatnonzero(truth == 3)
    sims = x[members] @ x[members].T
    assert cl.representatives(x, members, 1)[0] == members[np.argmax(sims.sum(axis=1))]


def test_disconnected_graph_and_tiny_input() -> None:
    x, _ = _blobs(3)
    far = np.vstack([x, -x[:12]])  # a small mirrored group the kNN graph cannot reach
    idx, sims = knn_graph(far, 5)
    found = cl.cluster_labels(idx, sims, far)
    assert found.shape == (412,)
    tiny = x[:4]
    idx, sims = knn_graph(tiny, 2)
    assert (cl.cluster_labels(idx, sims, tiny) == cl.NOISE).all()


def _planted(n: int, n_clusters: int = 8, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, 48)) * 3
    truth = rng.integers(0, n_clusters, n)
    x = centres[truth] + rng.standard_normal((n, 48)) * 0.5
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def test_sampled_clustering_recovers_planted_clusters_like_the_full_fit() -> None:
    x, truth = _planted(3000)
    idx, sims = knn_graph(x, 10)
    full = cl.cluster_labels(idx, sims, x, min_cluster_size=60)
    sampled = cl.cluster_labels(idx, sims, x, min_cluster_size=60, max_points=1000)
    assert sampled.shape == (3000,) and sampled.dtype == np.int64
    assert not (sampled == -2).any()  # every item placed: a cluster or noise
    for found in (full, sampled):
        assert adjusted_rand_score(truth, found) >= 0.9
        assert len(set(found[found != cl.NOISE])) == 8
    # the table and error ranking work on all n with the placed labels
    labels = np.array([f"c{t}" for t in truth], dtype=object)
    table = cl.cluster_table(x, sampled, labels, labels.copy())
    assert table["size"].sum() == int((sampled != cl.NOISE).sum())
    assert cl.error_clusters(table, sampled, labels, labels.copy()).empty


def test_placement_keeps_noise_next_to_noise_and_falls_back_to_centroids() -> None:
    x, truth = _planted(600, n_clusters=2)
    idx, sims = knn_graph(x, 5)
    labels = np.full(600, -2, dtype=np.int64)
    first0, first1 = np.flatnonzero(truth == 0)[:20], np.flatnonzero(truth == 1)[:20]
    labels[first0], labels[first1] = 0, cl.NOISE  # cluster 1's seeds are noise
    placed = cl.place_by_neighbours(labels.copy(), idx, sims, x)
    assert (placed[truth == 0] == 0).mean() >= 0.99
    assert (placed[truth == 1] == cl.NOISE).mean() >= 0.99
    # unreachable rows (no edges to placed items) take the nearest cluster centroid
    lonely = np.tile(np.arange(600)[:, None], (1, 5))  # every row its own only neighbour
    only = np.full(600, -2, dtype=np.int64)
    only[first0] = 0
    assert (cl.place_by_neighbours(only, lonely, np.ones((600, 5), np.float32), x) == 0).all()
