"""The representation scorecard of one embedding space: label separability, neighbourhoods, clusters, map fidelity."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from core.analysis.clusters import NOISE, cluster_labels
from core.analysis.knn import knn_graph
from core.analysis.mislabels import encode_labels, knn_label_probs, probe_label_probs

logger = logging.getLogger(__name__)

DEFAULT_K = 10
# Trustworthiness compares all pairwise distances (O(n^2) memory): a seeded sample of this many
# points is enough for a figure stable to ~0.01.
TRUST_MAX_POINTS = 2_000
MIN_LABELLED = 10  # fewer labelled items than this: the label-based scores are not computed
# The label-based columns, NaN with a note when a space has no usable labels.
LABEL_SCORES: tuple[str, ...] = ("knn_accuracy", "probe_accuracy", "balanced_recall",
                                 "precision_at_k", "ari", "nmi")


@dataclass(frozen=True)
class SpaceScore:
    """The scorecard of one space (all scores in [0, 1] but ari in [-1, 1]; NaN: not computable).

    knn_accuracy: leave-one-out accuracy of a similarity-weighted k-nearest-neighbour vote;
    probe_accuracy: cross-validated accuracy of a logistic regression on the top PCA components;
    balanced_recall: mean per-class recall of that probe (recall: per class); precision_at_k:
    share of each item's k nearest neighbours with its label; ari / nmi: agreement of the space's
    clusters (core.analysis.clusters.cluster_labels, noise counted as one group) with the labels;
    clusters, noise: how many clusters and the share of noise; trustworthiness: how well the 2-D map keeps the space's
    neighbourhoods (sklearn.manifold.trustworthiness; NaN without a map). note: why label
    scores are missing, if they are.
    """

    items: int
    labelled: int
    classes: int
    knn_accuracy: float = math.nan
    probe_accuracy: float = math.nan
    balanced_recall: float = math.nan
    precision_at_k: float = math.nan
    ari: float = math.nan
    nmi: float = math.nan
    clusters: int = 0
    noise: float = math.nan
    trustworthiness: float = math.nan
    recall: dict[str, float] = field(default_factory=dict)
    note: str = ""


def score_space(vectors: np.ndarray, labels: np.ndarray, *, coords: np.ndarray | None = None,
                k: int = DEFAULT_K, folds: int = 5, seed: int = 0) -> SpaceScore:
    """Score one space on a set of items.

    vectors: (n, d) float32, L2-normalised; labels: (n,) object, None = unlabelled (those items
    only take part in clusters and trustworthiness); coords: (n, 2) the items' map coordinates,
    or None. Raises ValueError below 3 items (a programmer mistake: callers check the count).
    """
    n = int(vectors.shape[0])
    if n < 3:
        raise ValueError(f"a scorecard needs at least 3 items, got {n}")
    codes, classes = encode_labels(list(labels))
    k = max(1, min(k, n - 1))
    idx, sims = knn_graph(vectors, k, seed=seed)
    labelled = codes >= 0
    clusters = cluster_labels(idx, sims, vectors, seed=seed)
    base = SpaceScore(
        items=n, labelled=int(labelled.sum()), classes=len(classes),
        clusters=int(np.unique(clusters[clusters != NOISE]).size), noise=float(np.mean(clusters == NOISE)),
        trustworthiness=map_trustworthiness(vectors, coords, k=k, seed=seed))
    note = _label_problem(int(labelled.sum()), len(np.unique(codes[labelled])))
    if note:
        return replace(base, note=note)
    rows = np.flatnonzero(labelled)
    if rows.size < n:  # neighbours among the labelled items only, so each votes with k labels
        idx, sims = knn_graph(vectors[rows], min(k, rows.size - 1), seed=seed)
    y = codes[rows]
    knn_acc, probe_acc, p_at_k, probe_pred = label_scores(vectors[rows], y, idx, sims, len(classes),
                                                          folds=folds, seed=seed)
    recall = per_class_recall(y, probe_pred, classes)
    present = [v for v in recall.values() if not math.isnan(v)]
    return replace(
        base, knn_accuracy=knn_acc, probe_accuracy=probe_acc, precision_at_k=p_at_k, recall=recall,
        balanced_recall=float(np.mean(present)) if present else math.nan,
        ari=float(adjusted_rand_score(y, clusters[rows])),
        nmi=float(normalized_mutual_info_score(y, clusters[rows])),
    )


def _label_problem(labelled: int, distinct: int) -> str:
    if labelled == 0:
        return "no labels"
    if distinct < 2:
        return "one class only"
    if labelled < MIN_LABELLED:
        return f"only {labelled} labelled items"
    return ""


def label_scores(vectors: np.ndarray, codes: np.ndarray, idx: np.ndarray, sims: np.ndarray,
                 n_classes: int, *, folds: int = 5, seed: int = 0) -> tuple[float, float, float, np.ndarray]:
    """(kNN accuracy, probe accuracy, precision@k, the probe's predicted codes (n,)) of labelled
    items: vectors (n, d), codes (n,) all >= 0, their kNN graph idx, sims (n, k) (self excluded,
    so the kNN vote is leave-one-out; the probe's predictions are out-of-fold)."""
    # A tiny prior weight only breaks ties (no neighbour votes) toward the commonest class.
    knn_pred = np.argmax(knn_label_probs(idx, sims, codes, n_classes, prior_weight=1e-3), axis=1)
    probe_pred = np.argmax(probe_label_probs(vectors, codes, n_classes, folds=folds, seed=seed), axis=1)
    return (float(np.mean(knn_pred == codes)), float(np.mean(probe_pred == codes)),
            float(np.mean(codes[idx] == codes[:, None])), probe_pred)


def per_class_recall(codes: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict[str, float]:
    """{class name: share of its items predicted as it}; NaN for a class with no item here."""
    out: dict[str, float] = {}
    for c, name in enumerate(classes):
        members = codes == c
        out[name] = float(np.mean(predicted[members] == c)) if members.any() else math.nan
    return out


def map_trustworthiness(vectors: np.ndarray, coords: np.ndarray | None, *, k: int = DEFAULT_K,
                        seed: int = 0, max_points: int = TRUST_MAX_POINTS) -> float:
    """Trustworthiness of a 2-D map of the vectors (1: every map neighbour is a neighbour in the
    space), on a seeded sample of at most max_points; NaN without coords or with < 6 points.
    vectors: (n, d); coords: (n, 2), row i the map position of vectors[i]."""
    if coords is None:
        return math.nan
    finite = np.flatnonzero(np.isfinite(coords).all(axis=1))
    if finite.size < 6:
        return math.nan
    rows = finite if finite.size <= max_points else np.sort(
        np.random.default_rng(seed).choice(finite, max_points, replace=False))
    neighbours = max(1, min(k, rows.size // 2 - 1))  # sklearn requires n_neighbors < n / 2
    return float(trustworthiness(np.asarray(vectors[rows], dtype=np.float32),
                                 np.asarray(coords[rows], dtype=np.float32), n_neighbors=neighbours))


def best_space(table: pd.DataFrame) -> tuple[str | None, str]:
    """(the best space, by what) of a scorecard table indexed by space (columns probe_accuracy,
    knn_accuracy, trustworthiness): the highest probe accuracy (ties: kNN accuracy) when any
    space has labels, else the most trustworthy map; (None, reason) when nothing ranks them."""
    if table.empty:
        return None, "no space evaluated"
    labelled = table[table["probe_accuracy"].notna()]
    if not labelled.empty:
        order = labelled.sort_values(["probe_accuracy", "knn_accuracy"], ascending=False, na_position="last")
        name, row = str(order.index[0]), order.iloc[0]
        return name, (f"linear-probe accuracy {row['probe_accuracy']:.3f} "
                      f"(kNN accuracy {row['knn_accuracy']:.3f})")
    maps = table["trustworthiness"].dropna()
    if not maps.empty:
        name = str(maps.idxmax())
        return name, f"map trustworthiness {maps[name]:.3f} (no labels to compare the spaces by)"
    return None, "no labels and no maps: nothing to rank the spaces by"
