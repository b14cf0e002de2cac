"""Graph communities of the kNN graph: Louvain modularity on locally scaled similarities, with cohesion.

Why a graph method: in high-dimensional embedding spaces (a 1280-d CNN, a 512-d CLIP) distances
concentrate, so density-based HDBSCAN sees every point's core distance alike and labels all points
as noise (1,797 digits through EfficientNet-Lite0: zero clusters). Communities of the kNN graph only
need each point's neighbours to be mostly its own kind, which holds in exactly those spaces (the
recipe of single-cell analysis: Louvain/Leiden on a kNN graph). Near-linear: one pass over the
graph's edges per sweep, a few sweeps per level, each level on the smaller aggregated graph.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)

_MAX_SWEEPS = 16  # local-moving sweeps per level (converges in a handful on kNN graphs)
_MAX_LEVELS = 12


def knn_affinity(idx: np.ndarray, sims: np.ndarray) -> csr_matrix:
    """Symmetric (n, n) edge weights in (0, 1] from a cosine kNN graph, scaled per point.

    w_ij = exp(-(d_ij - rho_i) / sigma_i) with d = 1 - cosine, rho_i the distance to i's nearest
    neighbour and sigma_i its mean excess over rho_i, so dense and sparse regions weigh their own
    neighbours alike (UMAP's local scaling); then the fuzzy union w + w' - w * w' (an edge known
    from either end). Self edges are dropped. idx, sims: (n, k) nearest first.
    """
    n, k = idx.shape
    rows = np.repeat(np.arange(n), k)
    dist = np.clip(1.0 - sims.astype(np.float64), 0.0, 2.0)
    rho = dist.min(axis=1, keepdims=True)
    sigma = np.maximum((dist - rho).mean(axis=1, keepdims=True), 1e-6)
    weight = np.exp(-(dist - rho) / sigma).ravel()
    keep = idx.ravel() != rows
    a = csr_matrix((weight[keep], (rows[keep], idx.ravel()[keep])), shape=(n, n))
    a.sum_duplicates()
    at = a.T.tocsr()
    return (a + at - a.multiply(at)).tocsr()


def louvain(adj: csr_matrix, *, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Community per node of a symmetric weighted graph, by Louvain modularity optimisation.

    Each level moves nodes (in a seeded random order) to the neighbouring community of largest
    modularity gain until no move helps, then merges each community into one node and repeats on
    that smaller graph. Returns (n,) int64 community ids 0..c-1, largest community first.
    """
    n = adj.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    graph = adj.tocsr().astype(np.float64)
    total = float(graph.sum())
    node_comm = np.arange(n, dtype=np.int64)
    if total <= 0:
        return node_comm
    for level in range(_MAX_LEVELS):
        m = graph.shape[0]
        comm = np.arange(m, dtype=np.int64)
        degree = np.asarray(graph.sum(axis=1), dtype=np.float64).ravel()
        moved = _compiled_move_nodes()(graph.indptr.astype(np.int64), graph.indices.astype(np.int64),
                                       graph.data, degree, comm, rng.permutation(m).astype(np.int64),
                                       float(resolution), total)
        if not moved:
            break
        _, comm = np.unique(comm, return_inverse=True)
        node_comm = comm[node_comm]
        size = int(comm.max()) + 1
        logger.debug("louvain level %d: %d nodes -> %d communities", level, m, size)
        onehot = csr_matrix((np.ones(m), (np.arange(m), comm)), shape=(m, size))
        graph = (onehot.T @ graph @ onehot).tocsr()
    counts = np.bincount(node_comm)
    rank = np.empty(counts.size, dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(counts.size)
    return rank[node_comm]


@cache
def _compiled_move_nodes() -> Callable[..., Any]:
    """_move_nodes compiled by numba on first use (cached on disk): importing numba costs ~0.5 s,
    which pages that never cluster should not pay."""
    from numba import njit

    return njit(cache=True)(_move_nodes)  # type: ignore[no-any-return]


def _move_nodes(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, degree: np.ndarray,
                comm: np.ndarray, order: np.ndarray, resolution: float, total: float) -> bool:
    """Louvain's local moving on a CSR graph, in place on comm; True when any node moved.

    Gain of putting node i into community c (up to a constant factor): w(i, c) - resolution *
    tot(c) * k_i / 2m, with w(i, c) the weight from i to c's members and tot(c) their degrees."""
    m = degree.size
    tot = np.zeros(m)
    for i in range(m):
        tot[comm[i]] += degree[i]
    to_comm = np.zeros(m)
    seen = np.zeros(m, dtype=np.bool_)
    touched = np.empty(m, dtype=np.int64)
    moved = False
    for _ in range(_MAX_SWEEPS):
        changes = 0
        for i in order:
            own, ki, count = comm[i], degree[i], 0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j == i:
                    continue  # a self loop moves with the node: no gain either way
                c = comm[j]
                if not seen[c]:
                    seen[c] = True
                    touched[count] = c
                    count += 1
                to_comm[c] += weights[p]
            tot[own] -= ki
            best, best_gain = own, to_comm[own] - resolution * tot[own] * ki / total
            for t in range(count):
                c = touched[t]
                gain = to_comm[c] - resolution * tot[c] * ki / total
                if gain > best_gain + 1e-12:
                    best, best_gain = c, gain
            tot[best] += ki
            comm[i] = best
            if best != own:
                changes += 1
            for t in range(count):
                to_comm[touched[t]] = 0.0
                seen[touched[t]] = False
        if changes == 0:
            break
        moved = True
    return moved


def cohesion(idx: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per community id 0..c-1: the share of its members' k nearest neighbours that are members
    too, out of what its size allows (min(k, size - 1) each: a tight group smaller than k scores
    1.0). Real groups keep most; the pieces modularity carves out of a structureless cloud keep
    far fewer. labels: (n,) ids >= 0, or negative for none (counted as outside). Returns (c,)."""
    k = idx.shape[1]
    size = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    own = labels >= 0
    inside = (labels[idx] == labels[:, None]).sum(axis=1)
    hits = np.bincount(labels[own], weights=inside[own], minlength=size)
    return _share(hits, np.bincount(labels[own], minlength=size), k)


def _share(hits: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """hits / (sizes * min(k, sizes - 1)), 0 where nothing is attainable (a lone point)."""
    cap = sizes * np.minimum(k, np.maximum(sizes - 1, 0))
    return np.divide(hits, cap, out=np.zeros(hits.shape), where=cap > 0)


def merge_loose(idx: np.ndarray, comm: np.ndarray, min_cohesion: float) -> np.ndarray:
    """Merge communities whose cohesion is under min_cohesion into the one they share most kNN
    edges with, loosest first, until every community is cohesive (or one is left).

    Modularity splits a large structureless blob into pieces whose members keep many neighbours
    outside (cohesion ~0.4-0.6); merging them back gives the blob, while real groups (cohesion 0.8+)
    stay apart. O(c^2) in the number of communities c. Returns (n,) ids 0.. largest first."""
    k = idx.shape[1]
    c = int(comm.max()) + 1
    # links[a, b]: kNN edges from members of a to members of b
    links = np.bincount(np.repeat(comm, k) * c + comm[idx].ravel(), minlength=c * c).reshape(c, c).astype(float)
    sizes = np.bincount(comm, minlength=c)
    alive = np.ones(c, dtype=bool)
    settled = np.zeros(c, dtype=bool)  # loose but linked to no other community: left as it is
    parent = np.arange(c)
    while alive.sum() > 1:
        inside = np.where(alive & ~settled, _share(np.diag(links), sizes, k), np.inf)
        loose = int(np.argmin(inside))
        if inside[loose] >= min_cohesion:
            break
        shared = np.where(alive, links[loose] + links[:, loose], -1.0)
        shared[loose] = -1.0
        into = int(np.argmax(shared))
        if shared[into] <= 0:
            settled[loose] = True
            continue
        links[into] += links[loose]
        links[:, into] += links[:, loose]
        links[loose], links[:, loose] = 0.0, 0.0
        sizes[into] += sizes[loose]
        alive[loose], parent[loose] = False, into
    for _ in range(c):  # follow merge chains to the surviving community
        if (parent[parent] == parent).all():
            break
        parent = parent[parent]
    merged = parent[comm]
    counts = np.bincount(merged, minlength=c)
    rank = np.empty(c, dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(c)
    return rank[merged]
