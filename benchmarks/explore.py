"""Benchmark of the Explore map's computation: layouts, persistence, placement, numba warm-up.

    python benchmarks/explore.py                          # 10k and 50k points
    python benchmarks/explore.py --sizes 10000 50000 100000
    python benchmarks/explore.py --sizes 100000 --no-store --no-defaults
    python benchmarks/explore.py --numba                  # first fit in a fresh process, cold vs warm cache

Data: synthetic 512-d embedding-like vectors: 40 clusters, each a random centre plus a random
24-d subspace of spread plus isotropic noise, L2-normalised (structure at several scales, so
trustworthiness is not saturated at 1.0).

Per size (all times wall seconds; numba compiled beforehand by a warm-up so JIT is not counted):
  defaults    umap-learn's UMAP() on the unit vectors (Euclidean = cosine ranking), parallel
  chosen      core.projection.fit_projection(x, "umap"): PCA-50 first, size-dependent epochs
              and init (DEFAULT_PARAMS), parallel
  tw          sklearn trustworthiness (10 neighbours) of each layout on a seeded 5k subsample
  quick       core.projection.quick_projection (PCA-2), the layout shown at once
  place       place_points of 1,000 new points against the n fitted points
  store       (embedded Qdrant Edge in a temp dir) upsert; get_map first call (read + fit + save);
              reopen: a new EdgeStore + get_map (persisted map reused); reuse_with_ids: get_map
              given the current ids (what the dashboard does); +1,000 points: get_map placing
              them (no refit)
  bytes       the coordinates the browser gets: raw float32, base64, JSON text (4 decimals)
  --sample S1 S2 ..  (instead of the above) UMAP fitted on a random S points, the rest placed
              (core.projection.fit.UMAP_FIT_POINTS), vs the full fit when S >= n: time split and
              trustworthiness; --full-too also times the full fit at every size
  --reopen    (instead of the above) reopening a persisted map of n points (8-d vectors: the
              reopen reads no vector): a new EdgeStore + get_map with the revision unchanged,
              then after a payload write (ids listed once, revision re-recorded), document size
The browser canvas timings are in benchmarks/explore_canvas.py (see canvas_section below).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba-cache"))

from core.auth import system_actor
from core.projection import fit_projection, place_points, quick_projection  # noqa: E402
from core.projection.place import unit_rows  # noqa: E402

warnings.filterwarnings("ignore")
DIM = 512
NEW_POINTS = 1_000


def embedding_like(n: int, dim: int = DIM, clusters: int = 40, rank: int = 24, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit rows: clusters with low-rank spread plus isotropic noise."""
    rng = np.random.default_rng(seed)
    centres = 0.5 * rng.standard_normal((clusters, dim)).astype(np.float32)
    basis = rng.standard_normal((clusters, rank, dim)).astype(np.float32) / np.sqrt(rank)
    label = rng.integers(0, clusters, n)
    x = centres[label] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    for c in range(clusters):  # per cluster, to keep memory at n x dim
        rows = np.flatnonzero(label == c)
        x[rows] += (0.9 * rng.standard_normal((len(rows), rank)).astype(np.float32)) @ basis[c]
    return unit_rows(x)


def trust(x: np.ndarray, coords: np.ndarray, sample: int = 5_000) -> float:
    from sklearn.manifold import trustworthiness

    rows = np.random.default_rng(1).choice(len(x), min(sample, len(x)), replace=False)
    return float(trustworthiness(x[rows], coords[rows], n_neighbors=10))


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def warm_numba() -> None:
    from core.warmup import warm_up_umap

    warm_up_umap()
    fit_projection(embedding_like(300, 64), "umap", {"n_epochs": 10})


def layout_section(x: np.ndarray, defaults: bool) -> dict[str, Any]:
    """Fit times and trustworthiness: umap-learn defaults vs our chosen params, quick, place."""
    row: dict[str, Any] = {}
    if defaults:
        import umap

        coords, row["defaults_s"] = timed(umap.UMAP().fit_transform, x)
        row["defaults_tw"] = trust(x, coords)
    proj, row["chosen_s"] = timed(fit_projection, x, "umap")
    row["chosen_tw"] = trust(x, proj.coords)
    row["chosen_params"] = {k: proj.params[k] for k in ("n_epochs", "init", "pca_dims")}
    row["chosen_split"] = {k: round(v, 1) for k, v in proj.timings.items()}
    _, row["quick_s"] = timed(quick_projection, x)
    new = embedding_like(NEW_POINTS, seed=99)
    _, row["place_s"] = timed(place_points, new, x, proj.coords)
    row.update(payload_bytes(proj.coords))
    return row


def sample_section(x: np.ndarray, samples: list[int], full_too: bool) -> dict[str, Any]:
    """UMAP on a sample + placement of the rest, per sample size (and the full fit)."""
    import core.projection.fit as fit

    row: dict[str, Any] = {}
    for size in sorted(set(samples + ([len(x)] if full_too else []))):
        fit.UMAP_FIT_POINTS = size
        proj, seconds = timed(fit_projection, x, "umap")
        label = "full" if size >= len(x) else f"s{size}"
        row[f"{label}_s"] = seconds
        row[f"{label}_split"] = {k: round(v, 1) for k, v in proj.timings.items()}
        row[f"{label}_tw"] = trust(x, proj.coords)
    return row


def payload_bytes(coords: np.ndarray) -> dict[str, int]:
    """Sizes of the (n, 2) coordinates as they could travel to the browser."""
    raw = np.ascontiguousarray(coords, dtype="<f4").tobytes()
    text = json.dumps(np.round(coords.astype(float), 4).tolist(), separators=(",", ":"))
    return {"bytes_raw": len(raw), "bytes_b64": len(base64.b64encode(raw)), "bytes_json": len(text)}


def store_section(x: np.ndarray) -> dict[str, Any]:
    """Persisted maps on an embedded store: first get_map, reopen, placement of new points."""
    from core.ids import point_id
    from core.pipeline.maps import get_map
    from core.store import EdgeStore
    from core.types import Item, SpaceInfo

    def add(store: Any, vectors: np.ndarray, start: int) -> None:
        items = [Item(key=f"p{start + i}") for i in range(len(vectors))]
        ids = [point_id("bench", "data", it.key) for it in items]
        store.upsert("bench", "own", ids, vectors, [it.payload("data") for it in items])

    row: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="explore-bench-") as folder:
        store = EdgeStore(folder)
        store.ensure_space("bench", SpaceInfo("own", x.shape[1], "vector"))
        _, row["upsert_s"] = timed(add, store, x, 0)
        _, row["get_map_first_s"] = timed(get_map, store, "bench", "own", None)
        store.close()
        start = time.perf_counter()
        store = EdgeStore(folder)
        result = get_map(store, "bench", "own", None, actor=system_actor())
        row["reopen_s"] = time.perf_counter() - start
        assert not result.fitted
        # the dashboard reads the selection's payloads anyway (to colour the map): ids= skips
        # get_map's own scroll over the store
        _, row["reuse_with_ids_s"] = timed(get_map, store, "bench", "own", None, ids=result.ids)
        add(store, embedding_like(NEW_POINTS, seed=98), len(x))
        result, row["place_1k_via_store_s"] = timed(get_map, store, "bench", "own", None)
        assert result.placed == NEW_POINTS and not result.fitted
        store.close()
    return row


def reopen_section(n: int) -> dict[str, Any]:
    """Reopen of a persisted n-point map: unchanged revision, then after one payload write."""
    from core.ids import point_id
    from core.pipeline.map_doc import MAP_KIND
    from core.pipeline.maps import get_map
    from core.store import EdgeStore
    from core.types import Item, SpaceInfo

    row: dict[str, Any] = {}
    x = embedding_like(n, dim=8, clusters=8, rank=2)
    with tempfile.TemporaryDirectory(prefix="explore-reopen-") as folder:
        store = EdgeStore(folder)
        store.ensure_space("bench", SpaceInfo("own", 8, "vector"))
        items = [Item(key=f"p{i}") for i in range(n)]
        ids = [point_id("bench", "data", it.key) for it in items]
        _, row["upsert_s"] = timed(store.upsert, "bench", "own", ids, x, [it.payload("data") for it in items])
        _, row["first_pca_map_s"] = timed(get_map, store, "bench", "own", None, method="pca")
        (key,) = store.list_documents("bench", MAP_KIND)
        row["doc_json_mb"] = len(json.dumps(store.get_document("bench", MAP_KIND, key))) / 1e6
        store.close()
        start = time.perf_counter()
        store = EdgeStore(folder)
        row["open_store_s"] = time.perf_counter() - start
        result, row["reopen_map_s"] = timed(get_map, store, "bench", "own", None, method="pca")
        assert not result.fitted and len(result) == n
        store.set_payload("bench", ids[:1], [{"label": "x"}])
        _, row["after_write_s"] = timed(get_map, store, "bench", "own", None, method="pca")
        _, row["after_restamp_s"] = timed(get_map, store, "bench", "own", None, method="pca")
        store.close()
    return row


def canvas_section(sizes: list[int]) -> None:
    """Browser side (Plotly WebGL canvas in Chromium): owned by benchmarks/explore_canvas.py;
    run it with the same sizes when --canvas is given."""
    script = Path(__file__).with_name("explore_canvas.py")
    if not script.is_file():
        print("canvas: benchmarks/explore_canvas.py not present")
        return
    subprocess.run([sys.executable, str(script), "--points", *map(str, sizes)], check=False)


_FRESH = textwrap.dedent("""
    import time, numpy as np
    t = time.perf_counter(); import umap; imp = time.perf_counter() - t
    from core.projection import fit_projection
    from benchmarks.explore import embedding_like
    x = embedding_like(5000, 128)
    warm = 0.0
    if {warm_up}:
        from core.warmup import warm_up_umap
        warm = warm_up_umap()
    t, c = time.perf_counter(), time.process_time()
    fit_projection(x, "umap", {{"n_epochs": 50}})
    first, first_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter(); fit_projection(x, "umap", {{"n_epochs": 50}}); second = time.perf_counter() - t
    print(f"{{imp:.1f}} {{warm:.1f}} {{first:.1f}} {{second:.1f}} {{first_cpu:.1f}}")
""")


def numba_section() -> None:
    """First UMAP fit (5k x 128, NN-descent path) in fresh processes: cold vs warm numba cache."""
    root = Path(__file__).resolve().parents[1]
    print("numba: fresh process; import umap / warm_up_umap / first fit / second fit (s)")
    with tempfile.TemporaryDirectory(prefix="numba-bench-") as cache:
        for label, warm_up in (("cold cache", False), ("warm cache", False), ("warm cache + warm_up_umap", True)):
            path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
            env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": path}
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _FRESH.format(warm_up=warm_up)], env=env, cwd=root,
                                  capture_output=True, text=True, check=False)
            total = time.perf_counter() - start
            if done.returncode != 0:
                print(f"  {label}: failed\n{done.stderr[-2000:]}")
                return
            out = done.stdout.split()
            print(f"  {label:28s} import {out[0]:>5s}  warm-up {out[1]:>5s}  first fit {out[2]:>5s} "
                  f"(cpu {out[4]:>5s})  second fit {out[3]:>5s}  process total {total:5.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--no-defaults", action="store_true", help="skip umap-learn's defaults (the slow part)")
    parser.add_argument("--no-store", action="store_true", help="skip the embedded-store figures")
    parser.add_argument("--numba", action="store_true", help="only the fresh-process JIT figures")
    parser.add_argument("--canvas", action="store_true", help="also run benchmarks/explore_canvas.py")
    parser.add_argument("--sample", type=int, nargs="+", help="only UMAP on these sample sizes + placement")
    parser.add_argument("--full-too", action="store_true", help="with --sample: also the full fit")
    parser.add_argument("--reopen", action="store_true", help="only the reopen of a persisted map")
    args = parser.parse_args(argv)
    if args.numba:
        numba_section()
        return
    print(f"cpu threads: numba {os.environ.get('NUMBA_NUM_THREADS', os.cpu_count())}; warming numba up...")
    if not args.reopen:
        warm_numba()
    for n in args.sizes:
        if args.reopen:
            print(f"n={n}: " + json.dumps({k: round(v, 3) for k, v in reopen_section(n).items()}), flush=True)
            continue
        x = embedding_like(n)
        if args.sample:
            row = sample_section(x, args.sample, args.full_too)
            print(f"n={n}: " + json.dumps(row), flush=True)
            continue
        row = layout_section(x, not args.no_defaults)
        if not args.no_store:
            row.update(store_section(x))
        print(f"n={n}: " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
              flush=True)
    if args.canvas:
        canvas_section(args.sizes)


if __name__ == "__main__":
    main()
