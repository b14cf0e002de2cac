"""Novelty and drift: a planted novel cluster in B is found; identical distributions are not;
splits of one dataset compare like datasets (run_compare on a real store)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.analysis import drift
from core.analysis.clusters import cluster_labels
from core.analysis.knn import knn_graph
from core.analysis.novelty import novelty_scores
from core.errors import BadInputError, NotEnoughDataError
from core.ids import point_id
from core.pipeline.compare import DOC_KIND, CompareSide, StackedRows, _joint_graph, compare_key, run_compare
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def sets() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A: 4 blobs (500 items); B: the same 4 blobs (300) + a novel 5th blob (40); and a second
    sample of A's distribution. Returns (a, b, novel mask of b, a2)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 32)) * 2

    def sample(n: int, which: np.ndarray) -> np.ndarray:
        return _unit(centres[which[rng.integers(0, which.size, n)]]
                     + 0.5 * rng.standard_normal((n, 32)))

    a = sample(500, np.arange(4))
    b = np.vstack([sample(300, np.arange(4)), sample(40, np.array([4]))])
    return a, b, np.r_[np.zeros(300, bool), np.ones(40, bool)], sample(300, np.arange(4))


def test_novel_cluster_scores_highest(sets: tuple[np.ndarray, ...]) -> None:
    a, b, novel, _ = sets
    result = novelty_scores(a, b, 10)
    assert result.scores.shape == (340,)
    assert roc_auc_score(novel, result.scores) >= 0.99
    assert set(np.argsort(-result.scores)[:40]) == set(np.flatnonzero(novel))
    assert np.median(result.scores[~novel]) == pytest.approx(1.0, abs=0.25)
    assert np.allclose(result.nearest_sim, (b @ a.T).max(axis=1), atol=1e-5)


def test_joint_graph_without_a_joint_copy_matches_the_stacked_graph(sets: tuple[np.ndarray, ...]) -> None:
    a, b, _, _ = sets
    stacked = np.vstack([a, b])
    idx, sims, nov = _joint_graph(a, b, 10, "exact", 0)
    e_idx, e_sims = knn_graph(stacked, 10, method="exact")
    np.testing.assert_allclose(sims, e_sims, atol=1e-5)
    assert (idx == e_idx).mean() >= 0.999  # equal up to ties
    ref = novelty_scores(a, b, 10, method="exact")
    np.testing.assert_allclose(nov.scores, ref.scores, rtol=1e-5)
    rows = np.array([0, 499, 500, 839, 3, 600])
    np.testing.assert_array_equal(StackedRows(a, b)[rows], stacked[rows])
    assert StackedRows(a, b).shape == stacked.shape
    tiny_idx, _, _ = _joint_graph(a, b[:2], 10, "exact", 0)  # B smaller than k
    assert tiny_idx.shape == (502, 10) and set(tiny_idx[500:].ravel()) <= set(range(502))


def test_domain_auc_high_for_drift_and_near_half_for_same(sets: tuple[np.ndarray, ...]) -> None:
    a, b, novel, a2 = sets
    assert drift.domain_classifier_auc(a, b[novel]) >= 0.95
    assert 0.35 <= drift.domain_classifier_auc(a, a2) <= 0.65


def test_knn_two_sample_and_regions(sets: tuple[np.ndarray, ...]) -> None:
    a, b, novel, a2 = sets
    joint = np.vstack([a, b])
    is_b = np.r_[np.zeros(500, bool), np.ones(340, bool)]
    idx, sims = knn_graph(joint, 10)
    assert drift.knn_two_sample(idx, is_b, permutations=99).p_value <= 0.02
    same = np.vstack([a, a2])
    same_idx, _ = knn_graph(same, 10)
    null = drift.knn_two_sample(same_idx, np.r_[np.zeros(500, bool), np.ones(300, bool)],
                                permutations=99)
    assert null.p_value > 0.01
    regions = cluster_labels(idx, sims, joint)
    table = drift.region_table(regions, is_b)
    novel_region = np.bincount(regions[500:][novel][regions[500:][novel] >= 0]).argmax()
    row = table.set_index("region").loc[novel_region]
    assert row["status"] == "only in B" and row["n_a"] == 0 and row["n_b"] >= 35
    assert table.iloc[0]["region"] == novel_region  # largest deviation first
    assert (table.set_index("region").drop(novel_region)["status"] == "balanced").all()


def test_label_distribution_and_total_variation() -> None:
    la = np.array(["cat"] * 50 + ["dog"] * 50 + [None] * 5, dtype=object)
    lb = np.array(["cat"] * 20 + ["dog"] * 60 + ["fox"] * 20, dtype=object)
    table, tv = drift.label_distribution(la, lb)
    assert list(table["label"]) == ["cat", "dog", "fox"]
    assert list(table["count_a"]) == [50, 50, 0] and list(table["count_b"]) == [20, 60, 20]
    assert tv == pytest.approx(0.5 * (0.3 + 0.1 + 0.2))
    _, unknown = drift.label_distribution(la, np.array([None, None], dtype=object))
    assert np.isnan(unknown)


# -- splits of one dataset, on a real store ----------------------------------------------------
P, S, ALL = "proj", "emb", "all-data"


def _seed_splits(store: VectorStore) -> dict[str, list[str]]:
    """One dataset "all-data" with split train (200 items, 4 blobs), prod (60 from the blobs +
    20 from a novel 5th blob, the last 20 ids) and test (30, all from the novel blob: were they
    read into A, prod's novel items would not be novel); and a dataset "other" (80, 4 blobs).
    Returns split (or "other") -> ids."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((5, 32)) * 2

    def blob(n: int, which: list[int]) -> np.ndarray:
        return centres[np.array(which)[rng.integers(0, len(which), n)]] \
            + 0.5 * rng.standard_normal((n, 32))

    parts = {"train": blob(200, [0, 1, 2, 3]), "prod": np.vstack([blob(60, [0, 1, 2, 3]),
                                                                  blob(20, [4])]),
             "test": blob(30, [4]), "other": blob(80, [0, 1, 2, 3])}
    store.ensure_space(P, SpaceInfo(S, 32, "vector"))
    ids: dict[str, list[str]] = {}
    for part, x in parts.items():
        dataset, split = ("other", None) if part == "other" else (ALL, part)
        items = [Item(key=f"{part}-{i}", label=None if part == "prod" else f"c{i % 3}",
                      split=split) for i in range(len(x))]
        ids[part] = [point_id(P, dataset, it.key) for it in items]
        store.upsert(P, S, ids[part], _unit(x), [it.payload(dataset) for it in items])
    return ids


def test_side_text_forms_round_trip() -> None:
    side = CompareSide(ALL, "test")
    assert side.name == "all-data · split=test" and str(side) == side.name
    assert CompareSide.parse(side.name) == side == CompareSide.parse("all-data:test")
    assert CompareSide.parse("train") == CompareSide("train")
    assert CompareSide.parse("a b:x:y") == CompareSide("a b", "x:y")  # only the first mark
    for bad in ("", ":test", "all-data:"):
        with pytest.raises(BadInputError):
            CompareSide.parse(bad)


def test_compare_splits_of_one_dataset(store: VectorStore) -> None:
    ids = _seed_splits(store)
    result = run_compare(store, P, S, CompareSide(ALL, "train"), f"{ALL}:prod", actor=ADMIN)
    assert set(result.novelty.index) == set(ids["prod"])  # only prod, never test
    assert set(result.novelty.index[:20]) == set(ids["prod"][60:])
    assert set(result.novelty["nearest_a"]) <= set(ids["train"])
    assert result.summary["n_a"] == 200 and result.summary["n_b"] == 80
    assert (result.novelty["split"] == "prod").all() and (result.novelty["dataset"] == ALL).all()
    assert (result.dataset_a, result.dataset_b) == (ALL, ALL)
    assert (result.name_a, result.name_b) == ("all-data · split=train", "all-data · split=prod")
    assert result.label_field is None  # prod is unlabeled
    in_regions = {str(i) for reps in result.regions["representatives"] for i in reps}
    assert in_regions <= set(ids["train"]) | set(ids["prod"])
    with pytest.raises(NotEnoughDataError, match="split = 'nope'"):
        run_compare(store, P, S, f"{ALL}:train", f"{ALL}:nope", actor=ADMIN)


def test_overlapping_sides_are_refused(store: VectorStore) -> None:
    _seed_splits(store)
    with pytest.raises(BadInputError, match="twice"):
        run_compare(store, P, S, f"{ALL}:train", CompareSide(ALL, "train"), actor=ADMIN)
    with pytest.raises(BadInputError, match="contains its split"):
        run_compare(store, P, S, ALL, f"{ALL}:prod", actor=ADMIN)
    with pytest.raises(BadInputError):
        run_compare(store, P, S, "other", "other", actor=ADMIN)


def test_dataset_and_split_comparisons_persist_apart_and_are_reused(
        store: VectorStore, caplog: pytest.LogCaptureFixture) -> None:
    _seed_splits(store)
    caplog.set_level(logging.INFO, logger="core.pipeline.compare")
    pairs = [("other", ALL), (f"{ALL}:train", f"{ALL}:prod"), (f"{ALL}:prod", f"{ALL}:train"),
             ("other", f"{ALL}:prod")]
    first = [run_compare(store, P, S, a, b, actor=ADMIN) for a, b in pairs]
    keys = [compare_key(S, a, b) for a, b in pairs]
    assert len(set(keys)) == len(pairs) and store.list_documents(P, DOC_KIND) == sorted(keys)
    assert len({r.fingerprint for r in first}) == len(pairs)
    assert not any(r.reused for r in first)
    assert compare_key(S, "other", ALL) == compare_key(S, CompareSide("other"), CompareSide(ALL))
    caplog.clear()
    again = [run_compare(store, P, S, a, b, actor=ADMIN) for a, b in pairs]
    assert all(r.reused for r in again) and "comparison computed" not in caplog.text
    for before, after in zip(first, again, strict=True):
        assert after.fingerprint == before.fingerprint
        assert list(after.novelty.index) == list(before.novelty.index)


def test_regions_rank_by_one_sidedness_and_show_their_excess_side() -> None:
    from core.pipeline.compare import _shown_members

    # region 0: 60 B items and 2 A neighbours (a class only B has); region 1: 300 items, B over;
    # region 2: mixed about like the whole; region 3: 40 A items and 1 B (only in A)
    sizes_b = {0: (2, 60), 1: (80, 220), 2: (235, 365), 3: (40, 1)}
    regions = np.concatenate([np.full(na + nb, r) for r, (na, nb) in sizes_b.items()])
    is_b = np.concatenate([np.r_[np.zeros(na, bool), np.ones(nb, bool)] for na, nb in sizes_b.values()])
    table = drift.region_table(regions, is_b).set_index("region")
    assert table.loc[0, "status"] == "only in B" and table.loc[3, "status"] == "only in A"
    assert table.loc[1, "status"] == "more B" and table.loc[2, "status"] == "balanced"
    assert list(table.index) == [3, 0, 1, 2], "significant first, the most one-sided first"
    assert table.loc[0, "skew"] > table.loc[1, "skew"] > table.loc[2, "skew"] >= 0
    shown = _shown_members(regions, is_b, 1, "more B")
    assert is_b[shown].all() and len(shown) == 220, "a region with excess B shows B items"
    assert (~is_b[_shown_members(regions, is_b, 3, "only in A")]).all()
    assert len(_shown_members(regions, is_b, 2, "balanced")) == 600
