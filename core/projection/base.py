"""The result type of a 2-D projection and the constants shared by the projection modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Method = Literal["umap", "pca", "tsne"]
METHODS: tuple[str, ...] = ("umap", "pca", "tsne")

# Fewer points than this cannot be laid out meaningfully (UMAP's neighbour graph, t-SNE's
# perplexity and a 2-component PCA all degenerate).
MIN_POINTS = 5


@dataclass(frozen=True)
class Projection:
    """A fitted 2-D layout and what is needed to place new points later, without any model object.

    coords: (n, 2) float32, one row per input vector, in input order.
    method: "umap" | "pca" | "tsne".
    params: the parameters actually used (size-dependent choices resolved, seed included).
    fitted: (n,) bool, True where the point took part in the fit; False where it was placed
        onto the layout afterwards by kNN interpolation (t-SNE above its point cap).
    pca_mean / pca_components: (d,) and (2, d) float32 for method "pca" (new points project
        exactly with core.projection.place.project_linear), else None.
    seconds: wall time of the fit.
    """

    coords: np.ndarray
    method: str
    params: dict[str, Any]
    fitted: np.ndarray
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.coords.shape[0])
