"""How two sets of embeddings differ: a drift figure, over/under-represented regions, label shift."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

DOMAIN_AUC_MEANING = (
    "Cross-validated AUC of a logistic regression telling A's items from B's by their "
    "embeddings: 0.5 = the two sets are indistinguishable, 1.0 = completely separable; "
    "above ~0.6 the difference is usually visible on the map."
)


def domain_classifier_auc(
    a: np.ndarray, b: np.ndarray, *, folds: int = 5, max_per_side: int = 5000, seed: int = 0
) -> float:
    """Cross-validated ROC AUC of a linear A-vs-B classifier on the embeddings (see
    DOMAIN_AUC_MEANING). a: (n_a, d), b: (n_b, d); each side is subsampled to max_per_side."""
    rng = np.random.default_rng(seed)
    a = a[rng.choice(a.shape[0], min(a.shape[0], max_per_side), replace=False)]
    b = b[rng.choice(b.shape[0], min(b.shape[0], max_per_side), replace=False)]
    x = np.vstack([a, b])
    y = np.r_[np.zeros(a.shape[0]), np.ones(b.shape[0])]
    n_splits = min(folds, a.shape[0], b.shape[0])
    if n_splits < 2:
        raise ValueError("each set needs at least 2 items for a cross-validated AUC")
    if x.shape[1] > 64 and x.shape[0] > 64:
        x = PCA(n_components=64, svd_solver="randomized", random_state=seed).fit_transform(x)
    x = StandardScaler().fit_transform(x)
    scores = np.zeros(y.size)
    # One BLAS thread: these fits are small, and multi-threaded BLAS spins badly under load.
    with threadpool_limits(limits=1):
        for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(x, y):
            model = LogisticRegression(C=1.0, max_iter=500).fit(x[train], y[train])
            scores[test] = model.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


@dataclass(frozen=True)
class TwoSample:
    """kNN two-sample test (Schilling / Henze): statistic = share of kNN edges joining items of
    the same set; expected = that share if set membership were random; p_value by permutation."""

    statistic: float
    expected: float
    p_value: float


def knn_two_sample(idx: np.ndarray, is_b: np.ndarray, *, permutations: int = 200,
                   seed: int = 0) -> TwoSample:
    """Test whether A and B mix in the joint kNN graph. idx: (n, k) kNN graph of the joint set;
    is_b: (n,) bool. Permuting membership over the fixed graph gives the null distribution."""
    rng = np.random.default_rng(seed)

    def same_share(member: np.ndarray) -> float:
        return float(np.mean(member[idx] == member[:, None]))

    observed = same_share(is_b)
    null = np.array([same_share(rng.permutation(is_b)) for _ in range(permutations)])
    p_value = (1 + int(np.sum(null >= observed))) / (permutations + 1)
    return TwoSample(statistic=observed, expected=float(null.mean()), p_value=p_value)


# A significant region with at most this share of one side's items is "only in" the other: a few
# neighbours of the other side always join a cluster of new items (the demo's unseen class).
ONLY_SHARE = 0.05


def region_table(regions: np.ndarray, is_b: np.ndarray, *, alpha: float = 0.01) -> pd.DataFrame:
    """Per region (cluster of the joint set, noise excluded): n_a, n_b, expected_b (B count if B
    were spread like the whole), ratio_b = n_b / expected_b, p_value (two-sided binomial), skew
    (how one-sided: 0 = mixed like the whole, 1 = one side only; toward B or A by status) and
    status: "only in B", "only in A" (at most ONLY_SHARE of the other side), "more B", "less B"
    (significant at alpha) or "balanced". regions: (n,) int, -1 = noise; is_b: (n,) bool.
    Sorted: significant regions first, the most one-sided first, then the largest."""
    share_b = float(is_b.mean())
    rows = []
    for r in np.unique(regions[regions >= 0]):
        inside = regions == r
        size, n_b = int(inside.sum()), int(is_b[inside].sum())
        expected = size * share_b
        tail = binom.sf(n_b - 1, size, share_b) if n_b >= expected else binom.cdf(n_b, size, share_b)
        p_value = float(min(1.0, 2 * tail))
        rows.append({"region": int(r), "size": size, "n_a": size - n_b, "n_b": n_b,
                     "expected_b": expected, "ratio_b": n_b / expected if expected else np.nan,
                     "p_value": p_value, "skew": _skew(n_b / size, share_b),
                     "status": _status(size - n_b, n_b, expected, p_value, alpha)})
    table = pd.DataFrame(rows, columns=["region", "size", "n_a", "n_b", "expected_b", "ratio_b",
                                        "p_value", "skew", "status"])
    order = np.lexsort((-table["size"].to_numpy(), -table["skew"].to_numpy(),
                        (table["status"] == "balanced").to_numpy()))
    return table.iloc[order].reset_index(drop=True)


def _skew(region_share_b: float, share_b: float) -> float:
    """0 when a region mixes B like the whole, 1 when it holds one side only (either way)."""
    if region_share_b >= share_b:
        return (region_share_b - share_b) / (1.0 - share_b) if share_b < 1.0 else 0.0
    return (share_b - region_share_b) / share_b if share_b > 0.0 else 0.0


def _status(n_a: int, n_b: int, expected: float, p_value: float, alpha: float) -> str:
    if p_value >= alpha:
        return "balanced"
    size = n_a + n_b
    if n_a <= ONLY_SHARE * size:
        return "only in B"
    if n_b <= ONLY_SHARE * size:
        return "only in A"
    return "more B" if n_b > expected else "less B"


def label_distribution(labels_a: np.ndarray, labels_b: np.ndarray) -> tuple[pd.DataFrame, float]:
    """Per-label counts and proportions in A and B (missing labels ignored) and the total-variation
    distance 0.5 * sum |p_a - p_b| (0 = same label mix, 1 = disjoint label sets).
    labels_a: (n_a,), labels_b: (n_b,) object arrays, None = missing."""
    ca = pd.Series([v for v in labels_a if v is not None], dtype=object).astype(str).value_counts()
    cb = pd.Series([v for v in labels_b if v is not None], dtype=object).astype(str).value_counts()
    table = pd.DataFrame({"count_a": ca, "count_b": cb}).fillna(0).astype(int)
    table["share_a"] = table["count_a"] / max(1, int(table["count_a"].sum()))
    table["share_b"] = table["count_b"] / max(1, int(table["count_b"].sum()))
    table["difference"] = table["share_b"] - table["share_a"]
    table = table.rename_axis("label").reset_index().sort_values("label", kind="stable")
    tv = float(0.5 * np.abs(table["difference"]).sum()) if len(ca) and len(cb) else float("nan")
    return table.reset_index(drop=True), tv
