"""Deleting a dataset or a space deletes the maps, analyses and collection entries that referred to
it (core.pipeline.delete), and nothing else."""

from __future__ import annotations

import numpy as np

from core import collections
from core.ids import point_id
from core.pipeline import analyse, delete, maps
from core.pipeline.map_doc import MAP_KIND
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN

P = "cascade"


def _seed(store: VectorStore) -> dict[str, list[str]]:
    """Two datasets (train 30, prod 20) in two spaces; returns the point ids per dataset."""
    rng = np.random.default_rng(3)
    ids: dict[str, list[str]] = {}
    for space, dim in (("own", 8), ("wide", 12)):
        store.ensure_space(P, SpaceInfo(space, dim, "vector"))
    for ds, n in (("train", 30), ("prod", 20)):
        items = [Item(key=f"{ds}-{i}", label=f"c{i % 2}") for i in range(n)]
        ids[ds] = [point_id(P, ds, it.key) for it in items]
        for space, dim in (("own", 8), ("wide", 12)):
            store.upsert(P, space, ids[ds], rng.normal(size=(n, dim)).astype(np.float32),
                         [it.payload(ds) for it in items])
    return ids


def test_deleting_a_dataset_deletes_its_results_and_collection_entries(store: VectorStore) -> None:
    ids = _seed(store)
    maps.get_map(store, P, "own", ["train"], method="pca", actor=ADMIN)
    maps.get_map(store, P, "own", ["prod"], method="pca", actor=ADMIN)
    maps.get_map(store, P, "own", None, method="pca", actor=ADMIN)
    analyse.run_analysis(store, P, "own", ["train"], params={"k": 5, "probe_folds": 2}, actor=ADMIN)
    analyse.run_analysis(store, P, "own", None, params={"k": 5, "probe_folds": 2}, actor=ADMIN)
    collections.save(store, P, "mixed", ids["train"][:3] + ids["prod"][:2], space="own", actor=ADMIN)
    collections.save(store, P, "only prod", ids["prod"][:4], space="own", actor=ADMIN)
    collections.save(store, P, "only train", ids["train"][:4], space="wide", actor=ADMIN)
    train_map = maps.get_map(store, P, "own", ["train"], method="pca", actor=ADMIN)

    report = delete.delete_dataset(store, P, "prod", actor=ADMIN)

    assert report.points == 20
    assert [k for k, _ in report.results].count(MAP_KIND) == 2 and len(report.results) == 3
    assert report.collections_deleted == ["only prod"] and report.collections_pruned == {"mixed": 2}
    assert len(store.list_documents(P, MAP_KIND)) == 1
    kept = maps.get_map(store, P, "own", ["train"], method="pca", actor=ADMIN)
    assert not kept.fitted and kept.ids == train_map.ids  # the train-only map survives, reused
    assert analyse.load_analysis(store, P, "own", ["train"]) is not None
    assert len(store.list_documents(P, analyse.DOC_KIND)) == 1
    mixed = collections.get(store, P, "mixed")
    assert mixed.ids == ids["train"][:3] and mixed.missing == [] and len(mixed.refs) == 3
    assert sorted(c.name for c in collections.list_collections(store, P)) == ["mixed", "only train"]
    assert [d.name for d in store.list_datasets(P)] == ["train"]


def test_deleting_a_space_deletes_what_was_made_in_it_and_a_new_model_gets_a_new_map(
        store: VectorStore) -> None:
    ids = _seed(store)
    own_map = maps.get_map(store, P, "own", None, method="pca", actor=ADMIN)
    maps.get_map(store, P, "wide", None, method="pca", actor=ADMIN)
    collections.save(store, P, "from own", ids["train"][:3], space="own", actor=ADMIN)
    collections.save(store, P, "from wide", ids["train"][:3], space="wide", actor=ADMIN)

    report = delete.delete_space(store, P, "own", actor=ADMIN)

    assert len(report.results) == 1 and report.collections_deleted == ["from own"]
    assert [k.split(":")[0] for k in store.list_documents(P, MAP_KIND)] == ["wide"]
    assert [c.name for c in collections.list_collections(store, P)] == ["from wide"]
    # Another model under the same space name: its map is fitted afresh, not the old layout reused.
    store.ensure_space(P, SpaceInfo("own", 4, "vector", model="another"))
    rng = np.random.default_rng(9)
    store.upsert(P, "own", ids["train"], rng.normal(size=(30, 4)).astype(np.float32),
                 [Item(key=f"train-{i}").payload("train") for i in range(30)])
    again = maps.get_map(store, P, "own", None, method="pca", actor=ADMIN)
    assert again.fitted and not np.array_equal(again.coords, own_map.coords[: len(again.ids)])
