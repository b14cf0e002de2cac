"""Store fixtures for core tests: `store` runs a test on both adapters (congruence), plus helpers.

* `store`: a fresh VectorStore, parametrized over "edge" (Qdrant Edge in a tmp dir) and
  "server-local" (qdrant-client local mode in memory); closed after the test.
* `make_store(kind, path=None)`: open one yourself (e.g. to reopen an on-disk store).
* `planted_clusters(...)` / `seed_clusters(store, ...)`: well-separated clusters with payloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.config import Settings, load_settings
from core.ids import point_id
from core.store.base import VectorStore
from core.types import Item, SpaceInfo

STORE_KINDS = ["edge", "server-local"]


def make_store(kind: str, path: Path | str | None = None) -> VectorStore:
    """An EdgeStore ("edge") or a local-mode ServerStore ("server-local") at path (default memory)."""
    if kind == "edge":
        from core.store import EdgeStore

        return EdgeStore(path or ":memory:", lock_timeout_s=10.0)
    if kind == "server-local":
        from core.store import ServerStore

        return ServerStore(path=str(path) if path else ":memory:")
    raise ValueError(f"unknown store kind {kind!r}; use one of {STORE_KINDS}")


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """A fresh store of each kind (Edge on disk under tmp_path, qdrant-client local in memory)."""
    kind = request.param
    opened = make_store(kind, tmp_path / "edge-store" if kind == "edge" else None)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[Callable[..., VectorStore]]:
    """make_store with cleanup: every store it opens is closed after the test."""
    opened: list[VectorStore] = []

    def factory(kind: str, path: Path | str | None = None) -> VectorStore:
        result = make_store(kind, path)
        opened.append(result)
        return result

    yield factory
    for item in opened:
        item.close()


def planted_clusters(k: int = 4, per: int = 30, dim: int = 16, seed: int = 0,
                     spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (k*per, dim) float32, cluster ids (k*per,)) around k orthogonal-ish centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim)).astype(np.float32)
    labels = np.repeat(np.arange(k), per)
    vectors = centres[labels] + spread * rng.standard_normal((k * per, dim)).astype(np.float32)
    return vectors.astype(np.float32), labels


def seed_clusters(store: VectorStore, project: str = "proj", space: str = "own", dataset: str = "train",
                  k: int = 4, per: int = 30, dim: int = 16, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Store planted clusters: label "c<cluster>" (every 5th unlabeled), confidence i/n,
    split train/test alternating, meta.camera "a"/"b", meta.flag bool. Returns (ids, vectors, clusters)."""
    vectors, clusters = planted_clusters(k, per, dim, seed)
    store.ensure_space(project, SpaceInfo(space, dim, "vector"))
    n = len(vectors)
    items = [
        Item(key=f"item-{i:04d}", uri=f"/data/{i}.png", label=None if i % 5 == 0 else f"c{clusters[i]}",
             confidence=i / n, split="train" if i % 2 == 0 else "test",
             meta={"camera": "a" if i % 3 == 0 else "b", "flag": i % 4 == 0, "n": i})
        for i in range(n)
    ]
    ids = [point_id(project, dataset, it.key) for it in items]
    store.upsert(project, space, ids, vectors, [it.payload(dataset) for it in items])
    return ids, vectors, clusters


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose only data root is tmp_path/data (the ingest tests write their images there)."""
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("EMBEDSCOPE_DATA_ROOTS", str(tmp_path / "data"))
    return load_settings()


@pytest.fixture
def clip(tiny_clip_dir: Path) -> Any:
    """The tiny CLIP model, wrapped to count what it embeds (tests.core.test_ingest.CountingEmbedder)."""
    from core.embedders import load_embedder
    from tests.core.test_ingest import CountingEmbedder

    return CountingEmbedder(load_embedder(str(tiny_clip_dir), "image", batch_size=8))


def same_typed(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON type at every level (True is not 1, 1 is not 1.0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_typed(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_typed(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
