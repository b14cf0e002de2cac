"""The cosine k-nearest-neighbour graph every analysis score shares: exact blocked, or IVF for big n."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
from threadpoolctl import threadpool_limits

from core.linalg import l2_normalise

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
# IVF shape (ivf_knn): CELLS_PER_ROOT * sqrt(n) cells, each query compared with the members of
# DEFAULT_PROBE cells. Chosen on clustered 512-d data (benchmarks/analysis.py --sizes) for
# recall@10 >= 0.95 against exact on a sample; see docs/internal-apis.md for the figures.
CELLS_PER_ROOT = 4.0
DEFAULT_PROBE = 16
KMEANS_SAMPLE_PER_CELL = 16
# Above this many dimensions IVF searches in the top IVF_DIM principal directions, then rescores
# the best RERANK * k candidates of each query exactly on the full vectors.
IVF_DIM = 128
RERANK = 4
_ROW_BLOCK = 8192  # rows per task of the parallel projections and assignments


def check_vectors(vectors: np.ndarray) -> np.ndarray:
    """Validate (n, d) finite vectors and return them as C-contiguous float32."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (n, d) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or infinite values")
    return arr


def _top_k_rows(sims: np.ndarray, k: int, head: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of sims (b, m), sorted by decreasing similarity.

    A row's k-th largest value among its first `head` columns is a lower bound of its k-th
    largest overall (a subset's k-th largest is never above the whole row's), so the value-only
    np.partition (SIMD; np.argpartition is ~15x slower) runs on those columns only and one
    vectorised comparison keeps every column at or above that bound: a few dozen per row when
    the head holds likely neighbours (IVF puts the query's own cell first). The survivors are
    ranked exactly with a lexsort, ties beyond k trimmed. head=None: m // 8 columns (>= 4k).
    """
    b, m = sims.shape
    head = min(m, max(head if head is not None else m // 8, 4 * k))
    part = sims[:, :head]
    kth = np.partition(part, head - k, axis=1)[:, head - k]
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
    head: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN of each query row among the reference rows, in memory-bounded blocks.

    queries: (q, d) float32, reference: (r, d) float32, both L2-normalised.
    exclude: (q,) int, one reference row per query to leave out (its own row in self-search).
    head: how many leading reference rows bound the top-k search (_top_k_rows); results are
    exact whatever it is, it only changes the speed.
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
        idx[start:stop], sims[start:stop] = _top_k_rows(s, k, head)
    return idx, sims


def default_cells(n: int) -> int:
    """IVF cells for n reference points: CELLS_PER_ROOT * sqrt(n) (at least 16, ~8 points a cell)."""
    return int(min(max(16, CELLS_PER_ROOT * np.sqrt(n)), max(16, n // 8)))


def ivf_knn(
    queries: np.ndarray, reference: np.ndarray | None, k: int, *, n_cells: int | None = None,
    n_probe: int | None = None, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate cosine kNN by an inverted file of spherical k-means cells.

    Every query in cell c is compared with the reference points of the n_probe cells whose
    centroids are nearest to c's centroid (c included). Near neighbours almost always share a
    cell or sit in an adjacent one, so this keeps most of the recall at a fraction
    n_probe/n_cells of the exact cost; with n_cells ~ sqrt(n) and a fixed n_probe the cost grows
    as n^1.5 (assignment n * cells, search n * n_probe * n / cells), not n^2. Above IVF_DIM
    dimensions the cells and candidates are found in the top IVF_DIM principal directions
    (IVF_DIM/d of the flops) and the best RERANK * k candidates of each query are rescored
    exactly in float32 on the full vectors, so the similarities returned are exact.
    Cells run in parallel threads with single-threaded BLAS (multi-threaded BLAS on these
    mid-sized products ran 4x slower on a loaded 2-core machine).
    queries: (q, d); reference: (r, d), or None to search the queries among themselves
    excluding each point's own row. Both float32 L2-normalised.
    Returns (indices (q, k) into reference, similarities (q, k) float32), nearest first.
    """
    same = reference is None
    ref = queries if reference is None else reference
    n_cells = min(ref.shape[0], n_cells or default_cells(ref.shape[0]))
    n_probe = min(n_cells, n_probe or DEFAULT_PROBE)
    with threadpool_limits(limits=1), ThreadPoolExecutor(_workers()) as pool:
        basis = _principal_basis(ref, seed) if ref.shape[1] > IVF_DIM else None
        low_ref = ref if basis is None else _project(pool, ref, basis)
        low_q = low_ref if same else (queries if basis is None else _project(pool, queries, basis))
        cent = _spherical_kmeans(pool, low_ref, n_cells, seed)
        members = _split_by_cell(_assign(pool, low_ref, cent), n_cells)
        queriers = members if same else _split_by_cell(_assign(pool, low_q, cent), n_cells)
        probe = _probe_lists(cent, n_probe)
        idx = np.empty((queries.shape[0], k), dtype=np.int64)
        sims = np.empty((queries.shape[0], k), dtype=np.float32)

        def one_cell(c: int) -> None:
            own = queriers[c]
            if own.size == 0:
                return
            # The cell's own members come first: in self-search a query's own row sits at its
            # local position, and they bound the top-k search (the nearest are mostly there).
            cand = np.concatenate([members[p] for p in probe[c]])
            wide = min(cand.size - same, k if basis is None else max(RERANK * k, 32))
            if wide < k:  # too few candidates: exact search for these
                idx[own], sims[own] = knn_between(queries[own], ref, k, exclude=own if same else None)
                return
            local, local_sims = knn_between(low_q[own], low_ref[cand], wide, head=members[c].size,
                                            exclude=np.arange(own.size) if same else None)
            if basis is None:
                idx[own], sims[own] = cand[local], local_sims
            else:
                idx[own], sims[own] = _rescore(queries[own], ref, cand[local], k)

        list(pool.map(one_cell, range(n_cells)))
    return idx, sims


def _workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0))))


def _principal_basis(x: np.ndarray, seed: int) -> np.ndarray:
    """(d, IVF_DIM) top eigenvectors of the (uncentred) second moment of a sample: projections
    on them keep most of each dot product (cosine ranking) in IVF_DIM/d of the numbers."""
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(x.shape[0], size=min(x.shape[0], 20_000), replace=False))]
    moment = sample.T.astype(np.float64) @ sample  # (d, d): small whatever n is
    _, vecs = np.linalg.eigh(moment)
    return np.ascontiguousarray(vecs[:, ::-1][:, :IVF_DIM], dtype=np.float32)


def _project(pool: ThreadPoolExecutor, x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    out = np.empty((x.shape[0], basis.shape[1]), dtype=np.float32)

    def block(s: int) -> None:
        out[s : s + _ROW_BLOCK] = x[s : s + _ROW_BLOCK] @ basis

    list(pool.map(block, range(0, x.shape[0], _ROW_BLOCK)))
    return out


def _rescore(queries: np.ndarray, ref: np.ndarray, cand: np.ndarray, k: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Exact float32 similarities of each query to its candidate rows (q, w), the best k kept."""
    full = np.einsum("qd,qwd->qw", queries, ref[cand])
    top = np.argsort(-full, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cand, top, axis=1), np.take_along_axis(full, top, axis=1)


def _spherical_kmeans(pool: ThreadPoolExecutor, x: np.ndarray, n_cells: int, seed: int,
                      iters: int = 6) -> np.ndarray:
    """Centroids (n_cells, d) of unit vectors by Lloyd iterations on cosine, fitted on a sample
    of KMEANS_SAMPLE_PER_CELL points a cell (cells only need to be roughly even, not optimal)."""
    rng = np.random.default_rng(seed)
    size = min(x.shape[0], KMEANS_SAMPLE_PER_CELL * n_cells)
    sample = x[np.sort(rng.choice(x.shape[0], size=size, replace=False))]
    cent = l2_normalise(sample[rng.choice(sample.shape[0], size=n_cells, replace=False)])
    for _ in range(iters):
        assign = _assign(pool, sample, cent)
        order = np.argsort(assign, kind="stable")
        counts = np.bincount(assign, minlength=n_cells)
        sums = np.zeros_like(cent)
        filled = counts > 0  # a cell that got no sample keeps its centroid
        # Segment sums of the sorted sample (np.add.at is an unbuffered, ~20x slower scatter).
        sums[filled] = np.add.reduceat(sample[order], np.r_[0, np.cumsum(counts)[:-1]][filled], axis=0)
        cent = np.where(filled[:, None], l2_normalise(sums), cent)
    return cent.astype(np.float32)


def _assign(pool: ThreadPoolExecutor, x: np.ndarray, cent: np.ndarray) -> np.ndarray:
    """Nearest centroid of each row, in parallel blocks of bounded memory. (n,) int64."""
    block = max(1, min(_ROW_BLOCK, _BLOCK_VALUES // cent.shape[0]))
    out = np.empty(x.shape[0], dtype=np.int64)

    def one(s: int) -> None:
        out[s : s + block] = np.argmax(x[s : s + block] @ cent.T, axis=1)

    list(pool.map(one, range(0, x.shape[0], block)))
    return out


def _probe_lists(cent: np.ndarray, n_probe: int) -> np.ndarray:
    """(n_cells, n_probe) cells nearest to each cell's centroid, itself first."""
    block = max(1, _BLOCK_VALUES // cent.shape[0])
    out = np.empty((cent.shape[0], n_probe), dtype=np.int64)
    for s in range(0, cent.shape[0], block):
        sims = cent[s : s + block] @ cent.T
        sims[np.arange(sims.shape[0]), np.arange(s, s + sims.shape[0])] = np.inf
        top = np.argpartition(-sims, n_probe - 1, axis=1)[:, :n_probe]
        out[s : s + block] = np.take_along_axis(
            top, np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1), axis=1)
    return out


def _split_by_cell(assign: np.ndarray, n_cells: int) -> list[np.ndarray]:
    """Row indices of each cell (ascending), from one stable sort instead of n_cells scans."""
    order = np.argsort(assign, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(assign, minlength=n_cells))]
    return [order[bounds[c] : bounds[c + 1]] for c in range(n_cells)]


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
