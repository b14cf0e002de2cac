"""The one L2 normaliser of core: unit rows for cosine spaces, safe for huge and tiny values."""

from __future__ import annotations

import numpy as np


def row_norms(vectors: np.ndarray) -> np.ndarray:
    """(n, d) -> (n,) float64 L2 norms, computed in float64 so float32 values near 1e38 do not
    overflow to inf (a finite vector with an infinite float32 norm would be stored as zeros)."""
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (n, d) array, got shape {x.shape}")
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d) float32 with unit L2 rows; all-zero rows stay zero (never NaN).

    Rows already of unit length (within 1e-6) are returned bit for bit, so vectors that went
    through a store and came back normalised do not drift in their last bit.
    """
    x = np.asarray(vectors, dtype=np.float32)
    norms = row_norms(x)
    scale = np.where(np.abs(norms - 1.0) <= 1e-6, 1.0, np.maximum(norms, 1e-12))
    return (x / scale[:, None]).astype(np.float32, copy=False)
