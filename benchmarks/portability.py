"""Benchmark of moving a project: export from Edge, import into qdrant-client local mode (or Edge), sizes.

    python benchmarks/portability.py                        # 20k points, 512-d + 64-d own space
    python benchmarks/portability.py --points 100000 --dim 512 --target server-memory

Targets: edge (a second Edge store), server-memory (qdrant-client local mode in memory: what a
server does, minus the network), server-disk (local mode on disk: it commits SQLite once per point,
~15 ms each, so 40k points take minutes; a Qdrant server has no such cost).

Builds a synthetic project (2 datasets, a 512-d model space and a 64-d own-vectors space, payloads
with labels, meta and tags) in a temporary Edge store, then times export_project, import_project
into the target store, and a backup + restore on Edge; prints points, bundle MB, seconds, peak
RSS, and the load average it ran under.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from core.auth import Actor, Role
from core.ids import point_id
from core.portability import backup_store, export_project, import_project, restore_store
from core.store import EdgeStore, ServerStore
from core.store.base import VectorStore
from core.types import Item, SpaceInfo

ADMIN = Actor("bench", Role.ADMIN)
T = TypeVar("T")


def build(store: VectorStore, points: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    store.ensure_space("bench", SpaceInfo("emb", dim, "image", model="bench/model"))
    store.ensure_space("bench", SpaceInfo("own", 64, "vector"))
    for start in range(0, points, 5000):
        n = min(5000, points - start)
        ds = "train" if start < points * 0.8 else "test"
        items = [Item(key=f"{ds}/{start + i}.jpg", uri=f"/data/{start + i}.jpg", label=f"c{(start + i) % 10}",
                      confidence=float(rng.random()), split=ds, meta={"camera": f"cam{i % 7}", "n": start + i})
                 for i in range(n)]
        ids = [point_id("bench", ds, it.key) for it in items]
        payloads = [{**it.payload(ds), "tags": ["blurry"] if i % 13 == 0 else []} for i, it in enumerate(items)]
        store.upsert("bench", "emb", ids, rng.standard_normal((n, dim)).astype(np.float32), payloads)
        store.upsert("bench", "own", ids, rng.standard_normal((n, 64)).astype(np.float32), payloads)


def open_target(kind: str, root: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(root / "edge2")
    return ServerStore(path=":memory:" if kind == "server-memory" else str(root / "local"))


def timed(label: str, fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = fn()
    print(f"{label:<28} {time.perf_counter() - started:7.1f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--target", choices=("edge", "server-memory", "server-disk"), default="edge")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="embedscope-bench-port-"))
    try:
        source = EdgeStore(root / "edge")
        timed(f"build {args.points} points", lambda: build(source, args.points, args.dim))
        report = timed("export (Edge)", lambda: export_project(source, "bench", root / "bundle", actor=ADMIN))
        size = sum(p.stat().st_size for p in (root / "bundle").rglob("*") if p.is_file())
        print(f"{'bundle':<28} {size / 1e6:7.1f} MB  ({report.points})")
        target = open_target(args.target, root)
        timed(f"import ({args.target})", lambda: import_project(target, root / "bundle", actor=ADMIN))
        target.close()
        timed("backup (Edge)", lambda: backup_store(source, root / "backup", actor=ADMIN))
        timed("restore --replace (Edge)", lambda: restore_store(source, root / "backup", actor=ADMIN, replace=True))
        source.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'peak RSS':<28} {peak:7.0f} MB")
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
