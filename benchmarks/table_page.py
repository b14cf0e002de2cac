"""Benchmark of the Explore table (ui.widgets.table): the build of one page of 100 rows over a
synthetic map frame, sorted and filtered on the whole frame; prints a table of milliseconds.

    python benchmarks/table_page.py                      # 100k and 1M rows
    python benchmarks/table_page.py --sizes 20000 --repeats 3

Per size: the sort of the whole frame by a number (confidence) and by text (label) made cold
(what the first view of a column costs; the page caches it per map build), then a warm page
build (included-rows mask & sort order -> page positions -> page frame with 100 thumbnails read
from the thumbnail cache as data URIs), with a value filter (label in 2 classes) and with a range
filter (confidence in [0.2, 0.6]), and the page build over a lasso selection of a third of the rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

LABELS = np.array([f"class {i}" for i in range(20)] + [None], dtype=object)


def synthetic_frame(n: int, image_dir: Path, seed: int = 0) -> pd.DataFrame:
    """A map frame like ui.explore.build_map_frame's: ids, payload and score columns; 100 images cycled."""
    rng = np.random.default_rng(seed)
    uris = np.array([str(image_dir / f"img{i}.png") for i in range(100)], dtype=object)
    labels = LABELS[rng.integers(0, len(LABELS), n)]
    confidence = rng.uniform(0, 1, n).astype(np.float32)
    confidence[rng.random(n) < 0.05] = np.nan
    tags = np.full(n, None, dtype=object)
    tags[:: 50] = [["hard"]] * len(tags[:: 50])
    return pd.DataFrame({
        "x": rng.normal(size=n).astype(np.float32), "y": rng.normal(size=n).astype(np.float32),
        "key": [f"item_{i:07d}.png" for i in range(n)], "dataset": np.where(rng.random(n) < 0.8, "train", "test"),
        "label": labels, "prediction": LABELS[rng.integers(0, len(LABELS) - 1, n)], "confidence": confidence,
        "outlier": rng.random(n).astype(np.float32), "mislabel": rng.random(n).astype(np.float32),
        "cluster": rng.integers(-1, 30, n), "tags": tags, "uri": uris[np.arange(n) % 100],
    }, index=pd.Index([f"{i:032x}" for i in range(n)], name="id"))


def _ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench(n: int, image_dir: Path, repeats: int) -> dict[str, float]:
    from ui.widgets import table
    from ui.widgets.table import TableQuery

    frame = synthetic_frame(n, image_dir)
    columns = table.table_columns(frame)
    visible = np.ones(n, dtype=bool)
    out = {"sort by confidence (cold)": _ms(lambda: table.sort_order(frame["confidence"], True), 1),
           "sort by label (cold)": _ms(lambda: table.sort_order(frame["label"]), 1)}
    order = table.sort_order(frame["confidence"], True)
    lasso = np.zeros(n, dtype=bool)
    lasso[: n // 3] = True

    def page(query: TableQuery | None, base: np.ndarray = visible, thumbnails: bool = True) -> None:
        included = base.copy()
        if query is not None and query.column is not None:
            included &= table.value_mask(frame[query.column], query)
        positions, _ = table.page_positions(order, included, page=3)
        shown = table.page_frame(frame, positions, columns, thumbnails=thumbnails)
        assert not thumbnails or shown["image"].notna().all()

    out["page, no filter, no thumbnails"] = _ms(lambda: page(None, thumbnails=False), repeats)
    out["page, no filter"] = _ms(lambda: page(None), repeats)
    out["page, label in 2 classes"] = _ms(lambda: page(TableQuery(column="label", values=("class 1", "class 2"))),
                                          repeats)
    out["page, confidence 0.2-0.6"] = _ms(lambda: page(TableQuery(column="confidence", low=0.2, high=0.6)), repeats)
    out["page of a lasso (1/3)"] = _ms(lambda: page(None, lasso), repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image_dir = Path(tmp) / "images"
        image_dir.mkdir()
        for i in range(100):
            Image.new("RGB", (96, 96), (i, 80, 160)).save(image_dir / f"img{i}.png")
        os.environ["EMBEDSCOPE_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["EMBEDSCOPE_DATA_ROOTS"] = str(image_dir)
        from ui import resources

        resources.get_settings()  # read once, as in the running app (settings are a cached resource)
        results = {n: bench(n, image_dir, args.repeats) for n in args.sizes}
    print(f"load average: {os.getloadavg()[0]:.1f}")
    names = list(next(iter(results.values())))
    print(f"{'ms (median)':32}" + "".join(f"{n:>12,}" for n in results))
    for name in names:
        print(f"{name:32}" + "".join(f"{results[n][name]:12.1f}" for n in results))


if __name__ == "__main__":
    main()
