"""load_vectors: one numpy block per selection, cached on disk per store revision (both adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.filters import Filter
from core.ids import point_id
from core.pipeline.vector_cache import load_vectors
from core.store.base import VectorStore
from core.types import Item
from tests.core.conftest import seed_clusters

P = "proj"


class Counting:
    """A store that counts the calls which read vectors (everything else passes through)."""

    READS = ("vectors", "iter_vectors", "query", "recommend")

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in self.READS:
            self.reads.append(name)
        return getattr(self.store, name)


def _block_matches(block: Any, store: VectorStore, flt: Filter | None = None) -> None:
    ids, vectors = store.vectors(P, "own", flt=flt)
    assert block.ids.tolist() == ids
    np.testing.assert_array_equal(np.asarray(block.vectors), vectors)


def test_second_call_reads_no_vector_from_the_store(store: VectorStore, tmp_path: Path) -> None:
    seed_clusters(store, P)
    counting = Counting(store)
    seen: list[tuple[int, int]] = []
    first = load_vectors(counting, P, "own", cache_dir=tmp_path,  # type: ignore[arg-type]
                         progress=lambda d, t: seen.append((d, t)))
    assert counting.reads == ["vectors"] and seen[-1] == (120, 120)
    _block_matches(first, store)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-6)  # unit as stored
    counting.reads.clear()
    again = load_vectors(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == []
    assert isinstance(again.vectors, np.memmap) and again.revision == first.revision
    _block_matches(again, store)
    again.vectors[0, 0] = 7.0  # copy-on-write: the cache file is not changed
    assert load_vectors(counting, P, "own", cache_dir=tmp_path).vectors[0, 0] != 7.0  # type: ignore[arg-type]


def test_without_cache_dir_every_call_reads_the_store(store: VectorStore) -> None:
    seed_clusters(store, P)
    counting = Counting(store)
    block = load_vectors(counting, P, "own")  # type: ignore[arg-type]
    load_vectors(counting, P, "own")  # type: ignore[arg-type]
    assert counting.reads == ["vectors", "vectors"]
    assert block.vectors.dtype == np.float32 and block.ids.dtype.kind == "U"
    _block_matches(block, store)


@pytest.mark.parametrize("write", ["upsert", "set_payload"])
def test_a_write_invalidates_and_old_revisions_are_deleted(store: VectorStore, tmp_path: Path, write: str) -> None:
    ids, vectors, _ = seed_clusters(store, P)
    counting = Counting(store)
    before = load_vectors(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    if write == "upsert":
        extra = point_id(P, "train", "extra")
        store.upsert(P, "own", [extra], vectors[:1], [Item("extra").payload("train")])
    else:  # a payload write of a selecting field (dataset / kind) counts as a vectors write
        store.set_payload(P, ids[:2], [{"dataset": "train", "label": "new"}] * 2)
    counting.reads.clear()
    after = load_vectors(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == ["vectors"] and after.revision != before.revision
    assert len(after) == len(before) + (write == "upsert")
    _block_matches(after, store)
    assert len(list(tmp_path.glob("*/*/*/vectors.npy"))) == 1  # the old revision's block is gone


def test_the_filter_is_part_of_the_key(store: VectorStore, tmp_path: Path) -> None:
    seed_clusters(store, P)
    counting = Counting(store)
    train = Filter.where(split="train")
    everything = load_vectors(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    part = load_vectors(counting, P, "own", train, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == ["vectors", "vectors"]
    assert len(part) == 60 and len(everything) == 120
    _block_matches(part, store, train)
    counting.reads.clear()
    assert len(load_vectors(counting, P, "own", train, cache_dir=tmp_path)) == 60  # type: ignore[arg-type]
    assert len(load_vectors(counting, P, "own", cache_dir=tmp_path)) == 120  # type: ignore[arg-type]
    assert counting.reads == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "ids-missing"])
def test_a_damaged_cache_file_is_ignored_and_rewritten(store: VectorStore, tmp_path: Path, damage: str) -> None:
    seed_clusters(store, P)
    counting = Counting(store)
    load_vectors(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    (vectors_file,) = tmp_path.glob("*/*/*/vectors.npy")
    if damage == "truncate":
        vectors_file.write_bytes(vectors_file.read_bytes()[:1000])
    elif damage == "garbage":
        vectors_file.write_bytes(b"\x93NUMPY garbage" * 10)
    else:
        (vectors_file.parent / "ids.npy").unlink()
    counting.reads.clear()
    block = load_vectors(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == ["vectors"]
    _block_matches(block, store)
    counting.reads.clear()
    _block_matches(load_vectors(counting, P, "own", cache_dir=tmp_path), store)  # type: ignore[arg-type]
    assert counting.reads == []  # rewritten whole


def test_float16_round_trips_within_1e_3(store: VectorStore, tmp_path: Path) -> None:
    seed_clusters(store, P)
    full = load_vectors(store, P, "own", cache_dir=tmp_path)
    half = load_vectors(store, P, "own", cache_dir=tmp_path, dtype=np.float16)
    reopened = load_vectors(store, P, "own", cache_dir=tmp_path, dtype=np.float16)
    assert half.vectors.dtype == np.float16 and reopened.vectors.dtype == np.float16
    np.testing.assert_allclose(np.asarray(reopened.vectors, np.float32), full.vectors, atol=1e-3)
    assert len(list(tmp_path.glob("*/*/*/vectors.npy"))) == 2  # dtype is part of the key
    with pytest.raises(ValueError, match="dtype"):
        load_vectors(store, P, "own", dtype=np.float64)  # type: ignore[arg-type]


def test_the_cache_is_trimmed_to_max_bytes(store: VectorStore, tmp_path: Path) -> None:
    seed_clusters(store, P)
    load_vectors(store, P, "own", Filter.where(split="train"), cache_dir=tmp_path)
    load_vectors(store, P, "own", Filter.where(split="test"), cache_dir=tmp_path, max_bytes=1)
    (kept,) = tmp_path.glob("*/*/*/vectors.npy")  # the older block went, the new one stays
    counting = Counting(store)
    load_vectors(counting, P, "own", Filter.where(split="test"), cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == [] and kept.is_file()


def test_an_empty_selection_is_an_empty_block(store: VectorStore, tmp_path: Path) -> None:
    seed_clusters(store, P)
    block = load_vectors(store, P, "own", Filter.where(split="nothing"), cache_dir=tmp_path)
    assert block.vectors.shape == (0, 16) and block.ids.shape == (0,)
