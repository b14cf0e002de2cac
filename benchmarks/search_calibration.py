"""Cost of the "no close match" calibration (core.search.calibrate) on the embedded store (Qdrant Edge).

For each size: n clustered points (benchmarks/search.py's make_data), then the time of one
calibration (SAMPLE nearest-neighbour queries through store.neighbours) before and after the HNSW
index is built, the time of a cached read (same revision, from the JSON file), and how many
points it sampled. The calibration runs once per space revision; the cached read is what a
Search page rerun pays.

    nice -n 10 .venv/bin/python benchmarks/search_calibration.py --sizes 5000 20000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.search import PROJECT, SPACE, make_data  # noqa: E402
from core.filters import items_only  # noqa: E402
from core.ids import point_id  # noqa: E402
from core.search import calibrate  # noqa: E402
from core.store import EdgeStore  # noqa: E402
from core.types import Item, SpaceInfo  # noqa: E402


def run(n: int, dim: int) -> None:
    vectors, labels = make_data(n, dim)
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "edge")
        try:
            store.ensure_space(PROJECT, SpaceInfo(SPACE, dim, "vector"))
            ids = [point_id(PROJECT, "train", f"k{i}") for i in range(n)]
            payloads = [Item(key=f"k{i}", label=str(labels[i])).payload("train") for i in range(n)]
            store.upsert(PROJECT, SPACE, ids, vectors, payloads)
            for phase in ("unindexed", "indexed"):
                if phase == "indexed":
                    store.optimize(PROJECT, SPACE)
                cache = Path(tmp) / f"cal-{phase}"
                started = time.perf_counter()
                result = calibrate(store, PROJECT, SPACE, ids, flt=items_only(), cache_dir=cache)
                first = time.perf_counter() - started
                started = time.perf_counter()
                calibrate(store, PROJECT, SPACE, ids, flt=items_only(), cache_dir=cache)
                cached = time.perf_counter() - started
                indexed, total = store.index_status(PROJECT, SPACE)
                print(f"n={n:>7,} dim={dim} {phase:>9} (indexed {indexed:,}/{total:,}): "
                      f"{len(result.cosines)} points in {first:.2f} s, cached read {cached * 1e3:.1f} ms, "
                      f"5th pct nn cosine {result.quantile(0.05):.3f}, median {result.quantile(0.5):.3f}")
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000])
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    for n in args.sizes:
        run(n, args.dim)


if __name__ == "__main__":
    main()
