"""Benchmark of core.analysis.clusters on real data that ships offline: agreement with labels, old vs new.

    nice -n 10 python benchmarks/clusters.py                 # real datasets + 20k timing
    nice -n 10 python benchmarks/clusters.py --sizes 20000 100000 --no-efficientnet

1. Agreement with labels: for each dataset/space, "hdbscan" (the method before issue 15: HDBSCAN
   on the sparse kNN graph) and "graph" (Louvain communities of the kNN graph, loose ones as noise,
   the default now), both through cluster_labels with the analysis defaults (k=10, min_cluster_size
   ~sqrt(n)/2). Columns: clusters found, noise share, ARI and NMI against the labels over all items
   (noise counts as one more group, so all-noise scores 0), ARI and homogeneity (1.0: every
   cluster holds one label; finer clusters than the labels are not penalised) over the clustered
   items only, and the clustering's seconds (the kNN graph, shared, is not counted).
   Datasets: sklearn digits raw pixels; digits through EfficientNet-Lite0 as the demo project
   embeds them (64 px, inverted; offline weights package) and bilinear-upscaled to 96 px; digits through a random 1024-wide ReLU
   layer (the cheap stand-in the tests use); the demo project's MLP space (core.demo_model);
   skimage lfw_subset (100 faces, 100 non-faces) raw pixels and through EfficientNet-Lite0.
2. Cost: cluster_labels on synthetic 512-d embedding-like data (100 clusters on a 32-d manifold)
   at --sizes, with the kNN graph's time and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from analysis import synthetic  # benchmarks/analysis.py's embedding-like data
from sklearn.metrics import adjusted_rand_score, homogeneity_score, normalized_mutual_info_score

from core.analysis import clusters as cl
from core.analysis.knn import knn_graph

warnings.filterwarnings("ignore")
Dataset = tuple[str, np.ndarray, np.ndarray]


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def efficientnet(images: list, cache: Path, name: str) -> np.ndarray | None:
    """EfficientNet-Lite0 vectors of PIL images, cached as <cache>/<name>.npy (None: not installed)."""
    path = cache / f"{name}.npy"
    if path.is_file():
        return np.load(path)
    try:
        from core.embedders import EFFICIENTNET_LITE0, load_embedder

        emb = load_embedder(EFFICIENTNET_LITE0, "image", device="cpu")
    except Exception as e:  # noqa: BLE001 - optional section: say why and go on
        print(f"(EfficientNet-Lite0 skipped: {e})")
        return None
    start = time.perf_counter()
    vecs = unit(emb.embed_images(images))
    print(f"(embedded {len(images)} images with EfficientNet-Lite0 in {time.perf_counter() - start:.0f} s)")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def datasets(use_effnet: bool, cache: Path) -> list[Dataset]:
    from PIL import Image
    from skimage.data import lfw_subset
    from sklearn.datasets import load_digits

    from core.demo import IMAGE_SIZE
    from core.demo_model import build_demo_data

    d = load_digits()
    rng = np.random.default_rng(0)
    relu = np.maximum((d.data / 16.0) @ rng.standard_normal((64, 1024)) + rng.standard_normal(1024), 0)
    demo = build_demo_data(0)
    faces = lfw_subset()
    face_truth = np.r_[np.zeros(100, int), np.ones(100, int)]
    out: list[Dataset] = [
        ("digits pixels", unit(d.data + 1e-3), d.target),
        ("digits random-relu-1024", unit(relu), d.target),
        ("demo demo-mlp", unit(demo.embedding + 1e-6), demo.truth),
        ("lfw_subset pixels", unit(faces.reshape(200, -1) + 1e-3), face_truth),
    ]
    if use_effnet:
        # as core.demo writes the digits: inverted, nearest-neighbour upscaled, RGB
        digits = [Image.fromarray((255 - np.clip(img / 16 * 255, 0, 255)).astype(np.uint8), "L").resize(
            (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.NEAREST).convert("RGB") for img in d.images]
        vecs = efficientnet(digits, cache, "digits-demo-effnet")
        if vecs is not None:
            out.insert(1, ("digits efficientnet-lite0", vecs, d.target))
        # the digits bilinear-upscaled to 96 px, not inverted
        digits96 = [Image.fromarray((img / 16 * 255).astype(np.uint8)).resize((96, 96)).convert("RGB")
                    for img in d.images]
        vecs = efficientnet(digits96, cache, "digits-96-effnet")
        if vecs is not None:
            out.insert(2, ("digits efficientnet-lite0 96px", vecs, d.target))
        lfw = [Image.fromarray((img * 255).astype(np.uint8), "L").resize((96, 96)).convert("RGB") for img in faces]
        vecs = efficientnet(lfw, cache, "lfw-effnet")
        if vecs is not None:
            out.append(("lfw_subset efficientnet-lite0", vecs, face_truth))
    return out


def agreement(data: list[Dataset]) -> pd.DataFrame:
    rows = []
    for name, x, truth in data:
        idx, sims = knn_graph(x, 10)
        for method in cl.CLUSTER_METHODS:
            start = time.perf_counter()
            found = cl.cluster_labels(idx, sims, x, method=method)  # type: ignore[arg-type]
            seconds = time.perf_counter() - start
            kept = found != cl.NOISE
            rows.append({
                "dataset": name, "n": len(x), "d": x.shape[1], "method": method,
                "clusters": len(set(found[kept])), "noise": round(float(1 - kept.mean()), 3),
                "ARI": round(adjusted_rand_score(truth, found), 3),
                "NMI": round(normalized_mutual_info_score(truth, found), 3),
                "ARI_clustered": round(adjusted_rand_score(truth[kept], found[kept]), 3) if kept.any() else 0.0,
                "homogeneity": round(homogeneity_score(truth[kept], found[kept]), 3) if kept.any() else 0.0,
                "seconds": round(seconds, 2),
            })
    return pd.DataFrame(rows)


def cost(sizes: list[int], methods: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for n in sizes:
        x, lab = synthetic(n)
        start = time.perf_counter()
        idx, sims = knn_graph(x, 10)
        knn_s = time.perf_counter() - start
        for method in methods:
            start = time.perf_counter()
            found = cl.cluster_labels(idx, sims, x, method=method)  # type: ignore[arg-type]
            rows.append({"n": n, "method": method, "knn_s": round(knn_s, 1),
                         "cluster_s": round(time.perf_counter() - start, 2),
                         "clusters": len(set(found[found >= 0])), "noise": round(float((found < 0).mean()), 3),
                         "ARI": round(adjusted_rand_score(lab, found), 3),
                         "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)})
    return pd.DataFrame(rows)


def timed(title: str, fn: Callable[[], pd.DataFrame]) -> None:
    start = time.perf_counter()
    frame = fn()
    print(f"\n== {title} ({time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.2f})")
    print(frame.to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20_000])
    parser.add_argument("--cost-methods", nargs="*", default=list(cl.CLUSTER_METHODS))
    parser.add_argument("--no-efficientnet", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/embedscope-bench-clusters"),
                        help="where EfficientNet vectors are kept between runs")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    print(f"cpus usable={len(os.sched_getaffinity(0))} load={os.getloadavg()}")
    timed("Clusters vs labels, old (hdbscan) and new (graph)",
          lambda: agreement(datasets(not args.no_efficientnet, args.cache)))
    if args.sizes:
        timed("Cost on synthetic 512-d data", lambda: cost(args.sizes, tuple(args.cost_methods)))


if __name__ == "__main__":
    main()
