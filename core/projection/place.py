"""Place new points onto an existing 2-D layout from persisted arrays only (no fitted model)."""

from __future__ import annotations

import numpy as np

from core.linalg import l2_normalise

# Similarity blocks are (chunk, n_ref) float32: keep each under ~80 MB.
_BLOCK_ELEMENTS = 20_000_000
# Added to cosine distances so an exact duplicate gets a large but finite weight.
_EPS = 1e-4


# core.linalg.l2_normalise under the name core.projection has exported (kept for its callers):
# (n, d) -> (n, d) float32 unit rows, all-zero rows stay zero.
unit_rows = l2_normalise


def place_points(
    new_vectors: np.ndarray,
    ref_vectors: np.ndarray,
    ref_coords: np.ndarray,
    k: int = 10,
) -> np.ndarray:
    """Coordinates for new points on an existing layout, by kNN interpolation.

    new_vectors: (m, d); ref_vectors: (n, d), the points the layout was fitted on;
    ref_coords: (n, 2), their layout coordinates. Returns (m, 2) float32.

    Each new point lands at the average of its k most cosine-similar reference points'
    coordinates, weighted by 1 / cosine distance. Why this works for any method: UMAP, t-SNE
    and PCA all keep close neighbours close, so a point's high-dimensional neighbours are where
    it belongs on the map (umap-learn's own transform() starts from the same weighted average).
    Needs only arrays that are persisted anyway, so it survives umap / numba upgrades.
    """
    new = l2_normalise(new_vectors)
    ref = l2_normalise(ref_vectors)
    coords = np.asarray(ref_coords, dtype=np.float32)
    if new.shape[1] != ref.shape[1]:
        raise ValueError(f"new vectors are {new.shape[1]}-d but reference vectors are {ref.shape[1]}-d")
    if coords.shape != (ref.shape[0], 2):
        raise ValueError(f"ref_coords must be ({ref.shape[0]}, 2), got {coords.shape}")
    if ref.shape[0] == 0:
        raise ValueError("place_points needs at least one reference point")
    k = max(1, min(int(k), ref.shape[0]))
    out = np.empty((new.shape[0], 2), dtype=np.float32)
    chunk = max(1, _BLOCK_ELEMENTS // ref.shape[0])
    for start in range(0, new.shape[0], chunk):
        sims = new[start:start + chunk] @ ref.T  # (c, n) cosine similarities
        if k < ref.shape[0]:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(ref.shape[0]), (sims.shape[0], k))
        near = np.take_along_axis(sims, top, axis=1)
        weights = 1.0 / (np.clip(1.0 - near, 0.0, 2.0) + _EPS)
        weights /= weights.sum(axis=1, keepdims=True)
        out[start:start + chunk] = np.einsum("ck,ckj->cj", weights, coords[top])
    return out


def project_linear(new_vectors: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Exact placement for a PCA layout: (m, d) -> (m, 2) float32.

    mean: (d,), components: (2, d), as persisted in Projection.pca_mean / pca_components; rows
    are L2-normalised first, as they were for the fit.
    """
    x = l2_normalise(new_vectors)
    return ((x - np.asarray(mean, dtype=np.float32)) @ np.asarray(components, dtype=np.float32).T).astype(
        np.float32
    )


# IVF placement: cells of the reference set; each query is compared exactly with the reference
# points of the _PROBE cells nearest to its own cell. One (queries, candidates) distance block
# holds at most this many float32 values (~64 MB), whatever the number of points.
_IVF_BLOCK = 16_000_000
_PROBE = 8
_KMEANS_ITERS = 6


def _nearest_centre(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of each row of x, in bounded blocks."""
    c_norm = (centres * centres).sum(axis=1)
    block = max(1, _IVF_BLOCK // max(1, centres.shape[0]))
    out = np.empty(x.shape[0], dtype=np.int32)
    for s in range(0, x.shape[0], block):
        out[s:s + block] = np.argmin(c_norm[None, :] - 2.0 * (x[s:s + block] @ centres.T), axis=1)
    return out


def _cells(ref: np.ndarray, n_cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres (c, d), cell of each reference row) by a few Lloyd iterations."""
    rng = np.random.default_rng(seed)
    centres = ref[rng.choice(ref.shape[0], n_cells, replace=False)].astype(np.float32)
    for _ in range(_KMEANS_ITERS):
        cell = _nearest_centre(ref, centres)
        counts = np.bincount(cell, minlength=n_cells)
        sums = np.zeros_like(centres)
        np.add.at(sums, cell, ref)
        full = counts > 0  # an empty cell keeps its centre
        centres[full] = sums[full] / counts[full, None]
    return centres, _nearest_centre(ref, centres)


def knn_reduced(queries: np.ndarray, ref: np.ndarray, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Approximate Euclidean kNN of each query row among ref rows: (indices (q, k), squared
    distances (q, k) float32). Exact below a few thousand reference points; above, an inverted
    file: ~sqrt(n) k-means cells, each query searched in the _PROBE cells nearest its own, so a
    million queries against 50k points cost ~1/30 of the exact search, in bounded memory."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(ref, dtype=np.float32)
    k = max(1, min(int(k), r.shape[0]))
    n_cells = int(min(1024, np.sqrt(r.shape[0]))) if r.shape[0] >= 4 * _PROBE * 64 else 1
    centres, ref_cell = _cells(r, n_cells, seed) if n_cells > 1 else (r[:1], np.zeros(r.shape[0], np.int32))
    ref_sorted = np.argsort(ref_cell, kind="stable")
    ref_bounds = np.searchsorted(ref_cell[ref_sorted], np.arange(n_cells + 1))
    near_cells = np.argsort(((centres[:, None] - centres[None]) ** 2).sum(-1), axis=1) if n_cells > 1 else None
    q_cell = _nearest_centre(q, centres) if n_cells > 1 else np.zeros(q.shape[0], np.int32)
    q_sorted = np.argsort(q_cell, kind="stable")
    q_bounds = np.searchsorted(q_cell[q_sorted], np.arange(n_cells + 1))
    r_norm = (r * r).sum(axis=1)
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    dist = np.empty((q.shape[0], k), dtype=np.float32)
    for c in range(n_cells):
        rows = q_sorted[q_bounds[c]:q_bounds[c + 1]]
        if not rows.size:
            continue
        cand = _candidates(c, near_cells, ref_sorted, ref_bounds, k)
        block = max(1, _IVF_BLOCK // cand.size)
        for s in range(0, rows.size, block):
            part = rows[s:s + block]
            d = r_norm[cand][None, :] - 2.0 * (q[part] @ r[cand].T)
            top = np.argpartition(d, k - 1, axis=1)[:, :k] if k < cand.size else np.broadcast_to(
                np.arange(cand.size), (part.size, k))
            idx[part] = cand[top]
            dist[part] = np.maximum(np.take_along_axis(d, top, axis=1) + (q[part] ** 2).sum(axis=1)[:, None], 0.0)
    return idx, dist


def _candidates(cell: int, near_cells: np.ndarray | None, ref_sorted: np.ndarray, ref_bounds: np.ndarray,
                k: int) -> np.ndarray:
    """Reference rows of the _PROBE cells nearest `cell` (more cells until there are >= k)."""
    if near_cells is None:
        return ref_sorted
    parts, size = [], 0
    for rank, other in enumerate(near_cells[cell]):
        part = ref_sorted[ref_bounds[other]:ref_bounds[other + 1]]
        parts.append(part)
        size += part.size
        if rank + 1 >= _PROBE and size >= k:
            break
    return np.concatenate(parts)


def place_reduced(new_reduced: np.ndarray, ref_reduced: np.ndarray, ref_coords: np.ndarray, k: int = 10, *,
                  seed: int = 0) -> np.ndarray:
    """Coordinates for new points from their neighbours in a reduced (PCA) space: (m, 2) float32.

    new_reduced: (m, p), ref_reduced: (n, p), the fitted points in the same space (e.g. the PCA-50
    projection of unit vectors, where squared Euclidean distance ~ 2 x cosine distance);
    ref_coords: (n, 2). The same weighting as place_points (1 / cosine distance), with the
    neighbours from knn_reduced: what lets a map fitted on a sample place a million points in
    seconds rather than comparing 512-d vectors with every fitted point.
    """
    coords = np.asarray(ref_coords, dtype=np.float32)
    if coords.shape != (ref_reduced.shape[0], 2) or ref_reduced.shape[0] == 0:
        raise ValueError(f"ref_coords must be ({ref_reduced.shape[0]}, 2) with >= 1 row, got {coords.shape}")
    if new_reduced.shape[1] != ref_reduced.shape[1]:
        raise ValueError(f"new points are {new_reduced.shape[1]}-d but reference points {ref_reduced.shape[1]}-d")
    idx, sq = knn_reduced(new_reduced, ref_reduced, k, seed=seed)
    weights = 1.0 / (sq / 2.0 + _EPS)
    weights /= weights.sum(axis=1, keepdims=True)
    out = np.empty((idx.shape[0], 2), dtype=np.float32)
    block = max(1, _IVF_BLOCK // max(1, 2 * idx.shape[1]))
    for s in range(0, idx.shape[0], block):
        out[s:s + block] = np.einsum("ck,ckj->cj", weights[s:s + block], coords[idx[s:s + block]])
    return out
