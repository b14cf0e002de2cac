"""The embedded store keeps memory and reopen costs bounded: dataset counts kept per space revision
(listing datasets loads no shard while nothing changed), shards closed after a full read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.store import EdgeStore, edge_ops
from core.store.edge import COUNTS_DIR
from core.types import Item, SpaceInfo
from tests.core.conftest import seed_clusters

P = "proj"


def _counts(store: EdgeStore) -> dict[str, dict[str, int]]:
    return {d.name: dict(d.counts) for d in store.list_datasets(P)}


def _add(store: EdgeStore, space: str, dataset: str, n: int, dim: int = 16) -> None:
    from core.ids import point_id

    rng = np.random.default_rng(n)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = [Item(key=f"{dataset}-{i}") for i in range(n)]
    store.ensure_space(P, SpaceInfo(space, dim, "vector"))
    store.upsert(P, space, [point_id(P, dataset, it.key) for it in items], vectors,
                 [it.payload(dataset) for it in items])


def test_listing_datasets_again_loads_no_shard_while_nothing_changed(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s", lock_timeout_s=10.0)
    try:
        seed_clusters(store, P, "own", "train", per=10)
        _add(store, "other", "extra", 7)
        expected = {"extra": {"other": 7}, "train": {"own": 40}}
        assert _counts(store) == expected
        store._close_shards()  # as after a hand-over or in a new process
        assert _counts(store) == expected
        assert not store._shards, "the counts came from the kept files, not from loading the shards"
        # a write to one space counts that space again (and only it)
        _add(store, "own", "late", 3)
        store.close_space(P, "own")  # closed without keeping its counts (as after a cold write)
        store._close_shards()
        assert _counts(store) == {**expected, "late": {"own": 3}}
        assert set(store._shards) == {(P, "own")}
        # a writer that still has the shard open keeps the counts when it hands the store over
        _add(store, "own", "later", 2)
        store._close_shards()
        assert _counts(store) == {**expected, "late": {"own": 3}, "later": {"own": 2}}
        assert not store._shards, "counted before the hand-over, not loaded again"
        # deleting a dataset moves every space's revision: nothing stale is served
        store.delete_dataset(P, "train")
        assert _counts(store) == {"extra": {"other": 7}, "late": {"own": 3}, "later": {"own": 2}}
        store.delete_space(P, "other")
        assert _counts(store) == {"late": {"own": 3}, "later": {"own": 2}}
        assert not (store.root / COUNTS_DIR / "proj" / "other.json").exists()
    finally:
        store.close()
    reopened = EdgeStore(tmp_path / "s", lock_timeout_s=10.0)  # another process's view: the same
    try:
        assert _counts(reopened) == {"late": {"own": 3}, "later": {"own": 2}} and not reopened._shards
    finally:
        reopened.close()


@pytest.mark.parametrize("content", ['{"revision": "stale", "counts": {"ghost": 99}}', "not json", '{"counts": 1}'])
def test_a_stale_or_damaged_counts_file_is_counted_again(tmp_path: Path, content: str) -> None:
    store = EdgeStore(tmp_path / "s", lock_timeout_s=10.0)
    try:
        seed_clusters(store, P, "own", "train", per=5)
        assert _counts(store) == {"train": {"own": 20}}
        path = next((store.root / COUNTS_DIR).rglob("*.json"))
        path.write_text(content)
        assert _counts(store) == {"train": {"own": 20}}
        assert json.loads(path.read_text())["counts"] == {"train": 20}  # rewritten under the current revision
    finally:
        store.close()


def test_a_full_read_of_a_large_space_closes_its_shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EdgeStore(tmp_path / "s", lock_timeout_s=10.0)
    try:
        ids, vectors, _ = seed_clusters(store, P, "own", "train", per=10)
        monkeypatch.setattr(edge_ops, "RELEASE_AFTER_READ", 1_000)
        store.vectors(P, "own")
        assert (P, "own") in store._shards, "a small space stays open"
        monkeypatch.setattr(edge_ops, "RELEASE_AFTER_READ", 40)
        got_ids, got = store.vectors(P, "own")
        assert (P, "own") not in store._shards, "the shard's mapped pages are released after a full read"
        order = np.argsort(ids)
        unit = vectors[order] / np.linalg.norm(vectors[order], axis=1, keepdims=True)
        assert got_ids == sorted(ids) and np.allclose(got, unit, atol=1e-6)
        assert store.count(P, "own") == 40  # the next operation loads it again
        part_ids, _ = store.vectors(P, "own", ids=ids[:3])
        assert part_ids == ids[:3] and (P, "own") in store._shards, "reads by id keep it open"
    finally:
        store.close()


def test_writes_to_a_cold_space_close_its_shard_every_so_many_points(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import qdrant_edge as qe

    from core.store import edge_shards

    plain, plain_open = edge_shards.space_config, edge_shards.open_shard

    def cached(dim: int, index: object = None) -> qe.EdgeConfig:  # as spaces were created before cold
        config = plain(dim)
        return qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine,
                                                         memory=qe.Memory.Cached),
                             hnsw_config=config.hnsw_config, quantization_config=config.quantization_config)

    monkeypatch.setattr(edge_ops, "RELEASE_EVERY", 50)
    store = EdgeStore(tmp_path / "s", lock_timeout_s=10.0)
    try:
        monkeypatch.setattr(edge_shards, "space_config", cached)
        _add(store, "cached", "a", 60)  # a cached config loads vectors into memory: stays open
        assert (P, "cached") in store._shards
        monkeypatch.setattr(edge_shards, "space_config", plain)  # new spaces: cold
        _add(store, "cold", "a", 30)
        assert (P, "cold") in store._shards, "fewer points than RELEASE_EVERY: still open"
        _add(store, "cold", "b", 30)
        assert (P, "cold") not in store._shards, "60 points written: closed, its pages released"
        _add(store, "cold", "c", 30)
        assert (P, "cold") in store._shards, "the count starts again after a close"
        assert store.count(P, "cold") == 90 and _counts(store)["b"] == {"cold": 30}
        expected_ids, expected = store.vectors(P, "cold")
        assert len(expected_ids) == 90 and np.allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)
        # a scroll of a cold space loads its shard again every RELEASE_EVERY points: the same block
        loads = []
        monkeypatch.setattr(edge_shards, "open_shard", lambda path: loads.append(path) or plain_open(path))
        monkeypatch.setattr(edge_ops, "_PAGE", 16)
        monkeypatch.setattr(edge_ops, "RELEASE_EVERY", 32)
        store.close_space(P, "cold")
        ids, vectors = store.vectors(P, "cold")
        assert ids == expected_ids and np.array_equal(vectors, expected)
        assert len(loads) == 3, "loaded at the start and after 32 and 64 points"
        # a shard that is slow to load (an indexed 1M one: ~4 s) is not reloaded during a scroll
        loads.clear()
        monkeypatch.setattr(edge_ops, "RELOAD_MAX_S", -1.0)
        ids, vectors = store.vectors(P, "cold")
        assert ids == expected_ids and np.array_equal(vectors, expected)
        assert loads == [], "no reload: the shard stays open for the whole scroll"
    finally:
        store.close()
