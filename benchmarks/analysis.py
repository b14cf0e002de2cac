"""Benchmark of core.analysis on data that ships offline; prints tables of figures.

    python benchmarks/analysis.py                  # mislabels + novelty + 10k timing
    python benchmarks/analysis.py --sizes 10000 100000 --seeds 5 --no-efficientnet
    python benchmarks/analysis.py --skip clean novelty demo timing --datasets wine lfw_faces/hog

1. Likely mislabels: 5% and 10% of labels flipped at random (several seeds) in real data sets
   that ship in packages, each in several spaces (benchmarks/real_spaces.py: digits, lfw faces,
   textiles, breast cancer, wine, iris; pixels, HOG (of shifted digits too), an MLP's hidden layer, EfficientNet-Lite0,
   standardised/PCA features). AUROC and precision at k = number flipped for our score
   (core.analysis.mislabels: kNN agreement at several k + two cross-validated linear probes, on
   PCA components and on the vectors as given + the model's top-1 prediction/confidence, each
   calibrated by its own temperature, weights fitted on the data), each of those signals alone,
   cleanlab's get_label_quality_scores on out-of-fold logistic-regression probabilities of the
   same vectors, and plain kNN disagreement (k=10); the likely_mislabels cut-off's real and
   estimated precision and recall; the fitted weights.
   Clean labels (section "clean"): what the cut-off lists with nothing flipped, on uploads of 30
   and 100 items of 3 random classes and on each whole data set.
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
from sklearn.datasets import load_digits
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


def flip(y: np.ndarray, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_classes = int(y.max()) + 1
    chosen = rng.choice(y.size, int(round(rate * y.size)), replace=False)
    noisy = y.copy()
    noisy[chosen] = (y[chosen] + rng.integers(1, n_classes, chosen.size)) % n_classes
    return noisy, np.isin(np.arange(y.size), chosen)


def ranking(truth: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    top = np.argsort(-score, kind="stable")[: int(truth.sum())]
    return float(roc_auc_score(truth, score)), float(truth[top].mean())


def cleanlab_scores(x: np.ndarray, noisy: np.ndarray, seed: int) -> np.ndarray:
    """cleanlab's documented workflow: out-of-fold probabilities of a logistic regression on the
    vectors as given (5 folds), then 1 - get_label_quality_scores."""
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    oof = cross_val_predict(LogisticRegression(max_iter=1000), x, noisy, cv=folds, method="predict_proba")
    return 1.0 - get_label_quality_scores(noisy, oof)


def knn_disagreement(idx: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Share of the k nearest neighbours whose label differs (plain, unweighted)."""
    return (noisy[idx] != noisy[:, None]).mean(axis=1)


def mislabel_bench(seeds: int, use_effnet: bool, rates: tuple[float, ...] = (0.05, 0.1),
                   only: list[str] | None = None) -> pd.DataFrame:
    """only: dataset names or dataset/space pairs to keep (all when None)."""
    from real_spaces import spaces  # benchmarks/ is on sys.path when this script runs

    rows = []
    for sp in spaces(use_effnet):
        if not _selected(sp, only):
            continue
        x, y, c = sp.vectors, sp.labels, int(sp.labels.max()) + 1
        idx, sims = knn_graph(x, 10)
        kwargs: dict[str, Any] = {}
        if sp.model_probs is not None:  # embedscope stores the top-1 prediction and its confidence
            kwargs = {"pred_codes": sp.model_probs.argmax(1), "confidences": sp.model_probs.max(1)}
        for seed in range(seeds):
            for rate in rates:
                noisy, truth = flip(y, rate, np.random.default_rng(1000 * seed + int(rate * 100)))
                fit = ml.fit_label_probs(x, idx, sims, noisy, c, seed=seed, keep_signals=True, **kwargs)
                likely, est = ml.likely_mislabels(fit.probs, noisy)
                cases = {"ours": ml.mislabel_scores(fit.probs, noisy),
                         "cleanlab": cleanlab_scores(x, noisy, seed),
                         "knn-disagree": knn_disagreement(idx, noisy)}
                cases |= {f"{name}-alone": ml.mislabel_scores(p, noisy) for name, p in fit.signals.items()}
                row: dict[str, Any] = {"dataset": sp.dataset, "space": sp.space, "n": y.size,
                                       "seed": seed, "rate": rate}
                for method, score in cases.items():
                    row[f"auroc:{method}"], row[f"p@k:{method}"] = ranking(truth, score)
                row |= {f"w:{k}": v for k, v in fit.weights.items()}
                row |= {"flagged": int(likely.sum()), "flag_precision": truth[likely].mean() if likely.any()
                        else np.nan, "flag_recall": truth[likely].sum() / truth.sum(),
                        "est_precision": np.nan if est is None else est}
                rows.append(row)
        print(f"  {sp.dataset}/{sp.space} (n={y.size}): done", flush=True)
    return pd.DataFrame(rows)


def _selected(sp: Any, only: list[str] | None) -> bool:
    """Whether --datasets keeps this space (its dataset or its dataset/space named; all when None)."""
    return not only or sp.dataset in only or f"{sp.dataset}/{sp.space}" in only


def clean_bench(seeds: int, use_effnet: bool, only: list[str] | None = None,
                sizes: tuple[int, ...] = (30, 100)) -> pd.DataFrame:
    """Clean labels, nothing flipped: how many items the likely-mislabel cut-off lists anyway.

    Per space: small uploads (sizes items of 3 classes drawn at random, seeded) and the whole
    data set; listed items are the space's own confusions (or the data set's own label noise)."""
    from real_spaces import spaces

    rows = []
    for sp in spaces(use_effnet):
        if not _selected(sp, only):
            continue
        for n in (*sizes, sp.labels.size):
            for seed in range(seeds if n < sp.labels.size else 1):
                rng = np.random.default_rng(seed)
                keep = np.arange(sp.labels.size)
                if n < sp.labels.size:
                    present = np.unique(sp.labels)
                    classes = rng.choice(present, min(3, present.size), replace=False)
                    pool = np.flatnonzero(np.isin(sp.labels, classes))
                    keep = np.sort(rng.choice(pool, min(n, pool.size), replace=False))
                codes, _ = ml.encode_labels(sp.labels[keep].tolist())
                x = sp.vectors[keep]
                idx, sims = knn_graph(x, min(10, keep.size - 1))
                probs = ml.label_probs(x, idx, sims, codes, int(codes.max()) + 1, seed=seed)
                listed, est = ml.likely_mislabels(probs, codes)
                rows.append({"dataset": sp.dataset, "space": sp.space, "n": keep.size, "seed": seed,
                             "listed": int(listed.sum()), "none_listed": not listed.any(),
                             "stated_precision": np.nan if est is None else est})
    return pd.DataFrame(rows)


def mislabel_tables(res: pd.DataFrame) -> None:
    """Per dataset/space means over seeds and rates: AUROC and precision@k of every method, whether
    ours >= the best reference (cleanlab, kNN disagreement), the cut-off's figures, the weights."""
    keys = ["dataset", "space"]
    mean = res.groupby(keys, sort=False).mean(numeric_only=True)
    for metric in ("auroc", "p@k"):
        cols = [c for c in mean.columns if c.startswith(f"{metric}:")]
        table = mean[cols].rename(columns=lambda c: c.split(":", 1)[1])
        best_ref = table[["cleanlab", "knn-disagree"]].max(axis=1)
        table["ours>=best_ref"] = table["ours"] >= best_ref - 1e-9
        table["ours-best_ref"], table["se"] = _paired_gap(res, metric, keys, table)
        alone = [c for c in table.columns if c.endswith("-alone")]
        table["ours-best_signal"] = table["ours"] - table[alone].max(axis=1)
        print(f"\n{metric} (mean over {res['seed'].nunique()} seeds x flip rates {sorted(res['rate'].unique())})")
        print(table.round(3).to_string())
    print("(ours-best_ref: mean paired difference from the better reference on the same flips; se: its "
          "standard error over seeds x rates, so a gap inside ~2 se is a tie at this many seeds)")
    cut = mean[["flagged", "flag_precision", "est_precision", "flag_recall"]]
    print("\nlikely_mislabels cut-off: items flagged, their real precision, our estimate, recall")
    print(cut.round(3).to_string())
    weights = mean[[c for c in mean.columns if c.startswith("w:")]].rename(columns=lambda c: c[2:])
    print("\nmixture weights (mean)")
    print(weights.round(2).to_string())


def _paired_gap(res: pd.DataFrame, metric: str, keys: list[str], table: pd.DataFrame
               ) -> tuple[pd.Series, pd.Series]:
    """Per dataset/space: mean and standard error of ours - (the reference with the better mean),
    paired run by run (same flips), aligned with table's index."""
    gaps, ses = [], []
    for key, runs in res.groupby(keys, sort=False):
        ref = "cleanlab" if table.loc[key, "cleanlab"] >= table.loc[key, "knn-disagree"] else "knn-disagree"
        diff = runs[f"{metric}:ours"] - runs[f"{metric}:{ref}"]
        gaps.append(diff.mean())
        ses.append(diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan)
    return pd.Series(gaps, index=table.index), pd.Series(ses, index=table.index)


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
    parser.add_argument("--no-efficientnet", action="store_true",
                        help="leave out the EfficientNet-Lite0 spaces (cached after the first run)")
    parser.add_argument("--datasets", nargs="*", default=None,
                        help="mislabels and clean only on these datasets or dataset/space pairs (e.g. wine lfw_faces/hog)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["mislabels", "clean", "novelty", "demo", "timing"])
    args = parser.parse_args()
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    print(f"cpus usable={len(os.sched_getaffinity(0))} load={os.getloadavg()}")
    if "mislabels" not in args.skip:
        res = timed("Mislabel ranking, 5% and 10% random flips, real data", lambda: mislabel_bench(
            args.seeds, not args.no_efficientnet, only=args.datasets))
        mislabel_tables(res)
    if "clean" not in args.skip:
        res = timed("Clean labels: what the likely-mislabel cut-off lists with nothing flipped", lambda: clean_bench(
            args.seeds, not args.no_efficientnet, only=args.datasets))
        print(res.groupby(["dataset", "space", "n"], sort=False)[["listed", "none_listed", "stated_precision"]]
              .mean().round(2).to_string())
        print("(n = 30 / 100: uploads of 3 random classes, mean over seeds; none_listed: share of runs listing nothing)")
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
