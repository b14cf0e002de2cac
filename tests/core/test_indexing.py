"""The post-ingest index build runs only for large spaces and keeps queries correct."""

from __future__ import annotations

import numpy as np

from core.ids import point_id
from core.pipeline.indexing import build_index_if_large
from core.types import SpaceInfo
from core.store.base import VectorStore


def _seed(store: VectorStore, n: int = 60, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.ensure_space("p", SpaceInfo(name="s", dim=dim, modality="vector"))
    ids = [point_id("p", "d", str(i)) for i in range(n)]
    store.upsert("p", "s", ids, vectors, [{"dataset": "d", "key": str(i)} for i in range(n)])
    return vectors


def test_small_spaces_are_left_to_exact_scan(store: VectorStore) -> None:
    _seed(store)
    assert build_index_if_large(store, "p", "s", threshold=1000) is False


def test_large_spaces_get_indexed_and_still_answer_exactly(store: VectorStore) -> None:
    vectors = _seed(store)
    assert build_index_if_large(store, "p", "s", threshold=10) is True
    hits = store.query("p", "s", vectors[7], limit=5)
    assert hits[0].payload["key"] == "7"
    assert store.count("p", "s") == len(vectors)
