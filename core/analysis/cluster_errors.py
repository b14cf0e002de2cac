"""Error clusters: clusters where model errors concentrate, with lift, a significance figure and a description."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

ALPHA = 0.05  # family-wise level for "significantly more errors than average"
_MIN_SHIFT = 0.15  # a metadata value is worth naming when its share in the cluster is this much higher
_MIN_MEAN_SHIFT = 0.1  # ... or a numeric field's mean differs by this much


def error_clusters(
    table: pd.DataFrame, clusters: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
    metadata: Mapping[str, np.ndarray] | None = None, *, alpha: float = ALPHA,
) -> pd.DataFrame:
    """Clusters holding significantly more model errors than average, highest lift first.

    lift = the cluster's error rate / the overall error rate (items with a label and a prediction).
    p_value: one-sided hypergeometric chance that a random group of the cluster's size holds at least
    its errors, times the number of clusters tested (Bonferroni, capped at 1); clusters with
    p_value > alpha, fewer than 2 errors or lift <= 1 are dropped. excess_errors = errors -
    predicted * overall rate. top_confusion: the commonest "label -> prediction (n)" among its
    errors; description: e.g. "mostly label 3 predicted as 5 (82% of its errors); split=val 70% vs
    20% overall". table: cluster_table's rows; clusters, labels, predictions: (n,) aligned, None =
    missing; metadata: name -> (n,) values (categorical, or numeric such as confidence).
    """
    both = np.array([a is not None and b is not None for a, b in zip(labels, predictions, strict=True)],
                    dtype=bool)
    wrong = both & (labels.astype(str) != predictions.astype(str))
    total, bad = int(both.sum()), int(wrong.sum())
    rate = bad / total if total else 0.0
    out = table[["cluster", "size", "predicted", "errors", "error_rate", "top_labels"]].copy()
    out["lift"] = out["error_rate"] / rate if rate > 0 else np.nan
    out["excess_errors"] = out["errors"] - out["predicted"] * rate
    tested = max(1, int((out["predicted"] > 0).sum()))
    raw = hypergeom.sf(out["errors"].to_numpy() - 1, total, bad, out["predicted"].to_numpy()) if bad else 1.0
    out["p_value"] = np.minimum(1.0, np.asarray(raw, dtype=float) * tested)
    out = out[(out["errors"] >= 2) & (out["lift"] > 1) & (out["p_value"] <= alpha)]
    out = out.sort_values(["lift", "errors", "cluster"], ascending=[False, False, True]).reset_index(drop=True)
    meta = {name: _encoded(values) for name, values in (metadata or {}).items()}
    masks = [clusters == c for c in out["cluster"]]
    out["top_confusion"] = [_top_confusion(m, wrong, labels, predictions) for m in masks]
    out["description"] = [describe(m, wrong, labels, predictions, meta) for m in masks]
    return out


def describe(in_cluster: np.ndarray, wrong: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
             metadata: Mapping[str, np.ndarray | _Codes] | None = None) -> str:
    """One line on a cluster's errors and what sets its members apart, e.g. "mostly label 3
    predicted as 5 (82% of its errors); split=val 70% vs 20% overall; mean confidence 0.55 vs 0.86
    overall". in_cluster, wrong: (n,) bool masks; metadata: name -> (n,) values (pass codes from
    _encoded for speed on many clusters)."""
    parts = [_confusions(in_cluster & wrong, labels, predictions)]
    for name, values in (metadata or {}).items():
        enc = values if isinstance(values, _Codes) else _encoded(values)
        parts.append(enc.contrast(name, in_cluster))
    return "; ".join(p for p in parts if p)


def _confusions(sel: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> str:
    if not sel.any():
        return ""
    pairs = pd.Series([f"{a}\x1f{b}" for a, b in zip(labels[sel], predictions[sel], strict=True)]).value_counts()
    pairs = pairs.sort_index().sort_values(ascending=False, kind="stable")  # ties: by name, not by chance
    share = pairs.to_numpy() / int(sel.sum())
    named = [tuple(key.split("\x1f", 1)) for key in pairs.index[:2]]
    if share[0] >= 0.5:
        return f"mostly label {named[0][0]} predicted as {named[0][1]} ({share[0]:.0%} of its errors)"
    listed = ", ".join(f"{a} as {b} ({s:.0%})" for (a, b), s in zip(named, share, strict=False))
    return f"errors spread: {listed}, …" if len(pairs) > 2 else f"errors: {listed}"


class _Codes:
    """A metadata column encoded once: category codes (-1 missing) or numbers (NaN missing)."""

    def __init__(self, codes: np.ndarray, names: np.ndarray | None) -> None:
        self.codes, self.names = codes, names

    def contrast(self, name: str, in_cluster: np.ndarray) -> str:
        """The value most over-represented in the cluster ("split=val 70% vs 20% overall"), or
        a numeric field's mean when it differs ("mean confidence 0.55 vs 0.86 overall"); "" when
        nothing stands out."""
        if self.names is None:
            known = ~np.isnan(self.codes)
            if not (known & in_cluster).any():
                return ""
            inside, everywhere = self.codes[known & in_cluster].mean(), self.codes[known].mean()
            if abs(inside - everywhere) < _MIN_MEAN_SHIFT:
                return ""
            return f"mean {name} {inside:.2f} vs {everywhere:.2f} overall"
        known = self.codes >= 0
        if not (known & in_cluster).any() or self.names.size < 2:
            return ""
        size = self.names.size
        inside = np.bincount(self.codes[known & in_cluster], minlength=size) / int((known & in_cluster).sum())
        everywhere = np.bincount(self.codes[known], minlength=size) / int(known.sum())
        best = int(np.argmax(inside - everywhere))
        if inside[best] - everywhere[best] < _MIN_SHIFT:
            return ""
        return f"{name}={self.names[best]} {inside[best]:.0%} vs {everywhere[best]:.0%} overall"


def _encoded(values: np.ndarray) -> _Codes:
    """Numbers stay numbers (NaN for missing); anything else becomes category codes (vectorised:
    ~0.1 s per field at 1M items)."""
    series = pd.Series(np.asarray(values, dtype=object))
    numbers = pd.to_numeric(series, errors="coerce")
    if series.notna().any() and numbers.notna().sum() == series.notna().sum() and not series.map(
            lambda v: isinstance(v, bool | str)).any():
        return _Codes(numbers.to_numpy(dtype=float), None)
    codes, names = pd.factorize(series)
    return _Codes(np.asarray(codes, dtype=np.int64), np.asarray(names, dtype=object))


def _top_confusion(in_cluster: np.ndarray, wrong: np.ndarray, labels: np.ndarray,
                   predictions: np.ndarray) -> str:
    sel = np.flatnonzero(in_cluster & wrong)
    if sel.size == 0:
        return ""
    pairs = pd.Series([f"{labels[i]} -> {predictions[i]}" for i in sel]).value_counts()
    return f"{pairs.index[0]} ({int(pairs.iloc[0])})"
