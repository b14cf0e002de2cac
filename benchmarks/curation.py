"""Wall time of the curation operations (core.curation) on a real embedded store; prints one table.

    python benchmarks/curation.py                     # 10k points, 2 spaces, 200 small entries
    python benchmarks/curation.py --points 20000 --entries 500 --store server-local

Measures: a bulk relabel of every point (one history entry), its undo, tagging all points, a tag
count, corrected_ids, and reading the history (cold: a fresh process cache; warm: entries kept)
with `entries` one-item relabels besides the bulk one, plus one item's history.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.auth import Actor, Role
from core.curation import history, labels, tags
from core.curation.corrected import corrected_ids
from core.ids import point_id
from core.store import EdgeStore, ServerStore
from core.store.base import VectorStore
from core.types import Item, SpaceInfo

BENCH = Actor("bench", Role.EDITOR)  # who the benchmark's history entries name

P = "bench"


def _timed(rows: list[tuple[str, float]], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    out = fn()
    rows.append((name, time.perf_counter() - start))
    return out


def _seed(store: VectorStore, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    ids = [point_id(P, "train", f"k{i}") for i in range(n)]
    payloads = [Item(key=f"k{i}", label=f"c{i % 10}").payload("train") for i in range(n)]
    for space, dim in (("a", 64), ("b", 32)):
        store.ensure_space(P, SpaceInfo(space, dim, "vector"))
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        store.upsert(P, space, ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), payloads)
    return ids


def run(points: int, entries: int, kind: str) -> list[tuple[str, float]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-curation-"))
    store: VectorStore = EdgeStore(folder / "edge") if kind == "edge" else ServerStore(path=str(folder / "local"))
    rows: list[tuple[str, float]] = []
    try:
        ids = _seed(store, points)
        bulk = _timed(rows, f"set_labels of {points} points (1 entry, 2 spaces)", lambda: labels.set_labels(
            store, P, ids, ["fixed"] * points, actor=BENCH, why="finding"))
        for i in range(entries):
            labels.set_labels(store, P, [ids[i]], [f"one-{i}"], actor=BENCH, why="manual")
        history._cache.clear()  # as a fresh process
        _timed(rows, f"read_history, {entries + 1} entries, cold", lambda: history.read_history(store, P))
        _timed(rows, f"read_history, {entries + 1} entries, warm", lambda: history.read_history(store, P))
        _timed(rows, "read_history of one item (warm)", lambda: history.read_history(store, P, dataset="train",
                                                                                     key="k3"))
        _timed(rows, f"corrected_ids ({points} corrected)", lambda: corrected_ids(store, P, "a"))
        _timed(rows, f"add_tags to {points} points", lambda: tags.add_tags(store, P, ids, ["t"], actor=BENCH))
        _timed(rows, "tag_counts", lambda: tags.tag_counts(store, P, "a"))
        for _ in range(entries):  # the later one-item relabels first, then the bulk entry
            labels.undo(store, P, actor=BENCH)
        labels.undo(store, P, actor=BENCH)  # the tags
        _timed(rows, f"undo of the bulk entry ({points} rows)", lambda: labels.undo(store, P, bulk.entry, actor=BENCH))
    finally:
        store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--store", choices=("edge", "server-local"), default="edge")
    args = parser.parse_args()
    for name, seconds in run(args.points, args.entries, args.store):
        print(f"{name:<48} {seconds:8.3f} s")


if __name__ == "__main__":
    main()
