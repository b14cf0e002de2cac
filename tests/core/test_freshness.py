"""Persisted analyses and comparisons say when the data has changed since they were computed."""

from __future__ import annotations

import numpy as np

from core.ids import point_id
from core.pipeline.analyse import DOC_KIND, load_analysis, run_analysis
from core.pipeline.compare import load_compare, run_compare
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN

P, S = "proj", "emb"


def _seed(store: VectorStore, dataset: str, n: int = 40, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((3, 16)) * 2
    x = centres[rng.integers(0, 3, n)] + 0.3 * rng.standard_normal((n, 16))
    store.ensure_space(P, SpaceInfo(S, 16, "vector"))
    items = [Item(key=f"{dataset}-{i}", label=f"c{i % 3}", prediction=f"c{i % 3}") for i in range(n)]
    ids = [point_id(P, dataset, it.key) for it in items]
    store.upsert(P, S, ids, x.astype(np.float32), [it.payload(dataset) for it in items])
    return ids


def test_analysis_is_stale_after_a_label_change_until_recomputed(store: VectorStore) -> None:
    ids = _seed(store, "train")
    assert load_analysis(store, P, S, ["train"]) is None
    first = run_analysis(store, P, S, ["train"], actor=ADMIN)
    shown = load_analysis(store, P, S, ["train"])
    assert shown is not None and not shown.stale and shown.fingerprint == first.fingerprint
    store.set_payload(P, [ids[0]], [{"label": "c9"}])  # same counts, new label
    shown = load_analysis(store, P, S, ["train"])
    assert shown is not None and shown.stale
    assert shown.fingerprint == first.fingerprint  # the old result, not recomputed by loading
    assert shown.scores.loc[ids[0], "label"] == "c9"  # joined to the current payloads
    run_analysis(store, P, S, ["train"], actor=ADMIN)
    assert not load_analysis(store, P, S, ["train"]).stale  # type: ignore[union-attr]


def test_an_unrelated_write_is_cleared_by_a_cheap_reuse(store: VectorStore) -> None:
    _seed(store, "train")
    first = run_analysis(store, P, S, ["train"], actor=ADMIN)
    _seed(store, "other", seed=1)  # another dataset of the same space: the revision moves
    assert load_analysis(store, P, S, ["train"]).stale  # type: ignore[union-attr]
    again = run_analysis(store, P, S, ["train"], actor=ADMIN)
    assert again.reused and again.fingerprint == first.fingerprint
    assert not load_analysis(store, P, S, ["train"]).stale  # type: ignore[union-attr]
    assert store.list_documents(P, DOC_KIND)  # still the one persisted result


def test_comparison_is_stale_after_a_change_until_recomputed(store: VectorStore) -> None:
    ids = _seed(store, "all", n=60)
    store.set_payload(P, ids, [{"split": "train" if i < 40 else "production"} for i in range(60)])
    a, b = "all:train", "all:production"
    assert load_compare(store, P, S, a, b) is None
    first = run_compare(store, P, S, a, b, actor=ADMIN)
    shown = load_compare(store, P, S, a, b)
    assert shown is not None and not shown.stale
    assert list(shown.novelty.index) == list(first.novelty.index)
    moved = str(first.novelty.index[0])
    store.set_payload(P, [moved], [{"split": "holdout"}])  # no longer on side B
    shown = load_compare(store, P, S, a, b)
    assert shown is not None and shown.stale and shown.fingerprint == first.fingerprint
    assert moved not in shown.novelty.index and len(shown.novelty) == len(first.novelty) - 1
    assert not run_compare(store, P, S, a, b, actor=ADMIN).reused
    assert not load_compare(store, P, S, a, b).stale  # type: ignore[union-attr]
