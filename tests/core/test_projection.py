"""core.projection on planted blobs: layouts keep neighbourhoods, new points land on their blob."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from core.errors import BadInputError, NotEnoughDataError
from core.projection import (
    MIN_POINTS,
    fit_projection,
    normalise_params,
    params_hash,
    place_points,
    project_linear,
    quick_projection,
)
from core.projection.place import knn_reduced, place_reduced
from core.warmup import warm_up_umap
from tests.actors import ADMIN

FAST_UMAP = {"n_epochs": 60}
FAST_TSNE = {"max_iter": 500}


def blobs(k: int = 4, per: int = 50, dim: int = 32, seed: int = 0, spread: float = 0.08) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors (k*per, dim) float32, blob ids, centres (k, dim)) of well-separated blobs."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim)).astype(np.float32)
    labels = np.repeat(np.arange(k), per)
    x = centres[labels] + spread * rng.standard_normal((k * per, dim)).astype(np.float32)
    return x.astype(np.float32), labels, centres


def members(centres: np.ndarray, per: int, seed: int, spread: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), per)
    x = centres[labels] + spread * rng.standard_normal((len(labels), centres.shape[1])).astype(np.float32)
    return x.astype(np.float32), labels


def nearest_blob(coords: np.ndarray, fit_coords: np.ndarray, fit_labels: np.ndarray) -> np.ndarray:
    """For each point, the blob whose 2-D centroid is closest."""
    centroids = np.stack([fit_coords[fit_labels == b].mean(axis=0) for b in np.unique(fit_labels)])
    return np.argmin(((coords[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)


@pytest.mark.parametrize("method,params", [("umap", FAST_UMAP), ("pca", None), ("tsne", FAST_TSNE)])
def test_layout_keeps_blob_neighbourhoods(method: str, params: dict | None) -> None:
    x, labels, _ = blobs()
    proj = fit_projection(x, method, params, seed=0)
    assert proj.coords.dtype == np.float32 and proj.coords.shape == (len(x), 2)
    assert np.isfinite(proj.coords).all()
    assert proj.fitted.all() and proj.method == method
    assert trustworthiness(x, proj.coords, n_neighbors=10) >= 0.9
    # every point's nearest blob centroid on the map is its own blob
    assert (nearest_blob(proj.coords, proj.coords, labels) == labels).mean() >= 0.98


def test_place_points_puts_new_members_near_their_blob() -> None:
    x, labels, centres = blobs()
    proj = fit_projection(x, "umap", FAST_UMAP)
    new, new_labels = members(centres, per=10, seed=7)
    placed = place_points(new, x, proj.coords, k=10)
    assert placed.dtype == np.float32 and placed.shape == (len(new), 2)
    assert (nearest_blob(placed, proj.coords, labels) == new_labels).all()
    # an exact copy of a fitted point lands (almost) on it
    same = place_points(x[:3], x, proj.coords)
    assert np.allclose(same, proj.coords[:3], atol=0.05 * np.ptp(proj.coords))


def test_pca_places_exactly_and_quick_layout_is_pca() -> None:
    x, labels, _ = blobs(dim=64)
    quick = quick_projection(x)
    assert quick.method == "pca" and quick.pca_mean is not None and quick.pca_components is not None
    assert np.allclose(project_linear(x[:20], quick.pca_mean, quick.pca_components), quick.coords[:20], atol=1e-5)


def test_tsne_above_its_cap_fits_a_subset_and_places_the_rest() -> None:
    x, labels, _ = blobs(per=40)
    proj = fit_projection(x, "tsne", {**FAST_TSNE, "max_points": 100})
    assert int(proj.fitted.sum()) == 100 and np.isfinite(proj.coords).all()
    assert (nearest_blob(proj.coords, proj.coords, labels) == labels).mean() >= 0.95


def test_umap_above_its_fit_sample_fits_a_subset_and_places_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.projection.fit as fit

    monkeypatch.setattr(fit, "UMAP_FIT_POINTS", 120)
    x, labels, _ = blobs(per=100, dim=64)
    proj = fit_projection(x, "umap", FAST_UMAP)
    assert int(proj.fitted.sum()) == 120 and proj.params["fit_points"] == 120
    assert np.isfinite(proj.coords).all() and "place" in proj.timings
    # the placed points land on their own blob, and neighbourhoods survive about as well as a full fit
    placed = ~proj.fitted
    assert (nearest_blob(proj.coords[placed], proj.coords[proj.fitted], labels[proj.fitted])
            == labels[placed]).mean() >= 0.98
    full = fit_projection(x, "umap", {**FAST_UMAP, "n_epochs": 60}).coords
    assert trustworthiness(x, proj.coords, n_neighbors=10) >= trustworthiness(x, full, n_neighbors=10) - 0.05


def test_reduced_knn_finds_the_exact_neighbours_and_places_on_them() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((30, 20)).astype(np.float32)
    ref = centres[rng.integers(0, 30, 6000)] + 0.3 * rng.standard_normal((6000, 20)).astype(np.float32)
    labels = rng.integers(0, 30, 3000)
    queries = centres[labels] + 0.3 * rng.standard_normal((3000, 20)).astype(np.float32)
    idx, sq = knn_reduced(queries, ref, 10)  # the inverted-file path (> 2048 reference points)
    exact = np.argsort(((queries[:, None] - ref[None]) ** 2).sum(-1), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, exact, strict=True)])
    assert recall >= 0.95
    assert np.allclose(sq[:, 0], ((queries - ref[idx[:, 0]]) ** 2).sum(-1), rtol=1e-3, atol=1e-3)
    # a reference point queried again lands on its own coordinates
    coords = rng.standard_normal((6000, 2)).astype(np.float32)
    same = place_reduced(ref[:50], ref, coords)
    assert same.dtype == np.float32 and np.allclose(same, coords[:50], atol=1e-2)
    with pytest.raises(ValueError, match="ref_coords"):
        place_reduced(queries, ref, coords[:10])


def test_deterministic_umap_repeats_exactly() -> None:
    x, _, _ = blobs(per=25)
    params = {**FAST_UMAP, "deterministic": True}
    first = fit_projection(x, "umap", params, seed=3).coords
    assert np.array_equal(first, fit_projection(x, "umap", params, seed=3).coords)


def test_too_few_points_raise_a_clear_error() -> None:
    x, _, _ = blobs(per=1)
    assert len(x) < MIN_POINTS
    for method in ("umap", "pca", "tsne"):
        with pytest.raises(NotEnoughDataError, match=f"at least {MIN_POINTS} points"):
            fit_projection(x, method)


def test_tiny_selection_just_above_the_minimum_still_lays_out() -> None:
    x, _, _ = blobs(k=2, per=3)
    proj = fit_projection(x, "umap", FAST_UMAP)
    assert proj.coords.shape == (6, 2) and np.isfinite(proj.coords).all()


def test_bad_input_is_reported() -> None:
    x, _, _ = blobs()
    x[5, 3] = np.nan
    with pytest.raises(BadInputError, match="row 5"):
        fit_projection(x, "pca")
    with pytest.raises(ValueError, match="umap"):
        fit_projection(x, "mds")
    with pytest.raises(BadInputError, match="n_neighbors"):
        fit_projection(blobs()[0], "umap", {"neighbours": 5})


@pytest.mark.parametrize(("method", "params", "named"), [
    ("umap", {"n_neighbors": 1}, "n_neighbors must be an integer >= 2"),
    ("umap", {"n_neighbors": 7.5}, "n_neighbors"),
    ("umap", {"min_dist": -0.1}, "min_dist must be between 0 and 1.0"),
    ("umap", {"min_dist": 1.5}, "min_dist must be between 0 and 1.0"),
    ("umap", {"min_dist": float("nan")}, "min_dist"),
    ("umap", {"n_epochs": -5}, "n_epochs must be None (auto) or an integer >= 0"),
    ("umap", {"n_epochs": True}, "n_epochs"),
    ("umap", {"init": "tsne"}, "init must be one of"),
    ("umap", {"pca_dims": 1}, "pca_dims must be 0 (never reduce) or an integer >= 2"),
    ("umap", {"deterministic": "yes"}, "deterministic must be true or false"),
    ("umap", {"seed": -1}, "seed must be an integer in"),
    ("umap", {"seed": "0"}, "seed"),
    ("pca", {"n_neighbors": 5}, "unknown pca parameter"),
    ("tsne", {"perplexity": 0}, "perplexity must be a number > 0"),
    ("tsne", {"max_iter": 100}, "max_iter must be an integer >= 250"),
    ("tsne", {"max_points": 2}, f"max_points must be an integer >= {MIN_POINTS}"),
    ("tsne", {"pca_dims": -3}, "pca_dims"),
])
def test_params_out_of_range_name_the_parameter_and_its_range(method: str, params: dict, named: str) -> None:
    with pytest.raises(BadInputError) as caught:
        normalise_params(method, params)
    assert named in str(caught.value)


def test_params_in_range_are_converted_to_their_types() -> None:
    umap = normalise_params("umap", {"n_neighbors": 30.0, "min_dist": 0, "n_epochs": np.int64(0),
                                     "deterministic": np.bool_(True), "pca_dims": 0})
    assert umap["n_neighbors"] == 30 and isinstance(umap["n_neighbors"], int)
    assert umap["min_dist"] == 0.0 and isinstance(umap["min_dist"], float)
    assert umap["n_epochs"] == 0 and umap["deterministic"] is True and umap["pca_dims"] == 0
    assert normalise_params("umap", {"min_dist": 1.0})["min_dist"] == 1.0  # = umap-learn's spread
    assert normalise_params("tsne", {"max_iter": 250})["max_iter"] == 250


def test_bad_params_fail_before_any_vector_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.pipeline.maps import get_map, has_map
    from tests.core.conftest import make_store, seed_clusters

    store = make_store("edge", tmp_path / "store")
    try:
        seed_clusters(store)

        def no_vectors(*args: object, **kwargs: object) -> None:
            raise AssertionError("vectors were read before the parameters were checked")

        monkeypatch.setattr(store, "vectors", no_vectors)
        with pytest.raises(BadInputError, match="min_dist"):
            get_map(store, "proj", "own", None, params={"min_dist": 3.0}, actor=ADMIN)
        with pytest.raises(BadInputError, match="perplexity"):
            get_map(store, "proj", "own", None, method="tsne", params={"perplexity": -1}, actor=ADMIN)
        with pytest.raises(BadInputError, match="n_epochs"):
            has_map(store, "proj", "own", None, params={"n_epochs": -1})
    finally:
        store.close()


def test_params_hash_is_deterministic_and_sensitive() -> None:
    ids = [f"id-{i}" for i in range(50)]
    h = params_hash("umap", {"min_dist": 0.1}, ids)
    assert h == params_hash("umap", {"min_dist": 0.1}, list(reversed(ids)))
    assert h == params_hash("umap", None, ids)  # min_dist 0.1 is the default
    assert h != params_hash("umap", {"min_dist": 0.3}, ids)
    assert h != params_hash("pca", None, ids)
    assert h != params_hash("umap", None, ids[:-1])
    assert len(h) == 16 and int(h, 16) >= 0


@pytest.mark.slow  # compiles pynndescent's NN-descent: ~30 s of numba JIT on 2 cores, every process
def test_warm_up_runs_once_per_process(tmp_path: Path) -> None:
    first = warm_up_umap(tmp_path / "numba")  # NUMBA_CACHE_DIR is set by conftest: kept as is
    assert first >= 0.0
    assert warm_up_umap() == 0.0


def test_unit_vectors_are_laid_out_without_a_normalised_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Vectors from the store are unit rows already (a memory-mapped cache block at 1M x 512 is
    2 GB): the layout uses them as they are, and gets exactly what normalising would give."""
    import core.projection.fit as fit_module
    from core.linalg import l2_normalise

    x, _, _ = blobs(per=60)
    unit = l2_normalise(x)
    path = tmp_path / "block.npy"
    np.save(path, unit)
    mapped = np.load(path, mmap_mode="c")
    monkeypatch.setattr(fit_module, "_CHECK_ROWS", 7)  # several blocks, one of them partial
    checked = fit_module._checked(mapped, "pca")
    assert np.shares_memory(checked, mapped), "unit rows are not copied"
    raw = fit_module._checked(x, "pca")  # not unit: normalised (a copy) exactly like l2_normalise
    assert not np.shares_memory(raw, x) and np.array_equal(raw, unit)
    assert np.array_equal(fit_projection(mapped, "pca").coords, fit_projection(x, "pca").coords)
    x[200, 1] = np.inf
    with pytest.raises(BadInputError, match=r"^1 vector\(s\) contain NaN or inf \(first at row 200\)"):
        fit_module._checked(x, "pca")


def _digits(n: int = 500) -> np.ndarray:
    from sklearn.datasets import load_digits

    from core.linalg import l2_normalise

    return l2_normalise(load_digits().data[:n].astype(np.float32))


def test_numpy_umap_is_as_trustworthy_as_umap_learn_on_real_digits() -> None:
    """The numba-free engine (the first maps of a cold process) keeps neighbourhoods as well as
    umap-learn with the same settings, on real handwritten digits."""
    from core.projection.fit import umap_layout
    from core.projection.params import resolve_umap
    from core.projection.umap_numpy import umap_numpy

    x = _digits()
    params = resolve_umap(len(x), normalise_params("umap", {"deterministic": True}))
    ours = umap_numpy(x, n_neighbors=params["n_neighbors"], min_dist=params["min_dist"],
                      n_epochs=params["n_epochs"], init=params["init"], seed=0)
    epochs: list[tuple[int, int]] = []
    theirs = umap_layout(x, params, epochs=lambda d, t: epochs.append((d, t)))
    assert epochs and epochs[-1] == (params["n_epochs"], params["n_epochs"])  # umap-learn's epochs reach us
    t_ours, t_theirs = (trustworthiness(x, c, n_neighbors=10) for c in (ours, theirs))
    assert ours.dtype == np.float32 and ours.shape == (len(x), 2) and np.isfinite(ours).all()
    assert t_ours >= t_theirs - 0.02, (t_ours, t_theirs)
    assert t_ours >= 0.95


def test_a_cold_process_lays_out_small_maps_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import core.projection.fit as fit

    monkeypatch.setattr(fit, "_umap_learn_ready", threading.Event())  # as in a fresh server
    x, labels, _ = blobs(per=60)
    seen: list[tuple[int, int]] = []
    proj = fit_projection(x, "umap", seed=1, progress=lambda d, t: seen.append((d, t)))
    assert proj.params["engine"] == "numpy"
    assert trustworthiness(x, proj.coords, n_neighbors=10) >= 0.9
    assert (nearest_blob(proj.coords, proj.coords, labels) == labels).mean() >= 0.98
    # per-cent progress that moves through the epochs (what the ETA is computed from)
    assert seen[0] == (0, 100) and seen[-1] == (100, 100) and len({d for d, _ in seen}) > 10
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert np.array_equal(proj.coords, fit_projection(x, "umap", seed=1).coords)  # deterministic for a seed
    # above the size limit, or once umap-learn is compiled here, maps stay umap-learn's
    assert fit.umap_engine(fit.NUMPY_UMAP_MAX + 1) == "umap-learn"
    fit._umap_learn_ready.set()
    assert fit.umap_engine(100) == "umap-learn"


def test_the_warm_up_child_exits_with_its_parent(tmp_path: Path) -> None:
    """A server stopped while its low-priority numba compile runs leaves no orphan compiling on."""
    import os
    import subprocess
    import sys
    import time

    from core import warmup

    assert "from core.warmup import warm_up_umap" in warmup._CHILD  # the body below stands in for it
    child_code = warmup._CHILD.split("from core.warmup")[0] + "time.sleep(120)\n"
    parent_code = ("import os, subprocess, sys\n"
                   f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}, str(os.getpid())],\n"
                   "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                   "print(child.pid, flush=True)\n")
    out = subprocess.run([sys.executable, "-c", parent_code], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if open(f"/proc/{pid}/stat").read().split()[2] == "Z":  # exited, not yet reaped
            return
        time.sleep(0.2)
    os.kill(pid, 9)
    raise AssertionError("the warm-up child outlived its parent by 15 s")


def test_a_filled_numba_cache_needs_no_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import warmup

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert not warmup._cache_filled(tmp_path / "numba")
    (tmp_path / "numba" / "umap").mkdir(parents=True)
    (tmp_path / "numba" / "umap" / "layouts.f-1.py311.nbi").write_bytes(b"index")
    assert warmup._cache_filled(tmp_path / "numba")
