"""Projection parameters: defaults per method, validation, size-dependent choices, and their hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from core.projection.base import METHODS

# Defaults per method. None / "auto" values are resolved by the number of points (resolve_*).
# Choices measured with benchmarks/explore.py (512-d, 2 cores): at 100k umap-learn's defaults
# take 47 s; PCA-50 first + 100 epochs + PCA init + parallel optimisation 25 s with the same
# trustworthiness (0.948 vs 0.948 on a 5k subsample); 75 epochs cost ~30% less CPU again for
# 0.946. A seeded (deterministic) fit runs single-threaded in umap-learn: ~1.6x slower.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "umap": {
        "n_neighbors": 15,
        "min_dist": 0.1,
        "n_epochs": None,  # auto: 200 up to 20k points, 100 up to 50k, 75 above
        "init": "auto",  # auto: "spectral" up to 20k points, "pca" above (spectral costs ~6 s at 100k)
        "pca_dims": 50,  # reduce to this many PCA components first when d is larger (0: never)
        # True: bit-reproducible for a seed, but umap-learn then runs single-threaded (~1.6x slower).
        "deterministic": False,
        "seed": 0,
    },
    "pca": {"seed": 0},
    "tsne": {
        "perplexity": 30.0,
        "pca_dims": 50,
        # t-SNE is O(n log n) with a large constant: fit on at most this many points (a seeded
        # random subset) and place the rest by kNN interpolation.
        "max_points": 10_000,
        "max_iter": 1000,  # optimisation iterations (sklearn's minimum is 250)
        "seed": 0,
    },
}

_LARGE = 20_000  # above this many points the cheaper size-dependent choices kick in
_HUGE = 50_000  # and above this many, fewer epochs again
_UMAP_INITS = ("auto", "spectral", "pca", "random")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"projection method must be one of {METHODS}, got {method!r}")


def normalise_params(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method's defaults overridden by params, validated. Unknown keys raise ValueError
    naming the allowed ones, so a typo never silently falls back to a default."""
    _check_method(method)
    merged = dict(DEFAULT_PARAMS[method])
    unknown = sorted(set(params or {}) - set(merged))
    if unknown:
        raise ValueError(f"unknown {method} parameter(s) {unknown}; allowed: {sorted(merged)}")
    merged.update(params or {})
    merged["seed"] = int(merged["seed"])
    if method == "umap":
        merged["n_neighbors"] = int(merged["n_neighbors"])
        merged["min_dist"] = float(merged["min_dist"])
        merged["pca_dims"] = int(merged["pca_dims"])
        merged["deterministic"] = bool(merged["deterministic"])
        if merged["n_epochs"] is not None:
            merged["n_epochs"] = int(merged["n_epochs"])
        if merged["init"] not in _UMAP_INITS:
            raise ValueError(f"umap init must be one of {_UMAP_INITS}, got {merged['init']!r}")
        if merged["n_neighbors"] < 2:
            raise ValueError(f"umap n_neighbors must be >= 2, got {merged['n_neighbors']}")
    elif method == "tsne":
        merged["perplexity"] = float(merged["perplexity"])
        merged["pca_dims"] = int(merged["pca_dims"])
        merged["max_points"] = int(merged["max_points"])
        merged["max_iter"] = max(250, int(merged["max_iter"]))
    return merged


def resolve_umap(n: int, params: dict[str, Any]) -> dict[str, Any]:
    """The concrete UMAP settings for n points (normalised params in, everything set out)."""
    out = dict(params)
    out["n_neighbors"] = max(2, min(params["n_neighbors"], n - 1))
    if params["n_epochs"] is None:
        # Each epoch touches every edge of the kNN graph, so big maps converge in fewer epochs
        # (umap-learn's own default drops from 500 to 200 above 10k points for the same reason).
        out["n_epochs"] = 200 if n <= _LARGE else 100 if n <= _HUGE else 75
    if params["init"] == "auto":
        out["init"] = "spectral" if n <= _LARGE else "pca"
    if n < 3 * out["n_neighbors"] and out["init"] == "spectral":
        # The spectral init needs a few more points than neighbours; tiny maps start from PCA.
        out["init"] = "pca"
    return out


def resolve_tsne(n: int, params: dict[str, Any]) -> dict[str, Any]:
    """The concrete t-SNE settings for n fitted points (perplexity must stay below n)."""
    out = dict(params)
    out["perplexity"] = max(1.0, min(params["perplexity"], (n - 1) / 3.0))
    return out


def params_hash(method: str, params: dict[str, Any] | None, ids: Iterable[str]) -> str:
    """A deterministic 16-hex-digit hash of (method, normalised params, the set of point ids).

    The ids are sorted first, so the same points in another order give the same hash.
    """
    normalised = normalise_params(method, params)
    h = hashlib.blake2b(digest_size=8)
    h.update(json.dumps({"method": method, "params": normalised}, sort_keys=True).encode())
    for point in sorted(ids):
        h.update(b"\x1f")
        h.update(point.encode())
    return h.hexdigest()
