"""Top-10 query latency and recall of the embedded store (Qdrant Edge) vs exact numpy search.

For each size: ingest n clustered 512-d points (100 planted clusters: real embeddings are
clustered, and pure Gaussian noise would be an unrealistically hard case for HNSW), build the
HNSW index with store.optimize() (timed, off the request path), then time unfiltered and
filtered (label = one of 10 values, ~10% of points) top-10 queries through the VectorStore API,
and compute recall@10 against exact cosine search in numpy on the same data. qdrant-client's
local mode (what ServerStore(path=...) uses) runs the same queries at --local-size as a baseline.

    . .venv/bin/activate && python benchmarks/search.py                      # 10k only
    python benchmarks/search.py --sizes 10000 100000 --queries 200 --local-size 10000
    python benchmarks/search.py --sizes 10000 --handover     # only the two-process timing

--dashboard-ingest N: ingest N clustered points through the dashboard's own ingest function
(ui.ingest_run.ingest, which calls the CLI's use case core.pipeline.ingest_job.run_ingest), then
report whether it built the search index (and how many vectors Edge indexed), and the latency
of approximate vs exact top-10 queries: above the index threshold (20k) the index must be built.

    python benchmarks/search.py --dashboard-ingest 30000

--selectivity: recall@10 and p50/p95 per filter selectivity (0.1 %, 2 %, 10 %, 100 %), the planned
search vs the exact scan (measure_search, which benchmarks/scale.py imports):

    nice -n 10 python benchmarks/search.py --selectivity --sizes 100000

--handover: a second process (an "ingest") upserts batches of 256 points into the same embedded
store in a loop while this process queries it, so every query waits for the lease hand-over
(core.store.lease) and re-opens the shard: its p50/p95 is the cost of sharing one folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.filters import Filter  # noqa: E402
from core.ids import point_id  # noqa: E402
from core.store.base import VectorStore  # noqa: E402
from core.types import ITEM_KIND, SpaceInfo  # noqa: E402

PROJECT, SPACE, LABELS = "bench", "own", 10


def make_data(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 vectors around 100 centres, and a label index per point (0..9)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((100, dim)).astype(np.float32)
    members = rng.integers(0, 100, n)
    vectors = centres[members] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return vectors, rng.integers(0, LABELS, n)


def fill(store: VectorStore, vectors: np.ndarray, labels: np.ndarray) -> tuple[list[str], float]:
    """Ingest through the store API; returns (ids, seconds)."""
    store.ensure_space(PROJECT, SpaceInfo(SPACE, vectors.shape[1], "vector"))
    ids = [point_id(PROJECT, "d", str(i)) for i in range(len(vectors))]
    start = time.perf_counter()
    for a in range(0, len(ids), 2048):
        payloads = [{"dataset": "d", "kind": ITEM_KIND, "label": f"c{labels[i]}", "confidence": float(i % 100) / 100}
                    for i in range(a, min(a + 2048, len(ids)))]
        store.upsert(PROJECT, SPACE, ids[a : a + 2048], vectors[a : a + 2048], payloads)
    return ids, time.perf_counter() - start


def truth(unit: np.ndarray, queries: np.ndarray, mask: np.ndarray | None) -> list[set[int]]:
    """Exact top-10 row indices per query by cosine (unit: L2-normalised data)."""
    scores = queries @ unit.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    return [set(np.argpartition(-row, 10)[:10].tolist()) for row in scores]


def run_queries(store: VectorStore, ids: list[str], queries: np.ndarray, flt: Filter | None,
                expected: list[set[int]]) -> dict[str, float]:
    """p50 / p95 latency (ms) and mean recall@10 of top-10 queries."""
    index = {pid: i for i, pid in enumerate(ids)}
    store.query(PROJECT, SPACE, queries[0], limit=10, flt=flt)  # warm-up (opens the shard)
    times, recalls = [], []
    for q, want in zip(queries, expected, strict=True):
        start = time.perf_counter()
        hits = store.query(PROJECT, SPACE, q, limit=10, flt=flt, with_payload=True)
        times.append((time.perf_counter() - start) * 1000)
        recalls.append(len({index[h.id] for h in hits} & want) / 10)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)),
            "recall": float(np.mean(recalls))}


SELECTIVITIES = (0.001, 0.02, 0.1, 1.0)


def _exact_top10(vectors: np.ndarray, queries: np.ndarray, masks: dict[float, np.ndarray],
                 block: int = 100_000) -> dict[float, list[set[int]]]:
    """Exact top-10 row indices per query and mask, by cosine, scanning `vectors` (may be a
    memory-mapped 1M x 512 array) in blocks so that memory stays bounded."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best = {sel: (np.full((len(q), 10), -np.inf), np.zeros((len(q), 10), np.int64)) for sel in masks}
    for start in range(0, len(vectors), block):
        chunk = np.asarray(vectors[start : start + block], dtype=np.float32)
        scores = q @ (chunk / np.maximum(np.linalg.norm(chunk, axis=1, keepdims=True), 1e-12)).T
        rows = np.arange(start, start + len(chunk))
        for sel, mask in masks.items():
            s = np.where(mask[start : start + len(chunk)], scores, -np.inf)
            all_s = np.concatenate([best[sel][0], s], axis=1)
            all_i = np.concatenate([best[sel][1], np.broadcast_to(rows, s.shape)], axis=1)
            top = np.argpartition(-all_s, 9, axis=1)[:, :10]
            best[sel] = (np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1))
    return {sel: [{int(i) for i, v in zip(ix, sc, strict=True) if np.isfinite(v)} for sc, ix in zip(*b, strict=True)]
            for sel, b in best.items()}


def _pick_filters(frame: Any, field: str, targets: tuple[float, ...]) -> dict[float, tuple[Any, np.ndarray, float]]:
    """For each target selectivity, the value of `field` whose share is closest (1.0: no field
    condition): (Filter, mask over the frame's rows, actual share)."""
    shares = frame[field].value_counts(normalize=True)
    out: dict[float, tuple[Any, np.ndarray, float]] = {}
    for target in targets:
        if target >= 1.0:
            out[target] = (Filter(), np.ones(len(frame), bool), 1.0)
            continue
        value = (shares - target).abs().idxmin()
        out[target] = (Filter.where(**{field: value}), (frame[field] == value).to_numpy(), float(shares[value]))
    return out


def measure_search(store: VectorStore, project: str, space: str, ids: list[str], vectors: np.ndarray,
                   payload_frame: Any, *, field: str = "label", n_queries: int = 100, noise: float = 0.3,
                   selectivities: tuple[float, ...] = SELECTIVITIES, seed: int = 1) -> dict[str, Any]:
    """Recall@10 and p50/p95 latency (ms) per filter selectivity, the store's planned search vs
    its exact scan (exact=True), through items_only filters like the pages.

    ids[i] <-> vectors[i] (vectors may be memory-mapped); payload_frame: store.payloads(...) (indexed
    by id) holding `field`; a filter per selectivity uses the value of `field` whose share is closest.
    Queries: stored vectors plus Gaussian noise (sd `noise`). Returns {"0.1%": {"share", "value",
    "filtered": {"p50_ms", "p95_ms", "recall10"}, "exact": {...}}, ...}."""
    from core.filters import items_only

    frame = payload_frame.reindex(ids)
    filters = _pick_filters(frame, field, selectivities)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(ids), n_queries, replace=False))
    queries = (np.asarray(vectors[rows], np.float32) + noise * rng.standard_normal((n_queries, vectors.shape[1])))
    truth = _exact_top10(vectors, queries.astype(np.float32), {sel: mask for sel, (_, mask, _) in filters.items()})
    out: dict[str, Any] = {}
    for sel, (flt, _, share) in filters.items():
        row: dict[str, Any] = {"share": share, "value": next((c.equals for c in flt.must), None)}
        for mode, exact in (("filtered", False), ("exact", True)):
            store.query(project, space, queries[0], limit=10, flt=items_only(flt), exact=exact)  # warm-up
            times, recalls = [], []
            for q, want_rows in zip(queries, truth[sel], strict=True):
                want = {ids[r] for r in want_rows}
                start = time.perf_counter()
                hits = store.query(project, space, q, limit=10, flt=items_only(flt), exact=exact, with_payload=False)
                times.append((time.perf_counter() - start) * 1000)
                recalls.append(len({h.id for h in hits} & want) / max(1, len(want)))
            row[mode] = {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                         "recall10": float(np.mean(recalls))}
        out[f"{sel * 100:g}%"] = row
    return out


def bench_selectivity(n: int, dim: int, n_queries: int) -> None:
    """--selectivity: ingest n points with labels of ~0.1 %, 2 %, 10 % shares into Edge, build the
    index, print measure_search's table."""
    from core.store import EdgeStore

    rng = np.random.default_rng(0)
    vectors, _ = make_data(n, dim)
    shares = np.array([0.001, 0.02, 0.1] + [0.879 / 17] * 17)
    labels = rng.choice(len(shares), n, p=shares / shares.sum())
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "edge")
        try:
            ids, _ = fill(store, vectors, labels)
            start = time.perf_counter()
            store.optimize(PROJECT, SPACE)
            print(f"n={n}: index built in {time.perf_counter() - start:.1f} s; "
                  f"indexed/total {store.index_status(PROJECT, SPACE)}")
            frame = store.payloads(PROJECT, SPACE, fields=["label"])
            for sel, row in measure_search(store, PROJECT, SPACE, ids, vectors, frame, n_queries=n_queries).items():
                f, e = row["filtered"], row["exact"]
                print(f"{sel:>5} ({row['share']:.4f}): planned recall {f['recall10']:.3f} p50 {f['p50_ms']:.2f} "
                      f"p95 {f['p95_ms']:.2f} ms | exact recall {e['recall10']:.3f} p50 {e['p50_ms']:.2f} "
                      f"p95 {e['p95_ms']:.2f} ms")
        finally:
            store.close()


def bench(kind: str, n: int, dim: int, n_queries: int) -> list[dict[str, Any]]:
    from core.store import EdgeStore, ServerStore

    vectors, labels = make_data(n, dim)
    rng = np.random.default_rng(1)
    queries = (vectors[rng.integers(0, n, n_queries)]
               + 0.3 * rng.standard_normal((n_queries, dim))).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q_unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "edge") if kind == "edge" else ServerStore(path=str(Path(tmp) / "local"))
        try:
            ids, ingest_s = fill(store, vectors, labels)
            rows = []
            if kind == "edge":  # before optimize(): a plain scan of the unindexed segment
                few = min(20, n_queries)
                stats = run_queries(store, ids, queries[:few], None, truth(unit, q_unit[:few], None))
                rows.append({"store": kind, "n": n, "query": "no index yet", "ingest_s": ingest_s,
                             "optimize_s": float("nan"), **stats})
            start = time.perf_counter()
            store.optimize(PROJECT, SPACE)
            optimize_s = time.perf_counter() - start
            for name, flt, mask in (("unfiltered", None, None),
                                    ("filtered 10%", Filter.where(label="c3"), labels == 3)):
                stats = run_queries(store, ids, queries, flt, truth(unit, q_unit, mask))
                rows.append({"store": kind, "n": n, "query": name, "ingest_s": ingest_s,
                             "optimize_s": optimize_s, **stats})
            return rows
        finally:
            store.close()


_WRITER = """
import sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from core.store import EdgeStore
from core.ids import point_id
store = EdgeStore({path!r}, lock_timeout_s=60)
rng = np.random.default_rng(2)
deadline = time.monotonic() + {seconds}
batches = 0
while time.monotonic() < deadline:
    ids = [point_id("bench", "ingest", f"{{batches}}-{{i}}") for i in range(256)]
    store.upsert("bench", "own", ids, rng.standard_normal((256, {dim})).astype(np.float32),
                 [{{"dataset": "ingest"}}] * 256)
    batches += 1
    time.sleep(0.05)  # an ingest embeds between batches
print(batches, flush=True)
store.close()
"""


def bench_handover(n: int, dim: int, n_queries: int) -> None:
    """Query latency while another process writes to the same embedded store."""
    import subprocess

    from core.store import EdgeStore

    vectors, labels = make_data(n, dim)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edge"
        store = EdgeStore(path, lock_timeout_s=60)
        fill(store, vectors, labels)
        store.optimize(PROJECT, SPACE)
        alone = _latencies(store, vectors[:n_queries])
        script = _WRITER.format(repo=str(Path(__file__).resolve().parents[1]), path=str(path), dim=dim, seconds=20)
        writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        shared = _latencies(store, vectors[:n_queries])
        out, _ = writer.communicate(timeout=120)
        store.close()
    for name, t in (("alone", alone), ("with a writer", shared)):
        print(f"handover n={n}: query {name:14} p50 {np.percentile(t, 50):7.1f} ms  p95 {np.percentile(t, 95):7.1f} ms")
    print(f"writer upserted {out.strip()} batches of 256 while this process ran {n_queries} queries")


def _latencies(store: VectorStore, queries: np.ndarray, exact: bool = False) -> list[float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        store.query(PROJECT, SPACE, q, limit=10, exact=exact)
        times.append((time.perf_counter() - start) * 1000)
    return times


def bench_dashboard_ingest(n: int, dim: int, n_queries: int) -> None:
    """Ingest through the Ingest page's code path, then check the space got its HNSW index."""
    from types import SimpleNamespace

    from streamlit import config
    from streamlit.logger import set_log_level

    config.get_option("logger.level")  # load the config first: it would reset the level below
    set_log_level("error")  # bare mode (no page to draw on): a warning on every st call

    from core.config import load_settings
    from core.pipeline.indexing import index_build
    from core.pipeline.ingest_job import VectorSource
    from core.store import EdgeStore
    from core.types import Item
    from ui.ingest_run import ingest

    vectors, labels = make_data(n, dim)
    items = [Item(key=f"item-{i}", label=f"c{labels[i]}") for i in range(n)]
    status = SimpleNamespace(update=lambda **kwargs: print(f"  phase: {kwargs.get('label')}", flush=True))
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data")
        store = EdgeStore(Path(tmp) / "edge")
        try:
            ctx = SimpleNamespace(store=store, settings=settings)
            source = VectorSource(SPACE, vectors, [it.key for it in items], "bench.npy")
            start = time.perf_counter()
            outcome = ingest(ctx, PROJECT, "d", items, source, status)  # type: ignore[arg-type]
            returned = time.perf_counter() - start
            queries = vectors[np.random.default_rng(1).integers(0, n, n_queries)]
            during = _latencies(store, queries[:20])  # the index builds in the background meanwhile
            build = index_build(store, PROJECT, SPACE)
            if build is not None:
                build.done.wait()
            seconds = time.perf_counter() - start
            indexed = store.index_status(PROJECT, SPACE)[0]
            approx = _latencies(store, queries)
            exact = _latencies(store, queries, exact=True)
        finally:
            store.close()
    print(f"dashboard ingest of {n} x {dim}: {outcome.report.stored} stored, page returned after {returned:.1f} s, "
          f"background index build done after {seconds:.1f} s; Edge indexed vectors: {indexed}; query p95 while "
          f"building: {np.percentile(during, 95):.2f} ms")
    print(f"query p50: {np.percentile(approx, 50):.2f} ms approximate (the default), "
          f"{np.percentile(exact, 50):.2f} ms exact scan "
          f"(p95 {np.percentile(approx, 95):.2f} / {np.percentile(exact, 95):.2f} ms)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--local-size", type=int, default=10_000, help="qdrant-client local mode size (0: skip)")
    parser.add_argument("--handover", action="store_true", help="also time queries while another process writes")
    parser.add_argument("--dashboard-ingest", type=int, metavar="N",
                        help="only: ingest N points through the dashboard's ingest and check the index")
    parser.add_argument("--selectivity", action="store_true",
                        help="only: recall and p50/p95 per filter selectivity (0.1/2/10/100 %%) at --sizes[0]")
    args = parser.parse_args(argv)
    if args.selectivity:
        bench_selectivity(args.sizes[0], args.dim, args.queries)
        return
    if args.dashboard_ingest:
        bench_dashboard_ingest(args.dashboard_ingest, args.dim, args.queries)
        return
    if args.handover:
        bench_handover(args.sizes[0], args.dim, min(args.queries, 100))
        return
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        rows += bench("edge", n, args.dim, args.queries)
        print(f"edge {n}: done", flush=True)
    if args.local_size:
        rows += bench("local", args.local_size, args.dim, args.queries)
    print(f"\n{'store':6} {'n':>7} {'query':13} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>9} "
          f"{'ingest s':>8} {'optimize s':>10}")
    for r in rows:
        print(f"{r['store']:6} {r['n']:>7} {r['query']:13} {r['p50']:8.2f} {r['p95']:8.2f} "
              f"{r['recall']:9.3f} {r['ingest_s']:8.1f} {r['optimize_s']:10.1f}")
    edge = {(r["n"], r["query"]): r for r in rows if r["store"] == "edge"}
    for r in (r for r in rows if r["store"] == "local"):
        if (r["n"], r["query"]) in edge:
            ratio = r["p50"] / edge[(r["n"], r["query"])]["p50"]
            print(f"p50 local/edge at {r['n']} ({r['query']}): {ratio:.1f}x")


if __name__ == "__main__":
    main()
