"""Benchmark of core.analysis on data that ships offline; prints tables of figures.

    python benchmarks/analysis.py                  # mislabels + novelty + 10k timing
    python benchmarks/analysis.py --sizes 10000 100000 --seeds 5 --efficientnet

1. Likely mislabels: 5% of labels flipped at random (several seeds). AUROC and precision at
   k = number flipped, for our score (core.analysis.mislabels: kNN agreement + cross-validated
   linear probe + the model's top-1 prediction/confidence) and for cleanlab's
   get_label_quality_scores given the SAME out-of-sample probabilities (the probe's, the kNN's,
   their mixture) and the model's FULL probability matrix (more than we get: we only see top-1).
   Datasets: digits embedded by a small MLP trained on the other half (model predictions
   available), digits raw pixels, synthetic overlapping blobs, digits through EfficientNet-Lite0
   (--efficientnet, where the offline package is installed).
2. Novelty: one digit class held out of "train" (the MLP never sees it), "production" = the
   other half including that class; AUROC of our novelty score for the held-out class; the
   domain-classifier AUC of train vs production and train vs a same-distribution sample.
3. The demo project's planted problems (core.demo_model): flipped train labels, unseen 9s.
4. Wall time of the whole analysis (kNN + outliers + mislabels + duplicates + clusters) on
   synthetic 512-d embedding-like data, with kNN recall of the approximate path.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import roc_auc_score

from core.analysis import drift
from core.analysis import mislabels as ml
from core.analysis.knn import EXACT_MAX_POINTS, knn_between, knn_graph, recall_at_k
from core.analysis.novelty import novelty_scores
from core.pipeline.analyse import DEFAULT_PARAMS, compute_analysis
from core.pipeline.analysis_io import PAYLOAD_FIELDS, Selection

warnings.filterwarnings("ignore")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def mlp_embed(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate-layer embeddings of x and the model's probabilities (n, 10), from the demo's
    MLP classifier (core.demo_model) trained on (x_train, y_train)."""
    from core.demo_model import penultimate, train_mlp

    clf = train_mlp(x_train.astype(np.float32), y_train, seed)
    probs = np.zeros((x.shape[0], 10))
    probs[:, np.asarray(clf.classes_, dtype=int)] = clf.predict_proba(x)
    return unit(penultimate(clf, x.astype(np.float32)) + 1e-6), probs


def efficientnet_digits(images: np.ndarray) -> np.ndarray | None:
    try:
        from PIL import Image

        from core.embedders import load_embedder

        emb = load_embedder("efficientnet-lite0", "image", device="cpu")
    except Exception as e:  # noqa: BLE001 - optional section: say why and go on
        print(f"(EfficientNet-Lite0 skipped: {e})")
        return None
    pics = [Image.fromarray((img / 16 * 255).astype(np.uint8)).resize((96, 96)).convert("RGB")
            for img in images]
    return emb.embed_images(pics)


def datasets(seed: int, effnet: np.ndarray | None) -> list[tuple[str, np.ndarray, np.ndarray,
                                                                  np.ndarray | None]]:
    """(name, vectors, true labels, model probabilities or None) per dataset."""
    d = load_digits()
    x, y = d.data / 16.0, d.target
    rng = np.random.default_rng(seed)
    perm = rng.permutation(y.size)
    a, b = perm[: y.size // 2], perm[y.size // 2:]
    emb, probs = mlp_embed(x[a], y[a], x[b], seed)
    out = [("digits-mlp", emb, y[b], probs), ("digits-pixels", unit(x + 1e-3), y, None)]
    xb, yb = make_blobs(2000, n_features=32, centers=10, cluster_std=9.0, random_state=seed)
    out.append(("blobs-overlap", unit(xb), yb, None))
    if effnet is not None:
        out.append(("digits-effnet", effnet, y, None))
    return out


def flip(y: np.ndarray, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_classes = int(y.max()) + 1
    chosen = rng.choice(y.size, int(round(rate * y.size)), replace=False)
    noisy = y.copy()
    noisy[chosen] = (y[chosen] + rng.integers(1, n_classes, chosen.size)) % n_classes
    return noisy, np.isin(np.arange(y.size), chosen)


def ranking(truth: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    top = np.argsort(-score, kind="stable")[: int(truth.sum())]
    return float(roc_auc_score(truth, score)), float(truth[top].mean())


def mislabel_bench(seeds: int, use_effnet: bool) -> pd.DataFrame:
    from cleanlab.rank import get_label_quality_scores

    effnet = efficientnet_digits(load_digits().data) if use_effnet else None
    rows = []
    for seed in range(seeds):
        for name, x, y, probs in datasets(seed, effnet):
            c = int(y.max()) + 1
            noisy, truth = flip(y, 0.05, np.random.default_rng(1000 + seed))
            idx, sims = knn_graph(x, 10)
            p_knn = ml.knn_label_probs(idx, sims, noisy, c)
            p_probe = ml.probe_label_probs(x, noisy, c, seed=seed)
            kwargs: dict[str, Any] = {}
            sources: dict[str, np.ndarray | None] = {"probe": p_probe, "knn": p_knn,
                                                     "knn+probe": (p_knn + p_probe) / 2}
            if probs is not None:  # we only get the top-1 prediction and its confidence
                kwargs = {"pred_codes": probs.argmax(1), "confidences": probs.max(1)}
                top1 = ml.model_label_probs(probs.argmax(1), probs.max(1), noisy, c)
                sources["model-top1"] = top1
                sources["knn+probe+model-top1"] = (p_knn + p_probe + top1) / 3
                sources["model-full"] = probs  # more than embedscope stores: the whole softmax
            ours = ml.mislabel_scores(ml.label_probs(x, idx, sims, noisy, c, seed=seed, **kwargs),
                                      noisy)
            cases: dict[str, np.ndarray] = {"ours": ours}
            for src, p in sources.items():
                if p is not None:
                    cases[f"cleanlab[{src}]"] = 1 - get_label_quality_scores(
                        noisy, p / p.sum(1, keepdims=True))
            for method, score in cases.items():
                auc, prec = ranking(truth, score)
                rows.append({"dataset": name, "seed": seed, "method": method, "auroc": auc,
                             "precision@k": prec})
            print(f"  seed {seed} {name}: done", flush=True)
    return pd.DataFrame(rows)


def novelty_bench(held_out: list[int]) -> pd.DataFrame:
    d = load_digits()
    x, y = d.data / 16.0, d.target
    rows = []
    for c in held_out:
        rng = np.random.default_rng(c)
        perm = rng.permutation(y.size)
        half = np.zeros(y.size, bool)
        half[perm[: y.size // 2]] = True
        train = half & (y != c)
        prod = ~half
        emb, _ = mlp_embed(x[train], y[train], x, seed=c)
        for space, vecs in (("mlp", emb), ("pixels", unit(x + 1e-3))):
            nov = novelty_scores(vecs[train], vecs[prod], 10)
            same = ~half & (y != c)
            rows.append({
                "held_out": c, "space": space,
                "novelty_auroc": roc_auc_score(y[prod] == c, nov.scores),
                "domain_auc_train_vs_prod": drift.domain_classifier_auc(vecs[train], vecs[prod]),
                "domain_auc_same_distribution": drift.domain_classifier_auc(
                    vecs[train], vecs[same]),
            })
    return pd.DataFrame(rows)


def demo_bench(seeds: int) -> pd.DataFrame:
    """The demo project's own planted structure (core.demo_model): 2% flipped train labels with
    the MLP trained on them (its train predictions are in-sample, as a user's would be), and the
    9s, never seen in train, arriving in production."""
    from cleanlab.rank import get_label_quality_scores

    from core.demo_model import build_demo_data

    rows = []
    for seed in range(seeds):
        data = build_demo_data(seed)
        train, prod = data.split == "train", data.split == "production"
        for space, vecs in (("demo-mlp", unit(data.embedding + 1e-6)), ("pixels", unit(
                data.pixels + 1e-3))):
            x, noisy = vecs[train], data.label[train].astype(int)
            pred, conf = data.prediction[train].astype(int), data.confidence[train]
            idx, sims = knn_graph(x, 10)
            probs = ml.label_probs(x, idx, sims, noisy, 10, pred_codes=pred, confidences=conf)
            same = (ml.knn_label_probs(idx, sims, noisy, 10) + ml.probe_label_probs(x, noisy, 10)
                    + ml.model_label_probs(pred, conf, noisy, 10)) / 3
            truth = data.noisy[train]
            nov = novelty_scores(vecs[train], vecs[prod], 10)
            rows.append({
                "seed": seed, "space": space,
                "ours_auroc": ranking(truth, ml.mislabel_scores(probs, noisy))[0],
                "cleanlab_same_inputs_auroc": ranking(
                    truth, 1 - get_label_quality_scores(noisy, same / same.sum(1, keepdims=True)))[0],
                "ours_p@k": ranking(truth, ml.mislabel_scores(probs, noisy))[1],
                "nines_novelty_auroc": roc_auc_score(data.truth[prod] == 9, nov.scores),
                "domain_auc_train_vs_prod": drift.domain_classifier_auc(vecs[train], vecs[prod]),
            })
    return pd.DataFrame(rows)


def synthetic(n: int, d: int = 512, clusters: int = 100, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Embedding-like data: clusters on a 32-d latent manifold in d dims, plus isotropic noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, 32)))[0].T.astype(np.float32)
    centres = rng.standard_normal((clusters, 32)).astype(np.float32)
    lab = rng.integers(0, clusters, n)
    spread = rng.uniform(0.3, 0.8, clusters).astype(np.float32)[lab, None]
    z = centres[lab] + rng.standard_normal((n, 32)).astype(np.float32) * spread
    return unit(z @ basis + 0.15 * rng.standard_normal((n, d)).astype(np.float32)), lab


def timing_bench(sizes: list[int]) -> pd.DataFrame:
    rows = []
    for n in sizes:
        x, lab = synthetic(n)
        rng = np.random.default_rng(0)
        labels, _ = flip(lab, 0.05, rng)
        preds = np.where(rng.random(n) < 0.9, lab, (lab + 1) % 100)
        payload = pd.DataFrame({f: None for f in PAYLOAD_FIELDS}, index=[str(i) for i in range(n)])
        payload["dataset"] = "synthetic"
        payload["label"] = labels.astype(str)
        payload["prediction"] = preds.astype(str)
        payload["confidence"] = 0.9
        sel = Selection(ids=list(payload.index), vectors=x, payload=payload)
        start = time.perf_counter()
        result = compute_analysis(sel, dict(DEFAULT_PARAMS))
        total = time.perf_counter() - start
        q = rng.choice(n, min(n, 1000), replace=False)
        exact, _ = knn_between(x[q], x, 10, exclude=q)
        approx, _ = knn_graph(x, 10) if n > EXACT_MAX_POINTS else (exact, None)
        rows.append({"n": n, "d": x.shape[1], "total_s": round(total, 1),
                     **{f"{k}_s": v for k, v in result.summary["timings"].items()},
                     "knn_recall@10": recall_at_k(approx[q] if n > EXACT_MAX_POINTS else exact, exact),
                     "clusters": result.summary["clusters"]})
    return pd.DataFrame(rows)


def timed(title: str, fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    start = time.perf_counter()
    frame = fn()
    print(f"\n== {title} ({time.perf_counter() - start:.0f} s)")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--efficientnet", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], choices=["mislabels", "novelty", "demo", "timing"])
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    print(f"cpus usable={len(os.sched_getaffinity(0))} load={os.getloadavg()}")
    if "mislabels" not in args.skip:
        res = timed("Mislabel ranking, 5% random flips", lambda: mislabel_bench(
            args.seeds, args.efficientnet))
        for metric in ("auroc", "precision@k"):
            table = res.groupby(["method", "dataset"])[metric].agg(["mean", "min"]).unstack(1)
            print(f"\n{metric} (mean and min over seeds)")
            print(table.round(4).to_string())
    if "novelty" not in args.skip:
        res = timed("Novelty of a held-out digit class", lambda: novelty_bench(list(range(10))))
        print(res.groupby("space")[["novelty_auroc", "domain_auc_train_vs_prod",
                                    "domain_auc_same_distribution"]].agg(["mean", "min"])
              .round(3).to_string())
    if "demo" not in args.skip:
        res = timed("The demo project (core.demo_model)", lambda: demo_bench(args.seeds))
        print(res.groupby("space").mean(numeric_only=True).drop(columns="seed").round(4)
              .to_string())
    if "timing" not in args.skip and args.sizes:
        res = timed("Whole-analysis wall time, synthetic 512-d", lambda: timing_bench(args.sizes))
        print(res.to_string(index=False))


if __name__ == "__main__":
    main()
