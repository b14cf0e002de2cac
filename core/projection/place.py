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
