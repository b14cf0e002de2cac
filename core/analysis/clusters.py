"""Clusters of the shared kNN graph (graph communities, or HDBSCAN), sampled for large n; per-cluster stats."""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from sklearn.cluster import HDBSCAN

from core.analysis.cluster_errors import error_clusters
from core.analysis.cluster_place import NOISE, UNSET, Rows, place_by_neighbours
from core.analysis.communities import cohesion, knn_affinity, louvain, merge_loose
from core.analysis.knn import knn_graph

logger = logging.getLogger(__name__)

__all__ = ["NOISE", "Rows", "cluster_labels", "cluster_table", "error_clusters", "place_by_neighbours",
           "representatives"]
ClusterMethod = Literal["graph", "hdbscan"]
CLUSTER_METHODS: tuple[str, ...] = ("graph", "hdbscan")
# A community keeps at least this share of its members' nearest neighbours inside, else it is merged
# into its neighbours: real groups keep most, while the pieces modularity carves out of a
# structureless cloud keep far fewer (so isotropic noise merges into one group: no clusters).
MIN_COHESION = 0.6
_MIN_DISTANCE = np.float32(1e-6)  # explicit zeros would be read as missing edges
# Above this many points the clustering runs on a seeded sample of this size and the rest is placed
# by its neighbours: HDBSCAN's tree grows super-linearly (5.5 s at 100k, minutes and GBs at 1M), and
# the sample keeps the graph method's time and memory bounded too.
CLUSTER_SAMPLE_MAX = 100_000


def default_min_cluster_size(n: int) -> int:
    """~sqrt(n)/2, at least 5: a few dozen clusters whatever the size of the data."""
    return max(5, int(round(np.sqrt(n) / 2)))


def cluster_labels(
    idx: np.ndarray,
    sims: np.ndarray,
    vectors: Rows,
    *,
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    max_points: int = CLUSTER_SAMPLE_MAX,
    seed: int = 0,
    method: ClusterMethod = "graph",
) -> np.ndarray:
    """Cluster id per item (-1 = noise), from the kNN graph instead of all pairs.

    method "graph" (default): communities of the kNN graph (core.analysis.communities: Louvain on
    locally scaled similarities), those keeping fewer than MIN_COHESION of their members' neighbours
    inside merged into their neighbours, then those under min_cluster_size are noise (graph_clusters).
    It finds the classes of high-dimensional spaces where density-based clustering sees only noise,
    and stays near-linear.
    method "hdbscan": HDBSCAN on the sparse kNN distance graph (core distances and the
    mutual-reachability MST live on short edges; min_samples is its only user). Above max_points
    items either method clusters a seeded sample of max_points (its own kNN graph,
    min_cluster_size scaled by the sampling rate) and every other item takes the cluster of its
    nearest placed neighbours (place_by_neighbours). idx, sims: (n, k) kNN graph; vectors: (n, d)
    L2-normalised. Returns (n,) int64, clusters numbered largest first (graph).
    """
    if method not in CLUSTER_METHODS:
        raise ValueError(f"method must be one of {CLUSTER_METHODS}, got {method!r}")
    n, k = idx.shape
    min_cluster_size = min_cluster_size or default_min_cluster_size(n)
    min_samples = min(k, min_samples or 5)
    if n <= max_points:
        return _cluster(idx, sims, vectors, min_cluster_size, min_samples, method, seed)
    sample = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    sx = vectors[sample]
    s_idx, s_sims = knn_graph(sx, k, seed=seed)
    scaled = max(min_samples + 1, int(round(min_cluster_size * max_points / n)))
    labels = np.full(n, UNSET, dtype=np.int64)
    labels[sample] = _cluster(s_idx, s_sims, sx, scaled, min_samples, method, seed)
    logger.info("clusters (%s) on a sample of %d of %d items, the rest placed", method, max_points, n)
    return place_by_neighbours(labels, idx, sims, vectors)


def _cluster(idx: np.ndarray, sims: np.ndarray, vectors: Rows, min_cluster_size: int, min_samples: int,
             method: ClusterMethod, seed: int) -> np.ndarray:
    if method == "hdbscan":
        return _hdbscan(idx, sims, vectors, min_cluster_size, min_samples)
    return graph_clusters(idx, sims, min_cluster_size, seed=seed)


def graph_clusters(idx: np.ndarray, sims: np.ndarray, min_cluster_size: int, *, seed: int = 0,
                   min_cohesion: float = MIN_COHESION) -> np.ndarray:
    """Louvain communities of the kNN graph, loose ones merged into their neighbours
    (communities.merge_loose); communities under min_cluster_size are noise, and so is everything
    when fewer than two clusters are left (one group is no structure). Returns (n,) int64, clusters
    numbered 0.. largest first."""
    n = idx.shape[0]
    if n < min_cluster_size:
        return np.full(n, NOISE, dtype=np.int64)
    found = louvain(knn_affinity(idx, sims), seed=seed)
    comm = merge_loose(idx, found, min_cohesion)
    sizes = np.bincount(comm)
    keep = sizes >= min_cluster_size
    logger.info("clusters: %d communities, %d after merging loose ones, %d of >= %d items (cohesion: %s)",
                int(found.max()) + 1, int((sizes > 0).sum()), int(keep.sum()), min_cluster_size,
                np.round(cohesion(idx, comm)[keep][:8], 2).tolist())
    if keep.sum() < 2:
        return np.full(n, NOISE, dtype=np.int64)
    renumber = np.full(sizes.size, NOISE, dtype=np.int64)
    renumber[keep] = np.arange(int(keep.sum()))  # communities come largest first already
    return renumber[comm]


def _hdbscan(idx: np.ndarray, sims: np.ndarray, vectors: Rows, min_cluster_size: int,
             min_samples: int) -> np.ndarray:
    n, k = idx.shape
    if n < max(min_cluster_size, min_samples + 1):
        return np.full(n, NOISE, dtype=np.int64)
    dist = csr_matrix(
        (np.maximum(1.0 - sims.ravel(), _MIN_DISTANCE), (np.repeat(np.arange(n), k), idx.ravel())),
        shape=(n, n),
    )
    dist = _connect_components(dist.maximum(dist.T).tocsr(), vectors)
    model = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                    metric="precomputed", copy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return model.fit_predict(dist).astype(np.int64)


def _connect_components(dist: csr_matrix, vectors: Rows) -> csr_matrix:
    """Join the graph's components with edges between their first members (true distances):
    the MST of those members when there are few, else a star to the largest component."""
    n_comp, comp = connected_components(dist, directed=False)
    if n_comp == 1:
        return dist
    reps = np.unique(comp, return_index=True)[1]
    rv = vectors[reps]
    if n_comp <= 3000:
        tree = minimum_spanning_tree(np.maximum(1.0 - rv @ rv.T, _MIN_DISTANCE)).tocoo()
        a, b, d = reps[tree.row], reps[tree.col], tree.data
    else:
        hub = int(np.argmax(np.bincount(comp)))
        others = np.delete(np.arange(n_comp), hub)
        a, b = np.full(others.size, reps[hub]), reps[others]
        d = np.maximum(1.0 - rv[others] @ rv[hub], _MIN_DISTANCE)
    extra = csr_matrix((np.r_[d, d], (np.r_[a, b], np.r_[b, a])), shape=dist.shape)
    return dist.maximum(extra).tocsr()


def representatives(vectors: Rows, members: np.ndarray, count: int = 5) -> np.ndarray:
    """The medoid of a cluster first, then the members most similar to it. (count,) indices.

    Under cosine similarity the medoid (max summed similarity to the others) is exactly the
    member closest to the members' mean direction: x_i . sum_j x_j, O(m d) instead of O(m^2 d).
    """
    x = vectors[members]
    medoid = int(np.argmax(x @ x.sum(axis=0)))
    order = np.argsort(-(x @ x[medoid]), kind="stable")
    return members[order[:count]]


def cluster_table(
    vectors: np.ndarray,
    clusters: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    *,
    n_representatives: int = 5,
) -> pd.DataFrame:
    """One row per cluster (noise excluded): size, labelled, top_labels, top_label_counts,
    purity (share of the commonest label among labelled members), predicted, errors
    (prediction != label where both exist), error_rate, representatives (member indices).

    vectors: (n, d); clusters: (n,) int; labels, predictions: (n,) object arrays, None = missing.
    """
    rows = []
    for c in np.unique(clusters[clusters != NOISE]):
        members = np.flatnonzero(clusters == c)
        lab, pred = labels[members], predictions[members]
        has_lab = np.array([v is not None for v in lab])
        both = has_lab & np.array([v is not None for v in pred])
        names, counts = np.unique(lab[has_lab].astype(str), return_counts=True)
        top = np.argsort(-counts, kind="stable")[:3]
        errors = int(np.sum(lab[both].astype(str) != pred[both].astype(str)))
        rows.append({
            "cluster": int(c), "size": int(members.size), "labelled": int(has_lab.sum()),
            "top_labels": [str(v) for v in names[top]],
            "top_label_counts": [int(v) for v in counts[top]],
            "purity": float(counts.max() / has_lab.sum()) if has_lab.any() else float("nan"),
            "predicted": int(both.sum()), "errors": errors,
            "error_rate": errors / int(both.sum()) if both.any() else float("nan"),
            "representatives": [int(v) for v in representatives(vectors, members,
                                                                 n_representatives)],
        })
    columns = ["cluster", "size", "labelled", "top_labels", "top_label_counts", "purity",
               "predicted", "errors", "error_rate", "representatives"]
    return pd.DataFrame(rows, columns=columns)
