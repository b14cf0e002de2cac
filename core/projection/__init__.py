"""2-D maps of embedding vectors (UMAP, PCA, t-SNE) and placement of new points: pure numpy, no I/O."""

from core.projection.base import METHODS, MIN_POINTS, Method, Projection
from core.projection.fit import fit_projection, place_new, quick_projection
from core.projection.params import DEFAULT_PARAMS, normalise_params, params_hash
from core.projection.place import place_points, place_reduced, project_linear, unit_rows

__all__ = [
    "DEFAULT_PARAMS",
    "METHODS",
    "MIN_POINTS",
    "Method",
    "Projection",
    "fit_projection",
    "normalise_params",
    "params_hash",
    "place_new",
    "place_points",
    "place_reduced",
    "project_linear",
    "quick_projection",
    "unit_rows",
]
