"""Benchmark of the background map fit (core.jobs): how long Explore's first visit holds the page.

    python benchmarks/jobs.py                 # 10k points
    python benchmarks/jobs.py --points 20000

Data: synthetic 64-d unit vectors in 20 clusters, one dataset, in an embedded store in a temp dir.
Two Explore sessions (streamlit AppTest, real pages) open the map that was never fitted:
  page_s      the first session's run: the quick PCA layout is drawn and the UMAP fit submitted as a
              job (EMBEDSCOPE_JOB_WAIT_S=0), so the page returns without waiting for the fit
  second_s    the second session's run: it joins the same job (no second fit)
  fit_s       from the submission until the job ended (the page reran then and drew the UMAP map)
  jobs        map jobs in the registry for that map (1: shared)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _seed(n: int, dim: int = 64) -> None:
    from core.config import load_settings
    from core.store import open_store
    from core.types import SpaceInfo

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, dim))
    labels = rng.integers(0, 20, n)
    x = (centres[labels] + rng.normal(scale=0.4, size=(n, dim))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = open_store(load_settings())
    try:
        store.ensure_space("bench", SpaceInfo("own", dim, "vector"))
        ids = [f"{i:032x}" for i in range(n)]
        payloads = [{"dataset": "train", "key": f"k{i}", "label": f"c{labels[i]}", "kind": "item"} for i in range(n)]
        for start in range(0, n, 5_000):
            store.upsert("bench", "own", ids[start:start + 5_000], x[start:start + 5_000], payloads[start:start + 5_000])
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(EMBEDSCOPE_DATA_DIR=tmp, EMBEDSCOPE_JOB_WAIT_S="0", EMBEDSCOPE_DEMO_PRETRAINED="0")
        _seed(args.points)
        from streamlit.testing.v1 import AppTest

        import ui.page
        from core.jobs import jobs

        ui.page.warmup_started = True  # numba compiles inside the fit, as on a cold server
        page = str(Path(__file__).resolve().parents[1] / "pages" / "2_Explore.py")
        start = time.perf_counter()
        first = AppTest.from_file(page, default_timeout=600).run()
        page_s = time.perf_counter() - start
        start = time.perf_counter()
        second = AppTest.from_file(page, default_timeout=600).run()
        second_s = time.perf_counter() - start
        job = jobs().get(first.session_state["_jobs.followed.explore.fit"])
        assert job is not None and not first.exception and not second.exception
        shared = second.session_state["_jobs.followed.explore.fit"] == job.id
        job.wait(1_800)
        fit_s = (job.ended or 0.0) - job.submitted
        count = sum(j.kind == "map" and "UMAP" in j.title for j in jobs().recent("bench"))
        print(f"points={args.points:,} page_s={page_s:.2f} second_s={second_s:.2f} fit_s={fit_s:.1f} "
              f"state={job.state} shared={shared} jobs={count}")


if __name__ == "__main__":
    main()
