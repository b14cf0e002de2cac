"""HDBSCAN clusters on the shared kNN graph, with per-cluster label and error statistics."""

from __future__ import annotations

import logging
import warnings
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.stats import binom
from sklearn.cluster import HDBSCAN

from core.analysis.knn import knn_graph
from core.linalg import l2_normalise

logger = logging.getLogger(__name__)

NOISE = -1
_MIN_DISTANCE = np.float32(1e-6)  # explicit zeros would be read as missing edges
# Above this many points HDBSCAN runs on a seeded sample of this size and the rest is placed by
# its neighbours: HDBSCAN's tree grows super-linearly (5.5 s at 100k, minutes and GBs at 1M).
CLUSTER_SAMPLE_MAX = 100_000
_UNSET = -2  # not yet placed (propagation)
_PLACE_ROUNDS = 12
_BLOCK_ROWS = 65_536  # rows per block of the centroid fallback


class Rows(Protocol):
    """What the clustering reads of the vectors: shape and rows by integer index (a numpy array,
    or two sets seen as one without a stacked copy, as compare does)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, rows: np.ndarray, /) -> np.ndarray: ...


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
) -> np.ndarray:
    """HDBSCAN cluster id per item (-1 = noise), from the kNN graph instead of all pairs.

    HDBSCAN only needs each point's core distance (distance to its min_samples-th neighbour)
    and the minimum spanning tree of mutual-reachability distances; both live on short edges,
    which the kNN graph holds. So scikit-learn's HDBSCAN runs on the sparse kNN distance graph
    (metric="precomputed"): seconds at 100k points instead of a full O(n^2) pass. Components
    the kNN graph leaves disconnected are joined by the true distances between their
    representatives. Above max_points items, HDBSCAN clusters a seeded sample of max_points
    (its own kNN graph, min_cluster_size scaled by the sampling rate) and every other item takes
    the cluster of its nearest placed neighbours (place_by_neighbours). idx, sims: (n, k) kNN
    graph; vectors: (n, d) L2-normalised. Returns (n,) int64.
    """
    n, k = idx.shape
    min_cluster_size = min_cluster_size or default_min_cluster_size(n)
    min_samples = min(k, min_samples or 5)
    if n <= max_points:
        return _hdbscan(idx, sims, vectors, min_cluster_size, min_samples)
    sample = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    sx = vectors[sample]
    s_idx, s_sims = knn_graph(sx, k, seed=seed)
    scaled = max(min_samples + 1, int(round(min_cluster_size * max_points / n)))
    labels = np.full(n, _UNSET, dtype=np.int64)
    labels[sample] = _hdbscan(s_idx, s_sims, sx, scaled, min_samples)
    logger.info("clusters: HDBSCAN on a sample of %d of %d items, the rest placed", max_points, n)
    return place_by_neighbours(labels, idx, sims, vectors)


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


def place_by_neighbours(labels: np.ndarray, idx: np.ndarray, sims: np.ndarray,
                        vectors: Rows) -> np.ndarray:
    """Fill the unplaced entries (-2) of labels from the kNN graph: each takes the label (a
    cluster, or noise) with the most similarity among its placed neighbours, in rounds, so
    items next to placed items are placed first and their neighbours next. Items no round
    reaches take the nearest cluster centroid by cosine. labels: (n,) int64, modified and returned.
    """
    for _ in range(_PLACE_ROUNDS):
        todo = np.flatnonzero(labels == _UNSET)
        if todo.size == 0:
            return labels
        rows, votes = _vote(labels[idx[todo]], sims[todo])
        if rows.size == 0:
            break
        labels[todo[rows]] = votes  # placed together: a round reads only earlier rounds
    todo = np.flatnonzero(labels == _UNSET)
    if todo.size:
        labels[todo] = _nearest_centroid(labels, vectors, todo)
    return labels


def _vote(nb: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of neighbour labels nb (u, k) with weights w, the label of most summed weight
    among placed neighbours (ties: the smaller label). Returns (rows with a vote, their labels)."""
    row, col = np.nonzero(nb != _UNSET)
    if row.size == 0:
        return row, row
    keys, inverse = np.unique(np.stack([row, nb[row, col]], axis=1), axis=0, return_inverse=True)
    score = np.bincount(inverse.ravel(), weights=np.maximum(w[row, col], 0) + 1e-6)
    best = np.lexsort((keys[:, 1], -score, keys[:, 0]))
    first = np.r_[True, keys[best[1:], 0] != keys[best[:-1], 0]]
    return keys[best[first], 0], keys[best[first], 1]


def _nearest_centroid(labels: np.ndarray, vectors: Rows, rows: np.ndarray) -> np.ndarray:
    """Cluster of the nearest normalised cluster mean for each of rows (noise when none)."""
    placed = np.flatnonzero(labels >= 0)
    if placed.size == 0:
        return np.full(rows.size, NOISE, dtype=np.int64)
    names = np.unique(labels[placed])
    cent = np.zeros((names.size, vectors.shape[1]), dtype=np.float64)
    for start in range(0, placed.size, _BLOCK_ROWS):
        chunk = placed[start:start + _BLOCK_ROWS]
        # one-hot (clusters x rows) times the rows: the sums per cluster in one product
        onehot = csr_matrix((np.ones(chunk.size), (np.searchsorted(names, labels[chunk]), np.arange(chunk.size))),
                            shape=(names.size, chunk.size))
        cent += onehot @ vectors[chunk].astype(np.float64)
    cent = l2_normalise(cent)
    out = np.empty(rows.size, dtype=np.int64)
    for start in range(0, rows.size, _BLOCK_ROWS):
        out[start:start + _BLOCK_ROWS] = names[np.argmax(vectors[rows[start:start + _BLOCK_ROWS]] @ cent.T, axis=1)]
    return out


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


def error_clusters(
    table: pd.DataFrame, clusters: np.ndarray, labels: np.ndarray, predictions: np.ndarray
) -> pd.DataFrame:
    """Clusters where model errors concentrate, most excess errors first.

    excess_errors = errors - predicted * global_error_rate: how many more errors the cluster
    holds than its share, so a big cluster at 3x the global rate outranks a tiny pure one.
    lift = error_rate / global rate; p_value: binomial chance of >= errors at the global rate;
    top_confusion: the commonest "label -> prediction" among the cluster's errors.
    Only clusters with >= 2 errors and lift > 1 are kept.
    """
    both = np.array([a is not None and b is not None for a, b in zip(labels, predictions, strict=True)])
    wrong = both & (labels.astype(str) != predictions.astype(str))
    rate = float(wrong.sum() / both.sum()) if both.any() else 0.0
    out = table[["cluster", "size", "predicted", "errors", "error_rate", "top_labels"]].copy()
    out["lift"] = out["error_rate"] / rate if rate > 0 else np.nan
    out["excess_errors"] = out["errors"] - out["predicted"] * rate
    out["p_value"] = binom.sf(out["errors"] - 1, out["predicted"], rate) if rate > 0 else np.nan
    out["top_confusion"] = [_top_confusion(clusters == c, wrong, labels, predictions)
                            for c in out["cluster"]]
    out = out[(out["errors"] >= 2) & (out["lift"] > 1)]
    return out.sort_values(["excess_errors", "cluster"], ascending=[False, True]).reset_index(
        drop=True)


def _top_confusion(in_cluster: np.ndarray, wrong: np.ndarray, labels: np.ndarray,
                   predictions: np.ndarray) -> str:
    sel = np.flatnonzero(in_cluster & wrong)
    if sel.size == 0:
        return ""
    pairs = pd.Series([f"{labels[i]} -> {predictions[i]}" for i in sel]).value_counts()
    return f"{pairs.index[0]} ({int(pairs.iloc[0])})"
