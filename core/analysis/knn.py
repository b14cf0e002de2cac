"""The cosine k-nearest-neighbour graph every analysis score shares: exact blocked, or IVF for big n."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from core.linalg import l2_normalise, row_norms

logger = logging.getLogger(__name__)

KnnMethod = Literal["auto", "exact", "ivf"]
KNN_METHODS: tuple[str, ...] = ("auto", "exact", "ivf")

# One similarity block holds at most this many float32 values (256 MB): memory stays bounded
# whatever n is, and blocks stay large enough for BLAS to run at full speed.
_BLOCK_VALUES = 64_000_000
# Exact search costs n^2 d flops; above this many points "auto" switches to the IVF path.
# Measured on 2 pinned Xeon cores, clustered 512-d data (benchmarks/analysis.py): 30k points
# exact 11.2 s vs IVF 2.0 s (recall@10 0.999); 100k exact 126 s vs IVF 16 s (recall 0.9998).
EXACT_MAX_POINTS = 20_000


def check_vectors(vectors: np.ndarray) -> np.ndarray:
    """Validate (n, d) finite vectors and return them as C-contiguous float32."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (n, d) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or infinite values")
    return arr


def _top_k_rows(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of sims (b, m), sorted by decreasing similarity.

    np.argpartition along an axis is ~15x slower than the value-only np.partition (SIMD), so the
    k-th largest value per row is found with np.partition and the columns at or above it with
    one vectorised comparison; ties beyond k are trimmed after a lexsort.
    """
    b, m = sims.shape
    kth = np.partition(sims, m - k, axis=1)[:, m - k]
    rows, cols = np.nonzero(sims >= kth[:, None])
    vals = sims[rows, cols]
    order = np.lexsort((-vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(b))
    rank = np.arange(rows.size) - starts[rows]
    keep = rank < k
    return cols[keep].reshape(b, k), vals[keep].reshape(b, k)


def knn_between(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN of each query row among the reference rows, in memory-bounded blocks.

    queries: (q, d) float32, reference: (r, d) float32, both L2-normalised.
    exclude: (q,) int, one reference row per query to leave out (its own row in self-search).
    Returns (indices (q, k) int64 into reference, similarities (q, k) float32), nearest first.
    """
    q_n, r_n = queries.shape[0], reference.shape[0]
    avail = r_n - (1 if exclude is not None else 0)
    if k < 1 or k > avail:
        raise ValueError(f"k must be between 1 and {avail} for {r_n} reference points, got {k}")
    block = max(1, min(q_n, _BLOCK_VALUES // max(r_n, 1)))
    idx = np.empty((q_n, k), dtype=np.int64)
    sims = np.empty((q_n, k), dtype=np.float32)
    for start in range(0, q_n, block):
        stop = min(q_n, start + block)
        s = queries[start:stop] @ reference.T  # BLAS reads the transpose in place
        if exclude is not None:
            s[np.arange(stop - start), exclude[start:stop]] = -np.inf
        idx[start:stop], sims[start:stop] = _top_k_rows(s, k)
    return idx, sims


def _spherical_kmeans(x: np.ndarray, n_cells: int, seed: int, iters: int = 8) -> np.ndarray:
    """Centroids (n_cells, d) of unit vectors by Lloyd iterations on cosine, fitted on a sample."""
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(x.shape[0], size=min(x.shape[0], 40 * n_cells), replace=False)]
    cent = sample[rng.choice(sample.shape[0], size=n_cells, replace=False)].copy()
    for _ in range(iters):
        assign = np.argmax(sample @ cent.T, axis=1)
        sums = np.zeros_like(cent)
        np.add.at(sums, assign, sample)
        empty = row_norms(sums) == 0  # a cell that got no sample keeps its centroid
        cent = np.where(empty[:, None], cent, l2_normalise(sums))
    return cent.astype(np.float32)


def _assign(x: np.ndarray, cent: np.ndarray) -> np.ndarray:
    block = max(1, _BLOCK_VALUES // cent.shape[0])
    return np.concatenate(
        [np.argmax(x[s : s + block] @ cent.T, axis=1) for s in range(0, x.shape[0], block)]
    )


def ivf_knn(
    queries: np.ndarray, reference: np.ndarray | None, k: int, *, n_cells: int | None = None,
    n_probe: int | None = None, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate cosine kNN by an inverted file of spherical k-means cells.

    Every query in cell c is compared exactly with the reference points of the n_probe cells
    whose centroids are nearest to c's centroid (c included). Near neighbours almost always
    share a cell or sit in an adjacent one, so this keeps most of the recall at a fraction
    n_probe/n_cells of the exact cost. queries: (q, d); reference: (r, d), or None to search
    the queries among themselves excluding each point's own row. Both float32 L2-normalised.
    Returns (indices (q, k) into reference, similarities (q, k) float32), nearest first.
    """
    same = reference is None
    ref = queries if reference is None else reference
    n_cells = min(ref.shape[0], n_cells or int(min(1024, max(16, 2 * np.sqrt(ref.shape[0])))))
    n_probe = min(n_cells, n_probe or max(8, n_cells // 12))
    cent = _spherical_kmeans(ref, n_cells, seed)
    ref_assign = _assign(ref, cent)
    q_assign = ref_assign if same else _assign(queries, cent)
    members = [np.flatnonzero(ref_assign == c) for c in range(n_cells)]
    probe = np.argsort(-(cent @ cent.T), axis=1)[:, :n_probe]
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    sims = np.empty((queries.shape[0], k), dtype=np.float32)
    for c in range(n_cells):
        own = members[c] if same else np.flatnonzero(q_assign == c)
        if own.size == 0:
            continue
        # The cell's own members come first, so in self-search a query's own row sits at its
        # local position.
        cand = np.concatenate([members[c]] + [members[p] for p in probe[c] if p != c])
        if cand.size - (1 if same else 0) < k:  # too few candidates: exact search for these
            idx[own], sims[own] = knn_between(queries[own], ref, k,
                                              exclude=own if same else None)
            continue
        local_idx, local_sims = knn_between(queries[own], ref[cand], k,
                                            exclude=np.arange(own.size) if same else None)
        idx[own], sims[own] = cand[local_idx], local_sims
    return idx, sims


def knn_search(
    queries: np.ndarray, reference: np.ndarray, k: int = 10, *, method: KnnMethod = "auto",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine kNN of each query among another set (e.g. production items among train items).

    queries: (q, d), reference: (r, d), float32 L2-normalised; "auto" is exact while q * r stays
    under EXACT_MAX_POINTS^2. Returns (indices (q, k) into reference, sims (q, k)), nearest first.
    """
    if method not in KNN_METHODS:
        raise ValueError(f"method must be one of {KNN_METHODS}, got {method!r}")
    q, r = check_vectors(queries), check_vectors(reference)
    if k < 1 or k > r.shape[0]:
        raise ValueError(f"k must be between 1 and {r.shape[0]}, got {k}")
    use_ivf = method == "ivf" or (
        method == "auto" and q.shape[0] * r.shape[0] > EXACT_MAX_POINTS**2)
    if use_ivf and r.shape[0] >= 16 * k:
        return ivf_knn(q, r, k, seed=seed)
    return knn_between(q, r, k)


def knn_graph(
    vectors: np.ndarray, k: int = 10, *, method: KnnMethod = "auto", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The cosine kNN graph of a set, each point's own row excluded.

    vectors: (n, d) float32, L2-normalised. method: "exact" (blocked matrix products),
    "ivf" (approximate, for large n) or "auto" (exact up to EXACT_MAX_POINTS points).
    Returns (indices (n, k) int64, similarities (n, k) float32), nearest first.
    """
    if method not in KNN_METHODS:
        raise ValueError(f"method must be one of {KNN_METHODS}, got {method!r}")
    x = check_vectors(vectors)
    n = x.shape[0]
    if k < 1 or k >= n:
        raise ValueError(f"k must be between 1 and n-1={n - 1}, got {k}")
    use_ivf = method == "ivf" or (method == "auto" and n > EXACT_MAX_POINTS)
    logger.debug("kNN graph: n=%d d=%d k=%d method=%s", n, x.shape[1], k,
                 "ivf" if use_ivf else "exact")
    if use_ivf:
        return ivf_knn(x, None, k, seed=seed)
    return knn_between(x, x, k, exclude=np.arange(n))


def recall_at_k(approx_idx: np.ndarray, exact_idx: np.ndarray) -> float:
    """Mean fraction of the exact k neighbours found by an approximate graph (same row order)."""
    hits = [np.intersect1d(a, e).size for a, e in zip(approx_idx, exact_idx, strict=True)]
    return float(np.mean(hits) / exact_idx.shape[1])
