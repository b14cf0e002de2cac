"""The post-ingest index build runs only for large spaces and keeps queries correct."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.config import load_settings
from core.ids import point_id
from core.pipeline.indexing import build_index_if_large
from core.pipeline.ingest_job import PHASE_INDEX, PHASE_STORE, VectorSource, run_ingest
from core.store.base import VectorStore
from core.types import ITEM_KIND, Item, SpaceInfo
from tests.actors import ADMIN


def _seed(store: VectorStore, n: int = 60, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.ensure_space("p", SpaceInfo(name="s", dim=dim, modality="vector"))
    ids = [point_id("p", "d", str(i)) for i in range(n)]
    store.upsert("p", "s", ids, vectors, [{"dataset": "d", "key": str(i), "kind": ITEM_KIND} for i in range(n)])
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


def _vectors_source(n: int, dim: int = 8) -> tuple[list[Item], VectorSource]:
    rng = np.random.default_rng(1)
    items = [Item(key=f"k{i:04d}", label=f"c{i % 3}") for i in range(n)]
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return items, VectorSource("own", vectors, [it.key for it in items], "vectors.npy")


def _count_optimize(store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count index builds (the ingest builds with build_index: Edge's in a child process)."""
    calls: list[str] = []
    original = store.build_index
    monkeypatch.setattr(store, "build_index", lambda project, space: calls.append(space) or original(project, space))
    return calls


def test_ingest_use_case_builds_the_index_above_the_threshold(
        store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    items, source = _vectors_source(300)
    calls = _count_optimize(store, monkeypatch)
    phases: list[str] = []
    outcome = run_ingest(store, "p", "d", items, source, settings=load_settings(), phase=phases.append,
                         index_threshold=100, actor=ADMIN)
    assert outcome.report.stored == 300 and outcome.index_built
    assert calls == ["own"] and phases[:2] == [PHASE_STORE, PHASE_INDEX]
    assert all(p.startswith(PHASE_INDEX) and p.endswith(" s") for p in phases[2:])  # elapsed-time ticks
    hits = store.query("p", "own", source.vectors[42], limit=1)
    assert hits[0].payload["key"] == "k0042"  # still answers correctly once indexed


def test_ingest_use_case_leaves_small_spaces_and_no_index_runs_alone(
        store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    items, source = _vectors_source(300)
    calls = _count_optimize(store, monkeypatch)
    settings = load_settings()
    small = run_ingest(store, "p", "d", items, source, settings=settings, index_threshold=1000, actor=ADMIN)
    skipped = run_ingest(store, "p", "e", items, source, settings=settings, build_index=False,
                         index_threshold=100, actor=ADMIN)
    assert not small.index_built and not skipped.index_built and calls == []
    assert store.count("p", "own") == 600


def test_a_foreground_build_reports_its_elapsed_time(store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(store)
    original = store.build_index

    def slow(project: str, space: str) -> bool:
        time.sleep(0.3)  # long enough for a few ticks
        return original(project, space)

    monkeypatch.setattr(store, "build_index", slow)
    ticks: list[float] = []
    assert build_index_if_large(store, "p", "s", threshold=10, tick=ticks.append, tick_s=0.05) is True
    assert len(ticks) >= 2 and ticks == sorted(ticks)
    assert store.query("p", "s", _seed_vectors()[3], limit=1)[0].payload["key"] == "3"


def _seed_vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_index_status_counts_all_points(store: VectorStore) -> None:
    _seed(store)
    indexed, total = store.index_status("p", "s")
    assert total == 60 and 0 <= indexed <= total
