"""Projection parameters: defaults per method, validation, size-dependent choices, and their hash."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from core.errors import BadInputError
from core.projection.base import METHODS, MIN_POINTS

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
UMAP_SPREAD = 1.0  # umap-learn's default spread (not exposed): min_dist must not exceed it
TSNE_MIN_ITER = 250  # scikit-learn's TSNE refuses fewer optimisation iterations
_MAX_SEED = 2**32 - 1  # numpy's RandomState (used by scikit-learn) takes seeds up to this


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"projection method must be one of {METHODS}, got {method!r}")


def _bad(method: str, name: str, allowed: str, value: Any) -> BadInputError:
    return BadInputError(f"{method} parameter {name} must be {allowed}, got {value!r}")


def _number(method: str, name: str, value: Any, allowed: str) -> float:
    """value as a finite float; bools, strings and None are refused (True is not 1 epoch)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _bad(method, name, allowed, value)
    if not math.isfinite(float(value)):
        raise _bad(method, name, allowed, value)
    return float(value)


def _int(method: str, name: str, value: Any, low: int, allowed: str, high: int | None = None) -> int:
    """value as an int in [low, high]; integral floats (from JSON or a number widget) are accepted."""
    number = _number(method, name, value, allowed)
    if not number.is_integer() or number < low or (high is not None and number > high):
        raise _bad(method, name, allowed, value)
    return int(number)


def _float(method: str, name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> float:
    number = _number(method, name, value, allowed)
    if not ok(number):
        raise _bad(method, name, allowed, value)
    return number


def _pca_dims(method: str, value: Any) -> int:
    dims = _int(method, "pca_dims", value, 0, "0 (never reduce) or an integer >= 2")
    if dims == 1:
        raise _bad(method, "pca_dims", "0 (never reduce) or an integer >= 2", value)
    return dims


def _check_umap(p: dict[str, Any]) -> None:
    # The ranges of umap-learn's UMAP._validate_parameters, checked before any vector is read.
    p["n_neighbors"] = _int("umap", "n_neighbors", p["n_neighbors"], 2, "an integer >= 2")
    p["min_dist"] = _float("umap", "min_dist", p["min_dist"], lambda v: 0.0 <= v <= UMAP_SPREAD,
                           f"between 0 and {UMAP_SPREAD} (umap-learn's spread)")
    if p["n_epochs"] is not None:
        p["n_epochs"] = _int("umap", "n_epochs", p["n_epochs"], 0, "None (auto) or an integer >= 0")
    if p["init"] not in _UMAP_INITS:
        raise _bad("umap", "init", f"one of {_UMAP_INITS}", p["init"])
    p["pca_dims"] = _pca_dims("umap", p["pca_dims"])
    if not isinstance(p["deterministic"], (bool, np.bool_)):
        raise _bad("umap", "deterministic", "true or false", p["deterministic"])
    p["deterministic"] = bool(p["deterministic"])


def _check_tsne(p: dict[str, Any]) -> None:
    # perplexity must also stay below the number of points: resolve_tsne caps it once n is known.
    p["perplexity"] = _float("tsne", "perplexity", p["perplexity"], lambda v: v > 0, "a number > 0")
    p["pca_dims"] = _pca_dims("tsne", p["pca_dims"])
    p["max_points"] = _int("tsne", "max_points", p["max_points"], MIN_POINTS,
                           f"an integer >= {MIN_POINTS}")
    p["max_iter"] = _int("tsne", "max_iter", p["max_iter"], TSNE_MIN_ITER,
                         f"an integer >= {TSNE_MIN_ITER} (scikit-learn's minimum)")


def normalise_params(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method's defaults overridden by params, every value checked against its allowed range
    (as umap-learn / scikit-learn would, but before any vector is read) and converted to its type.

    An unknown method raises ValueError (a programmer's choice); an unknown key or a value out
    of range raises BadInputError naming the parameter and the allowed values, so a typo never
    silently falls back to a default.
    """
    _check_method(method)
    merged = dict(DEFAULT_PARAMS[method])
    unknown = sorted(set(params or {}) - set(merged))
    if unknown:
        raise BadInputError(f"unknown {method} parameter(s) {unknown}; allowed: {sorted(merged)}")
    merged.update(params or {})
    merged["seed"] = _int(method, "seed", merged["seed"], 0, f"an integer in [0, {_MAX_SEED}]", _MAX_SEED)
    if method == "umap":
        _check_umap(merged)
    elif method == "tsne":
        _check_tsne(merged)
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
    ordered = sorted(ids)
    if ordered:  # one update of the joined text: the same digest as one update per id, ~5x faster
        h.update(("\x1f" + "\x1f".join(ordered)).encode())
    return h.hexdigest()
