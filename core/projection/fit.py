"""Fit a 2-D layout of embedding vectors with UMAP, PCA or t-SNE (arrays in, arrays out)."""

from __future__ import annotations

import io
import logging
import re
import threading
import time
import warnings
from typing import Any

import numpy as np

from core.errors import BadInputError, NotEnoughDataError
from core.linalg import l2_normalise, row_norms
from core.projection.base import MIN_POINTS, Projection
from core.projection.params import normalise_params, resolve_tsne, resolve_umap
from core.projection.place import place_reduced
from core.types import Progress

log = logging.getLogger(__name__)

# PCA is fitted on a seeded random subset of at most this many rows, then applied to all rows:
# the principal axes of 20k points are as good as those of 100k, at a fifth of the cost.
_PCA_FIT_ROWS = 20_000
# fit_projection's progress is in per cent: the reduction ends at _REDUCED, the neighbour graph
# and start at _GRAPH, then UMAP's optimisation epochs fill the rest (the longest part).
_STEPS = 100
_REDUCED, _GRAPH = 5, 20
_CHECK_ROWS = 65_536  # rows checked (finite, unit) at a time: 128 MB of float32 512-d at most
_UNIT_TOLERANCE = 1e-6  # the tolerance within which core.linalg.l2_normalise keeps a row as it is
_SMALL_TSNE = 5_000  # below this many points t-SNE runs on one thread
# UMAP is fitted on a seeded random sample of at most this many points; the others are placed
# from their neighbours among the sample in PCA space (place_reduced). Measured with
# benchmarks/explore.py --sample (see docs/internal-apis.md, core.pipeline maps).
UMAP_FIT_POINTS = 50_000
_PLACE_K = 10  # neighbours a placed point is averaged over
# One UMAP fit at a time per process: numba's "workqueue" threading layer (the fallback where
# neither OpenMP nor TBB is available) aborts the process on concurrent parallel launches, and
# the dashboard runs the warm-up thread next to user sessions. Fits are CPU-bound anyway.
_UMAP_LOCK = threading.Lock()
# Up to this many fitted points a map is laid out by core.projection.umap_numpy (no numba) while
# umap-learn is not compiled in this process yet: a cold process spends 35-60 s in numba's JIT
# before its first fit, longer than the numpy path takes at 20k points (21 s on 2 busy cores).
NUMPY_UMAP_MAX = 20_000
_umap_learn_ready = threading.Event()  # set once a umap-learn fit (e.g. the warm-up) has finished here


def umap_learn_ready() -> bool:
    """Whether umap-learn's numba code is compiled in this process (a fit has completed)."""
    return _umap_learn_ready.is_set()


def umap_engine(n: int) -> str:
    """"numpy" (core.projection.umap_numpy) for n <= NUMPY_UMAP_MAX fitted points while umap-learn
    is not compiled in this process, else "umap-learn": a warm process keeps umap-learn's maps."""
    return "numpy" if n <= NUMPY_UMAP_MAX and not umap_learn_ready() else "umap-learn"


def _tick(progress: Progress | None, done: int) -> None:
    if progress is not None:
        progress(done, _STEPS)


def _epoch_ticks(progress: Progress | None) -> Progress | None:
    """An epochs(done, total) callback moving progress from _GRAPH to _STEPS - 1 per cent."""
    if progress is None:
        return None
    return lambda done, total: _tick(progress, _GRAPH + (_STEPS - 1 - _GRAPH) * done // max(total, 1))


def _checked(vectors: np.ndarray, method: str) -> np.ndarray:
    """(n, d) float32, L2-normalised; NotEnoughDataError / BadInputError for unusable input."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (n, d) array, got shape {x.shape}")
    if x.shape[0] < MIN_POINTS:
        raise NotEnoughDataError(
            f"A {method} map needs at least {MIN_POINTS} points, but the selection has {x.shape[0]}: "
            "add data or widen the filter"
        )
    unit, bad = True, []
    for start in range(0, x.shape[0], _CHECK_ROWS):  # blocks: no (n, d) temporaries
        part = x[start:start + _CHECK_ROWS]
        bad.append(start + np.flatnonzero(~np.isfinite(part).all(axis=1)))
        unit = unit and not bad[-1].size and bool((np.abs(row_norms(part) - 1.0) <= _UNIT_TOLERANCE).all())
    rows = np.concatenate(bad) if bad else np.empty(0, dtype=np.int64)
    if rows.size:
        raise BadInputError(f"{rows.size} vector(s) contain NaN or inf (first at row {int(rows[0])})")
    # Unit rows: Euclidean distance then ranks neighbours exactly like cosine, the store's metric.
    # Vectors from the store are unit already: used as they are (l2_normalise would return the
    # same values bit for bit, as a 2 GB copy at 1M x 512; x may be a memory-mapped cache block).
    return x if unit else l2_normalise(x)


def pca_fit(x: np.ndarray, dims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), components (dims, d)) float32 of x (n, d), fitted on a random row subset."""
    from sklearn.decomposition import PCA

    rows = x
    if x.shape[0] > _PCA_FIT_ROWS:
        pick = np.random.default_rng(seed).choice(x.shape[0], _PCA_FIT_ROWS, replace=False)
        rows = x[np.sort(pick)]
    solver = "randomized" if dims < min(rows.shape) // 2 else "full"
    pca = PCA(n_components=dims, svd_solver=solver, random_state=seed).fit(rows)
    return pca.mean_.astype(np.float32), pca.components_.astype(np.float32)


def _reduce(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """x projected onto its first `dims` principal components when that makes it smaller.
    Fitted on a row sample (pca_fit) and applied as x @ W.T - mean @ W.T: no centred copy of x."""
    if dims <= 0 or x.shape[1] <= dims or x.shape[0] <= dims:
        return x
    mean, components = pca_fit(x, dims, seed)
    return (x @ components.T - mean @ components.T).astype(np.float32, copy=False)


def _sample_mask(n: int, cap: int, seed: int) -> np.ndarray:
    """(n,) bool: all True up to cap points, else a seeded random subset of cap points."""
    fitted = np.ones(n, dtype=bool)
    if n > cap:
        fitted[:] = False
        fitted[np.random.default_rng(seed).choice(n, cap, replace=False)] = True
    return fitted


def _place_rest(reduced: np.ndarray, coords: np.ndarray, fitted: np.ndarray, seed: int,
                timings: dict[str, float]) -> None:
    """Fill coords[~fitted] from the fitted points' neighbours in the reduced space (in place)."""
    if fitted.all():
        return
    start = time.perf_counter()
    coords[~fitted] = place_reduced(reduced[~fitted], reduced[fitted], coords[fitted], _PLACE_K, seed=seed)
    timings["place"] = time.perf_counter() - start


def _finite(coords: np.ndarray, method: str) -> np.ndarray:
    out = np.ascontiguousarray(coords, dtype=np.float32)
    if not np.isfinite(out).all():
        raise BadInputError(
            f"The {method} layout came out with non-finite coordinates; the vectors may be "
            "degenerate (e.g. all identical): try method 'pca'"
        )
    return out


class _EpochWriter(io.TextIOBase):
    """A file for umap-learn's tqdm epoch bar (bar_format "{n}/{total}"): reports each count."""

    def __init__(self, epochs: Progress) -> None:
        super().__init__()
        self._epochs = epochs

    def write(self, text: str) -> int:
        counts = _COUNTS.findall(text)
        if counts:
            self._epochs(int(counts[-1][0]), int(counts[-1][1]))
        return len(text)


_COUNTS = re.compile(r"(\d+)/(\d+)")


def umap_layout(x: np.ndarray, params: dict[str, Any], *, force_approximation: bool = False,
                epochs: Progress | None = None) -> np.ndarray:
    """UMAP of x (n, d') float32 -> (n, 2) with umap-learn, with resolved params (see resolve_umap).

    Deterministic mode pins umap-learn to one thread. force_approximation uses the NN-descent
    neighbour search even below 4096 points (the warm-up uses it to compile that code path).
    epochs(done, total): called as optimisation epochs complete (through umap-learn's tqdm bar).
    """
    import numba
    import umap

    threads = numba.get_num_threads()
    seed = params["seed"] if params["deterministic"] else None
    bar = {} if epochs is None else {"disable": False, "file": _EpochWriter(epochs), "bar_format": "{n}/{total}",
                                     "mininterval": 0.25}
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=params["n_neighbors"],
        min_dist=params["min_dist"],
        n_epochs=params["n_epochs"],
        init=params["init"],
        metric="euclidean",
        low_memory=True,
        random_state=seed,
        force_approximation_algorithm=force_approximation,
        tqdm_kwds=bar or None,
    )
    try:
        with _UMAP_LOCK, warnings.catch_warnings():
            # "n_jobs overridden by setting random_state" and small-graph notices are expected.
            warnings.filterwarnings("ignore", category=UserWarning, module="umap")
            warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
            coords = np.asarray(reducer.fit_transform(x))
        _umap_learn_ready.set()
        return coords
    finally:
        # umap-learn calls numba.set_num_threads(1) for a seeded fit: give the process its threads back.
        numba.set_num_threads(threads)


def _layout(x: np.ndarray, params: dict[str, Any], epochs: Progress | None) -> np.ndarray:
    """UMAP of x (n, d') with the engine params["engine"] names (umap_engine's choice)."""
    if params["engine"] == "numpy":
        from core.projection.umap_numpy import umap_numpy

        return umap_numpy(x, n_neighbors=params["n_neighbors"], min_dist=params["min_dist"],
                          n_epochs=params["n_epochs"], init=params["init"], seed=params["seed"], epochs=epochs)
    return umap_layout(x, params, epochs=epochs)


def place_new(new_vectors: np.ndarray, ref_vectors: np.ndarray, ref_coords: np.ndarray, k: int = 10, *,
              pca_dims: int = 50, seed: int = 0) -> np.ndarray:
    """Coordinates (m, 2) float32 for new vectors (m, d) on a layout fitted with ref_vectors (n, d)
    at ref_coords (n, 2): place_reduced in the PCA-pca_dims space of the reference (unit rows),
    so a large batch of late points costs (m x sqrt(n)) 50-d products, not (m x n) d-d ones."""
    ref = l2_normalise(ref_vectors)
    new = l2_normalise(new_vectors)
    if new.shape[1] != ref.shape[1]:
        raise ValueError(f"new vectors are {new.shape[1]}-d but reference vectors are {ref.shape[1]}-d")
    if 0 < pca_dims < ref.shape[1] and ref.shape[0] > pca_dims:
        mean, components = pca_fit(ref, pca_dims, seed)
        offset = mean @ components.T
        ref, new = ref @ components.T - offset, new @ components.T - offset
    return place_reduced(new, ref, ref_coords, k, seed=seed)


def _fit_umap(x: np.ndarray, params: dict[str, Any], timings: dict[str, float],
              progress: Progress | None = None) -> Projection:
    n = x.shape[0]
    fitted = _sample_mask(n, max(UMAP_FIT_POINTS, MIN_POINTS), params["seed"])
    n_fit = int(fitted.sum())
    if not fitted.all():
        log.info("UMAP of %d points: fitting a random %d, placing the other %d", n, n_fit, n - n_fit)
    resolved = {**resolve_umap(n_fit, params), "fit_points": n_fit, "engine": umap_engine(n_fit)}
    start = time.perf_counter()
    reduced = _reduce(x, resolved["pca_dims"], resolved["seed"])
    timings["reduce"] = time.perf_counter() - start
    _tick(progress, _REDUCED)
    coords = np.empty((n, 2), dtype=np.float32)
    coords[fitted] = _layout(reduced if fitted.all() else reduced[fitted], resolved, _epoch_ticks(progress))
    timings["fit"] = time.perf_counter() - start - timings["reduce"]
    _place_rest(reduced, coords, fitted, resolved["seed"], timings)
    return Projection(_finite(coords, "umap"), "umap", resolved, fitted)


def _fit_pca(x: np.ndarray, params: dict[str, Any], timings: dict[str, float],
             progress: Progress | None = None) -> Projection:
    start = time.perf_counter()
    mean, components = pca_fit(x, 2, params["seed"])
    coords = x @ components.T - mean @ components.T  # no centred (n, d) copy of x
    timings["fit"] = time.perf_counter() - start
    fitted = np.ones(x.shape[0], dtype=bool)
    return Projection(_finite(coords, "pca"), "pca", dict(params), fitted, mean, components)


def _fit_tsne(x: np.ndarray, params: dict[str, Any], timings: dict[str, float],
              progress: Progress | None = None) -> Projection:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n, cap = x.shape[0], max(params["max_points"], MIN_POINTS)
    fitted = _sample_mask(n, cap, params["seed"])
    if n > cap:
        log.warning("t-SNE on %d points would be slow: fitting %d random points, placing the other %d",
                    n, cap, n - cap)
    resolved = resolve_tsne(int(fitted.sum()), params)
    start = time.perf_counter()
    reduced = _reduce(x, resolved["pca_dims"], resolved["seed"])  # PCA fitted on a row sample
    timings["reduce"] = time.perf_counter() - start
    tsne = TSNE(n_components=2, perplexity=resolved["perplexity"], init="pca", learning_rate="auto",
                max_iter=resolved["max_iter"], random_state=resolved["seed"])
    coords = np.empty((n, 2), dtype=np.float32)
    # sklearn's OpenMP threads spin-wait: on small inputs one thread is 7x faster on a busy box.
    with threadpool_limits(1 if int(fitted.sum()) < _SMALL_TSNE else None):
        coords[fitted] = tsne.fit_transform(reduced[fitted])
    timings["fit"] = time.perf_counter() - start - timings["reduce"]
    _place_rest(reduced, coords, fitted, resolved["seed"], timings)
    return Projection(_finite(coords, "tsne"), "tsne", resolved, fitted)


_FITTERS = {"umap": _fit_umap, "pca": _fit_pca, "tsne": _fit_tsne}


def fit_projection(
    vectors: np.ndarray,
    method: str = "umap",
    params: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> Projection:
    """Lay out vectors (n, d) float32 in 2-D. Returns a Projection with coords (n, 2) float32.

    method: "umap" | "pca" | "tsne"; params: overrides of DEFAULT_PARAMS[method] (unknown keys
    and values out of range raise BadInputError, see normalise_params); seed: used unless params has its own "seed". Rows are L2-normalised first
    (cosine geometry, like the store). Raises NotEnoughDataError below MIN_POINTS points and
    BadInputError for NaN / inf vectors. progress(done, 100): per cent done (UMAP reports its
    epochs; PCA and t-SNE only start and end).
    """
    merged = normalise_params(method, params)
    if not (params and "seed" in params):
        merged["seed"] = int(seed)
    x = _checked(vectors, method)
    _tick(progress, 0)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    projection = _FITTERS[method](x, merged, timings, progress)
    seconds = time.perf_counter() - start
    log.debug("%s layout of %d x %d in %.2f s (%s)", method, x.shape[0], x.shape[1], seconds, timings)
    result = Projection(projection.coords, projection.method, projection.params, projection.fitted,
                        projection.pca_mean, projection.pca_components, seconds, timings)
    _tick(progress, _STEPS)
    return result


def quick_projection(vectors: np.ndarray, *, seed: int = 0) -> Projection:
    """A layout to show at once while the full one runs: PCA-2 of the L2-normalised vectors,
    ~1 s at 100k x 512. vectors: (n, d); coords (n, 2) float32. New points place exactly."""
    return fit_projection(vectors, "pca", seed=seed)
