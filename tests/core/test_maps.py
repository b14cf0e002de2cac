"""core.pipeline.maps on real stores: a map is fitted once, reused, extended without a refit."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from core.errors import NotEnoughDataError, NotFoundError
from core.filters import Filter
from core.ids import point_id
from core.pipeline.map_doc import MAP_FORMAT, MAP_KIND, decode_ids, encode_ids, from_doc
from core.pipeline.maps import get_map, has_map, quick_map
from core.store.base import VectorStore
from core.store.documents import FORMAT
from core.types import Item
from tests.actors import ADMIN
from tests.core.conftest import planted_clusters, seed_clusters

FAST = {"n_epochs": 30}
PROJECT, SPACE = "proj", "own"


def add_points(store: VectorStore, n: int, dataset: str = "train", seed: int = 5) -> tuple[list[str], np.ndarray]:
    """n new points drawn from the same planted clusters as seed_clusters (same centres)."""
    vectors, clusters = planted_clusters(k=4, per=30 + n, seed=0)  # same centres as seed_clusters
    rng = np.random.default_rng(seed)
    rows = rng.choice(np.flatnonzero(np.arange(len(vectors)) % (30 + n) >= 30), n, replace=False)
    items = [Item(key=f"late-{i:03d}", label=f"c{clusters[r]}") for i, r in enumerate(rows)]
    ids = [point_id(PROJECT, dataset, it.key) for it in items]
    store.upsert(PROJECT, SPACE, ids, vectors[rows], [it.payload(dataset) for it in items])
    return ids, clusters[rows]


def cluster_of(coords: np.ndarray, ref: np.ndarray, ref_clusters: np.ndarray) -> np.ndarray:
    centroids = np.stack([ref[ref_clusters == c].mean(axis=0) for c in range(4)])
    return np.argmin(((coords[:, None] - centroids[None]) ** 2).sum(-1), axis=1)


def test_map_is_fitted_once_then_reused(store: VectorStore, caplog: pytest.LogCaptureFixture) -> None:
    ids, _, _ = seed_clusters(store)
    caplog.set_level(logging.INFO, logger="core.pipeline.maps")
    first = get_map(store, PROJECT, SPACE, ["train"], params=FAST, actor=ADMIN)
    assert first.fitted and first.placed == 0 and sorted(first.ids) == sorted(ids)
    assert first.coords.dtype == np.float32 and first.coords.shape == (len(ids), 2)
    assert np.isfinite(first.coords).all()
    assert "map fitted" in caplog.text
    again = get_map(store, PROJECT, SPACE, ["train"], params=FAST, actor=ADMIN)
    assert not again.fitted and again.placed == 0
    assert again.ids == first.ids and np.array_equal(again.coords, first.coords)
    assert again.params_hash == first.params_hash
    assert "map reused" in caplog.text
    # a caller that already read the selection's ids (for colouring) passes them: same answer
    frame_ids = list(store.payloads(PROJECT, SPACE, fields=["label"]).index)
    fast = get_map(store, PROJECT, SPACE, ["train"], params=FAST, ids=frame_ids, actor=ADMIN)
    assert not fast.fitted and fast.ids == first.ids


def test_new_points_are_placed_without_refit(store: VectorStore, caplog: pytest.LogCaptureFixture) -> None:
    _, _, clusters = seed_clusters(store)
    first = get_map(store, PROJECT, SPACE, ["train"], params=FAST, actor=ADMIN)
    caplog.set_level(logging.INFO, logger="core.pipeline.maps")
    new_ids, new_clusters = add_points(store, 50)
    grown = get_map(store, PROJECT, SPACE, ["train"], params=FAST, actor=ADMIN)
    assert not grown.fitted and grown.placed == 50 and len(grown) == len(first) + 50
    assert "placed 50 new points" in caplog.text
    assert grown.params_hash != first.params_hash  # the point set changed
    # the existing layout did not move, and the new points landed on their own clusters
    assert grown.ids[: len(first)] == first.ids
    assert np.array_equal(grown.coords[: len(first)], first.coords)
    row = {pid: i for i, pid in enumerate(grown.ids)}
    placed = grown.coords[[row[pid] for pid in new_ids]]
    ref_clusters = _clusters_in_map_order(first.ids, clusters)
    assert (cluster_of(placed, first.coords, ref_clusters) == new_clusters).mean() >= 0.95
    assert grown.n_fitted == len(first)
    # and the extended map is persisted: the next call reuses it
    again = get_map(store, PROJECT, SPACE, ["train"], params=FAST, actor=ADMIN)
    assert not again.fitted and again.placed == 0 and again.ids == grown.ids


def _clusters_in_map_order(map_ids: list[str], clusters: np.ndarray) -> np.ndarray:
    """Cluster of each map id: seed_clusters keys are item-0000.. in cluster order."""
    by_id = {point_id(PROJECT, "train", f"item-{i:04d}"): clusters[i] for i in range(len(clusters))}
    return np.array([by_id[pid] for pid in map_ids])


def test_refit_and_other_params_fit_again(store: VectorStore) -> None:
    seed_clusters(store)
    first = get_map(store, PROJECT, SPACE, ["train"], params=FAST, actor=ADMIN)
    refitted = get_map(store, PROJECT, SPACE, ["train"], params=FAST, refit=True, actor=ADMIN)
    assert refitted.fitted and refitted.params_hash == first.params_hash
    other = get_map(store, PROJECT, SPACE, ["train"], params={**FAST, "min_dist": 0.5}, actor=ADMIN)
    assert other.fitted and other.params_hash != first.params_hash
    # both maps are kept side by side
    assert not get_map(store, PROJECT, SPACE, ["train"], params=FAST, actor=ADMIN).fitted
    assert not get_map(store, PROJECT, SPACE, ["train"], params={**FAST, "min_dist": 0.5}, actor=ADMIN).fitted


def test_map_survives_reopening_the_store(store_factory: Callable[..., VectorStore], tmp_path: Path) -> None:
    path = tmp_path / "edge"
    store = store_factory("edge", path)
    seed_clusters(store)
    first = quick_map(store, PROJECT, SPACE, None, actor=ADMIN)
    assert first.fitted and first.method == "pca"
    store.close()
    reopened = store_factory("edge", path)
    assert has_map(reopened, PROJECT, SPACE, None, method="pca", params={"seed": 0})
    assert not has_map(reopened, PROJECT, SPACE, None, params=FAST)
    again = quick_map(reopened, PROJECT, SPACE, None, actor=ADMIN)
    assert not again.fitted and np.array_equal(again.coords, first.coords)
    # PCA maps place new points exactly, through the persisted components
    add_points(reopened, 20)
    grown = quick_map(reopened, PROJECT, SPACE, None, actor=ADMIN)
    assert grown.placed == 20 and not grown.fitted
    doc = reopened.get_document(PROJECT, MAP_KIND, reopened.list_documents(PROJECT, MAP_KIND)[0])
    assert doc is not None and doc["n"] == len(grown) and "pca_components" in doc


def test_has_map_lists_keys_without_reading_the_map(store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_clusters(store)
    assert not has_map(store, PROJECT, SPACE, ["train"], method="pca")
    get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    read: list[str] = []
    original = store.get_document
    monkeypatch.setattr(store, "get_document", lambda *a, **k: read.append(a[2]) or original(*a, **k))
    assert has_map(store, PROJECT, SPACE, ["train"], method="pca")
    # another method, filter or dataset selection is another map
    assert not has_map(store, PROJECT, SPACE, ["train"], method="umap")
    assert not has_map(store, PROJECT, SPACE, ["train"], method="pca", flt=Filter.where(label="c0"))
    assert has_map(store, PROJECT, SPACE, None, method="pca")  # None: every dataset, here train
    assert read == []  # the (large) map document was never decoded


def test_filter_gives_its_own_map_and_too_few_points_fail(store: VectorStore) -> None:
    seed_clusters(store)
    only_c0 = get_map(store, PROJECT, SPACE, ["train"], method="pca", flt=Filter.where(label="c0"), actor=ADMIN)
    whole = get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    assert whole.fitted and len(only_c0) < len(whole)
    labels = store.payloads(PROJECT, SPACE, fields=["label"])["label"]
    assert set(labels.loc[only_c0.ids]) == {"c0"}
    few = Filter.where(label="c0").and_(Filter.where(**{"meta.n": 1}))
    with pytest.raises(NotEnoughDataError, match="at least"):
        get_map(store, PROJECT, SPACE, ["train"], method="pca", flt=few, actor=ADMIN)
    with pytest.raises(NotFoundError):
        get_map(store, PROJECT, "no-such-space", ["train"], actor=ADMIN)
    with pytest.raises(ValueError, match="umap"):
        get_map(store, PROJECT, SPACE, ["train"], method="mds", actor=ADMIN)


def test_big_selection_is_fitted_on_a_sample_and_the_rest_placed(store: VectorStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import core.projection.fit as fit

    monkeypatch.setattr(fit, "UMAP_FIT_POINTS", 60)
    ids, _, clusters = seed_clusters(store, per=60)
    steps: list[tuple[int, int]] = []
    result = get_map(store, PROJECT, SPACE, ["train"], actor=ADMIN, params=FAST,
                     progress=lambda d, t: steps.append((d, t)))
    assert result.fitted and result.n_fitted == 60 and len(result) == len(ids)
    assert steps == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]  # read, fit, place, save
    # planted clusters stay apart: every placed point is nearest its own cluster's fitted points
    ref_clusters = _clusters_in_map_order(result.ids, clusters)
    stored = from_doc(store.get_document(PROJECT, MAP_KIND, store.list_documents(PROJECT, MAP_KIND)[0]),
                      "umap", result.params)
    assert stored is not None and int(stored.fitted.sum()) == 60
    fit_rows, placed = stored.fitted, ~stored.fitted
    near = cluster_of(result.coords[placed], result.coords[fit_rows], ref_clusters[fit_rows])
    assert (near == ref_clusters[placed]).mean() >= 0.95


def test_reopen_with_unchanged_revision_lists_no_ids(store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, _, _ = seed_clusters(store)
    first = get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    calls: list[object] = []
    original = store.payloads
    monkeypatch.setattr(store, "payloads", lambda *a, **k: calls.append(a) or original(*a, **k))
    again = get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    assert calls == [] and not again.fitted and again.ids == first.ids
    store.set_payload(PROJECT, ids[:1], [{"label": "c9"}])  # labels only: the points are the same
    get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    assert calls == []
    store.set_payload(PROJECT, ids[:1], [{"dataset": "train"}])  # a write that may move points: ids listed once...
    after_write = get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    assert len(calls) == 1 and not after_write.fitted and after_write.placed == 0
    get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)  # ...and the new revision recorded
    assert len(calls) == 1


def test_format_1_map_documents_still_load(store: VectorStore) -> None:
    seed_clusters(store)
    first = get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    (key,) = store.list_documents(PROJECT, MAP_KIND)
    doc = store.get_document(PROJECT, MAP_KIND, key)
    assert doc is not None and doc[FORMAT] == MAP_FORMAT == 2 and "id_uuids" in doc and "ids" not in doc
    # what embedscope wrote before format 2: ids as a list of strings, no revision
    old = {k: v for k, v in doc.items() if k not in ("id_uuids", "revision")}
    store.put_document(PROJECT, MAP_KIND, key, {**old, FORMAT: 1, "ids": first.ids})
    reopened = get_map(store, PROJECT, SPACE, ["train"], method="pca", actor=ADMIN)
    assert not reopened.fitted and reopened.ids == first.ids
    assert np.array_equal(reopened.coords, first.coords)
    upgraded = store.get_document(PROJECT, MAP_KIND, key)  # saved again with the revision, as format 2
    assert upgraded is not None and upgraded[FORMAT] == 2 and upgraded["revision"] == store.revision(PROJECT, SPACE)


def test_ids_that_are_not_uuids_are_kept_as_text() -> None:
    uuids = [str(uuid.UUID(int=i)) for i in range(3)] + ["3b241101-e2bb-4255-8caf-4136c566a962"]
    packed = encode_ids(uuids)
    assert set(packed) == {"id_uuids"} and decode_ids(packed, 4) == uuids
    for odd in (["1", "2"], [u.upper() for u in uuids], ["x" * 36], []):
        assert encode_ids(odd) == {"ids": odd} and decode_ids(encode_ids(odd), len(odd)) == odd
