"""Issue 11 at scale: ingest, index, search, map, reopen, analyse and the dashboard in Chromium.

For each size, synthetic clustered 512-d "own" vectors are written to a work folder in 100k-row
blocks (never more than one block in memory): vecs.npy (float32), ids.txt, labels.csv (id, label,
prediction with ~8 % planted errors and ~1 % label noise, confidence, split), labels.npy and
splits.npy (the codes, for the exact search). 20 labels, 5 clusters each; label c00 holds ~0.1 %
of the points, c01 ~2 %, c02 ~10 % (filters that follow the clusters); split audit ~0.1 %, test
~2 %, val ~10 %, drawn at random (filters uncorrelated with the vectors: the hard case for HNSW).

Every step runs in its OWN process, so its peak RSS (os.wait4's ru_maxrss of that child) is its
own. RSS counts the store's memory-mapped segment pages (reclaimable under pressure), some twice
(Edge maps its index build's vector file twice), so the step's process tree is also sampled for its
peak proportional set size ("PSS": each page once) and anonymous memory ("anon"), and --memory-cap GB
runs every step in a memory cgroup capped at GB (page cache included; where cgroups are writable):
a step that completes there fits in GB. Each step prints one JSON line with its figures and the
load average at its start and end:

  ingest   the real CLI: python -m core ingest --manifest labels.csv --embeddings vecs.npy
           --ids ids.txt --space own --project scale --dataset ds --store DIR --no-index
  index    store.optimize(project, space) (HNSW build), timed
  search   p50/p95 ms and recall@10 against an exact numpy scan, unfiltered and at 0.1 %, 2 %,
           10 % (label and split filters) and 100 % selectivity, through items_only like the pages
  map      core.pipeline.maps.get_map(store, "scale", "own", ["ds"], method="umap") with progress
  reopen   a new process opening the store and calling get_map again (the persisted map)
  analyse  core.pipeline.analyse.run_analysis(store, "scale", "own", ["ds"])
  browser  `python -m ui.serve` on the store, Explore opened in Debian Chromium via Playwright:
           app shell, first picture (the density picture or a chart drawn), final map, largest websocket frame, lasso ->
           "Selection · N" shown; time-bounded (--browser-timeout), records what it measured.

A failing step records its error and the run goes on. Run from the repository root:

    nice -n 10 .venv/bin/python benchmarks/scale.py --sizes 20000                  # all steps
    .venv/bin/python benchmarks/scale.py --sizes 1000000 --steps ingest --keep /tmp/scale
    .venv/bin/python benchmarks/scale.py --sizes 1000000 --steps index search --keep /tmp/scale
    .venv/bin/python benchmarks/scale.py --sizes 100000 300000 1000000 --out results.json
    .venv/bin/python benchmarks/scale.py --table /tmp/scale/a.json /tmp/scale/b.json   # merged table

--keep DIR keeps (and reuses) DIR/<n>/: the generated files and the store, so steps can be run
one at a time across invocations; without it each size uses a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.auth import Actor, Role, system_actor  # noqa: E402 (after the path)

PROJECT, SPACE, DATASET = "scale", "own", "ds"
STEPS = ("ingest", "index", "search", "map", "reopen", "analyse", "browser", "curate")
BLOCK = 100_000
N_LABELS, CLUSTERS_PER_LABEL = 20, 5
# label code -> share of points; the remaining labels share the rest equally
SHARES = {0: 0.001, 1: 0.02, 2: 0.10}
SPLITS = ("train", "val", "test", "audit")
SPLIT_SHARES = (0.879, 0.10, 0.02, 0.001)
# filter -> (payload field, value code): labels follow the clusters (a filter near or far from a
# query's cluster); splits are drawn at random (the filter uncorrelated with the vectors: the hard
# case for filtered HNSW). "100%" matches every point through a dataset filter.
FILTERS: dict[str, tuple[str, int] | None] = {
    "label 0.1%": ("label", 0), "label 2%": ("label", 1), "label 10%": ("label", 2),
    "split 0.1%": ("split", 3), "split 2%": ("split", 2), "split 10%": ("split", 1), "100%": None,
}
DATA_VERSION = 2  # bump when the generated data changes: --keep folders are regenerated
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# -- data ----------------------------------------------------------------------------------------
def label_name(code: int) -> str:
    return f"c{code:02d}"


def _label_probs() -> np.ndarray:
    rest = (1.0 - sum(SHARES.values())) / (N_LABELS - len(SHARES))
    return np.array([SHARES.get(i, rest) for i in range(N_LABELS)])


def generate(folder: Path, n: int, dim: int, seed: int = 0) -> None:
    """Write vecs.npy, ids.txt, labels.csv, labels.npy, splits.npy in blocks of BLOCK rows (bounded
    memory); a folder already holding the same data (done.json) is kept as it is."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = [n, dim, seed, DATA_VERSION]
    if (folder / "done.json").exists() and json.loads((folder / "done.json").read_text()) == stamp:
        return
    shutil.rmtree(folder / "data", ignore_errors=True)  # a store of other data would be resumed, not refilled
    centres = np.random.default_rng(seed).standard_normal((N_LABELS * CLUSTERS_PER_LABEL, dim)).astype(np.float32)
    vecs = np.lib.format.open_memmap(folder / "vecs.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    codes = np.lib.format.open_memmap(folder / "labels.npy", mode="w+", dtype=np.int16, shape=(n,))
    split_codes = np.lib.format.open_memmap(folder / "splits.npy", mode="w+", dtype=np.int16, shape=(n,))
    probs = _label_probs()
    with open(folder / "ids.txt", "w") as ids_file, open(folder / "labels.csv", "w", newline="") as man:
        writer = csv.writer(man)
        writer.writerow(["id", "label", "prediction", "confidence", "split"])
        for start in range(0, n, BLOCK):
            stop = min(start + BLOCK, n)
            rng = np.random.default_rng([seed, start])
            true = rng.choice(N_LABELS, size=stop - start, p=probs)
            cluster = true * CLUSTERS_PER_LABEL + rng.integers(0, CLUSTERS_PER_LABEL, stop - start)
            vecs[start:stop] = centres[cluster] + 0.6 * rng.standard_normal((stop - start, dim), dtype=np.float32)
            label = np.where(rng.random(stop - start) < 0.01, rng.integers(0, N_LABELS, stop - start), true)
            wrong = rng.random(stop - start) < 0.08
            pred = np.where(wrong, (true + rng.integers(1, N_LABELS, stop - start)) % N_LABELS, true)
            conf = np.where(wrong, rng.uniform(0.3, 0.7, stop - start), rng.uniform(0.6, 1.0, stop - start))
            split_codes[start:stop] = rng.choice(len(SPLITS), size=stop - start, p=SPLIT_SHARES)
            split = np.array(SPLITS)[split_codes[start:stop]]
            codes[start:stop] = label
            keys = [f"i{i:08d}" for i in range(start, stop)]
            ids_file.write("\n".join(keys) + "\n")
            writer.writerows(zip(keys, map(label_name, label), map(label_name, pred),
                                 np.round(conf, 3), split, strict=True))
    vecs.flush()
    codes.flush()
    split_codes.flush()
    del vecs, codes, split_codes
    (folder / "done.json").write_text(json.dumps(stamp))


# -- step children (each runs in its own process) -----------------------------------------------
def _open_store(folder: Path) -> Any:
    from core.config import load_settings
    from core.store import open_store

    return open_store(load_settings())


def _cache_kwargs(fn: Callable[..., Any]) -> dict[str, Any]:
    """cache_dir=settings.cache_dir / "vectors" (where load_vectors keeps vector blocks, as the
    pages pass it) when fn takes it: the product path, and a reopen that reuses the block."""
    import inspect

    from core.config import load_settings

    if "cache_dir" not in inspect.signature(fn).parameters:
        return {}
    return {"cache_dir": load_settings().cache_dir / "vectors"}


def _progress(name: str) -> Callable[[int, int], None]:
    started = time.perf_counter()

    def show(done: int, total: int) -> None:
        print(f"  {name}: {done}/{total} at {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return show


def step_index(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    store = _open_store(folder)
    try:
        start = time.perf_counter()
        store.optimize(PROJECT, SPACE)
        out: dict[str, Any] = {"wall_s": time.perf_counter() - start, "count": store.count(PROJECT, SPACE)}
        if hasattr(store, "index_status"):  # (points in HNSW segments, all points)
            out["indexed"], _ = store.index_status(PROJECT, SPACE)
        return out
    finally:
        store.close()


def _codes(folder: Path) -> dict[str, np.ndarray]:
    """Label and split codes per row (memory-mapped)."""
    return {field: np.load(folder / f"{field}s.npy", mmap_mode="r") for field in ("label", "split")}


def _exact_top10(folder: Path, queries: np.ndarray, filters: dict[str, tuple[str, int] | None]
                 ) -> dict[str, list[list[int]]]:
    """Exact cosine top-10 row indices per query for every filter, one pass over the blocks."""
    vecs = np.load(folder / "vecs.npy", mmap_mode="r")
    codes = _codes(folder)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best = {s: (np.full((len(q), 10), -np.inf, np.float32), np.zeros((len(q), 10), np.int64)) for s in filters}
    for start in range(0, len(vecs), BLOCK):
        block = np.asarray(vecs[start:start + BLOCK], dtype=np.float32)
        scores = q @ (block / np.linalg.norm(block, axis=1, keepdims=True)).T
        rows = np.arange(start, start + len(block))
        for sel, cond in filters.items():
            if cond is None:
                s = scores
            else:
                s = np.where(codes[cond[0]][start:start + len(block)] == cond[1], scores, -np.inf)
            all_s = np.concatenate([best[sel][0], s], axis=1)
            all_i = np.concatenate([best[sel][1], np.broadcast_to(rows, s.shape)], axis=1)
            top = np.argpartition(-all_s, 9, axis=1)[:, :10]
            best[sel] = (np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1))
    return {sel: [[int(i) for i, v in zip(ix, sc, strict=True) if np.isfinite(v)]
                  for ix, sc in zip(b[1], b[0], strict=True)] for sel, b in best.items()}


def _value(field: str, code: int) -> str:
    return label_name(code) if field == "label" else SPLITS[code]


def step_search(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """p50/p95 latency and recall@10 against an exact numpy scan, unfiltered and per filter.

    The filtered cases go through benchmarks/search.py's measure_search (the team's one recall
    measurement; it also times the store's own exact scan) where it exists; otherwise, and for
    the unfiltered case, the simple loop of _search_cases."""
    store = _open_store(folder)
    try:
        try:
            from search import measure_search  # benchmarks/search.py (this script's folder is on sys.path)
        except ImportError:
            return _search_cases(folder, args, store, {"unfiltered": None, **FILTERS})
        out = _search_cases(folder, args, store, {"unfiltered": None})
        out.update(_measured_filters(folder, args, store, measure_search))
        return out
    finally:
        store.close()


def _measured_filters(folder: Path, args: argparse.Namespace, store: Any, measure: Callable[..., Any]
                      ) -> dict[str, Any]:
    from core.ids import point_id

    vecs = np.load(folder / "vecs.npy", mmap_mode="r")
    ids = [point_id(PROJECT, DATASET, f"i{i:08d}") for i in range(len(vecs))]
    frame = store.payloads(PROJECT, SPACE, fields=["label", "split"])
    out: dict[str, Any] = {"search_measured_by": "benchmarks/search.py measure_search"}
    for field, targets in (("label", (0.001, 0.02, 0.1, 1.0)), ("split", (0.001, 0.02, 0.1))):
        figures = measure(store, PROJECT, SPACE, ids, vecs, frame, field=field, n_queries=args.queries,
                          selectivities=targets)
        for sel, row in figures.items():
            planned, exact = row["filtered"], row["exact"]
            out["filtered 100%" if sel == "100%" else f"filtered {field} {sel}"] = {
                **planned, "share": row["share"], "value": row.get("value"),
                "exact_p50_ms": exact["p50_ms"], "exact_p95_ms": exact["p95_ms"], "exact_recall10": exact["recall10"]}
    return out


def _search_cases(folder: Path, args: argparse.Namespace, store: Any,
                  filters: dict[str, tuple[str, int] | None]) -> dict[str, Any]:
    """store.query latency and recall@10 against the exact numpy scan, through items_only filters
    like the pages ("unfiltered": no filter at all)."""
    from core.filters import Filter, items_only
    from core.ids import point_id

    vecs = np.load(folder / "vecs.npy", mmap_mode="r")
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(len(vecs), args.queries, replace=False))
    queries = (vecs[rows] + 0.3 * rng.standard_normal((len(rows), vecs.shape[1]))).astype(np.float32)
    start = time.perf_counter()
    truth = _exact_top10(folder, queries, filters)
    out: dict[str, Any] = {"exact_numpy_s": time.perf_counter() - start, "queries": len(rows)}
    codes = _codes(folder)
    for name, cond in filters.items():
        if name == "unfiltered":
            flt = None
        else:
            flt = items_only(Filter.datasets([DATASET]) if cond is None else Filter.where(**{cond[0]: _value(*cond)}))
        store.query(PROJECT, SPACE, queries[0], limit=10, flt=flt)  # warm-up
        times, recalls = [], []
        for q, want_rows in zip(queries, truth[name], strict=True):
            want = {point_id(PROJECT, DATASET, f"i{r:08d}") for r in want_rows}
            t = time.perf_counter()
            hits = store.query(PROJECT, SPACE, q, limit=10, flt=flt, with_payload=False)
            times.append((time.perf_counter() - t) * 1000)
            recalls.append(len({h.id for h in hits} & want) / max(1, len(want)))
        share = 1.0 if cond is None else float(np.mean(codes[cond[0]] == cond[1]))
        out[name if name == "unfiltered" else f"filtered {name}"] = {
            "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "recall10": float(np.mean(recalls)), "share": share}
    return out


def step_map(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from core.pipeline.maps import get_map

    store = _open_store(folder)
    try:
        start = time.perf_counter()
        # refit: a kept store already holds the map (the reopen step measures reusing it)
        result = get_map(store, PROJECT, SPACE, [DATASET], method="umap", progress=_progress("map"), refit=True,
                         actor=system_actor(), **_cache_kwargs(get_map))
        return {"wall_s": time.perf_counter() - start, "points": len(result), "fitted": result.fitted,
                "n_fitted": result.n_fitted, "placed": result.placed}
    finally:
        store.close()


def step_reopen(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    from core.pipeline.maps import get_map

    store = _open_store(folder)
    try:
        opened = time.perf_counter()
        result = get_map(store, PROJECT, SPACE, [DATASET], method="umap", actor=system_actor(),
                         **_cache_kwargs(get_map))
        done = time.perf_counter()
        return {"wall_s": done - opened, "with_import_and_open_s": done - start, "points": len(result),
                "fitted": result.fitted}
    finally:
        store.close()


def step_analyse(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from core.pipeline.analyse import run_analysis

    store = _open_store(folder)
    try:
        start = time.perf_counter()
        result = run_analysis(store, PROJECT, SPACE, [DATASET], progress=_progress("analyse"), force=True,
                              **_cache_kwargs(run_analysis), actor=system_actor())
        summary = {k: v for k, v in getattr(result, "summary", {}).items() if isinstance(v, int | float | str)}
        return {"wall_s": time.perf_counter() - start, "summary": summary}
    finally:
        store.close()


def step_curate(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Curation at scale (issue 14): the first open of a store made before tags existed (adds the tags
    index), tagging 10k points, relabelling 1 and 1,000, the dashboard's payload read after those writes
    and after one more relabel (the cached frame patched from the payload journal, not a full read;
    payload_full_reads_after_writes counts full reads), the Explore map data's rebuild, tag counts,
    corrected ids, and undoing everything (the store ends as it began, but for original_label)."""
    from core.config import load_settings
    from core.curation import labels, tags
    from core.curation.corrected import corrected_ids
    from core.pipeline.payload_cache import cache_folder, load_payloads

    figures: dict[str, Any] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        figures[name] = time.perf_counter() - start
        print(f"curate: {name} {figures[name]:.2f} s", file=sys.stderr, flush=True)
        return out

    store = timed("open_s", lambda: _open_store(folder))
    try:
        cache = cache_folder(load_settings())
        timed("payloads_before_s", lambda: load_payloads(store, PROJECT, SPACE, cache_dir=cache))
        timed("payloads_cached_s", lambda: load_payloads(store, PROJECT, SPACE, cache_dir=cache))
        ids = [line.split(",")[0] for line in (folder / "ids.txt").read_text().splitlines()[:10_000]]
        from core.ids import point_id

        points = [point_id(PROJECT, DATASET, key) for key in ids]
        timed("tag_10k_s", lambda: tags.add_tags(store, PROJECT, points, ["bench"], actor=Actor("bench", Role.EDITOR)))
        timed("relabel_1_s", lambda: labels.set_labels(store, PROJECT, points[:1], ["fixed"],
                                                       actor=Actor("bench", Role.EDITOR),
                                                       why="manual"))
        timed("relabel_1k_s", lambda: labels.set_labels(store, PROJECT, points[1:1001], ["fixed"] * 1000,
                                                        actor=Actor("bench", Role.EDITOR), why="finding"))
        full_reads = _count_payload_reads(store)
        frame = timed("payloads_after_write_s", lambda: load_payloads(store, PROJECT, SPACE, cache_dir=cache))
        reads = len(full_reads)
        timed("relabel_1_again_s", lambda: labels.set_labels(store, PROJECT, points[1001:1002], ["fixed"],
                                                             actor=Actor("bench", Role.EDITOR), why="manual"))
        full_reads.clear()  # set_labels reads the payloads of its points
        frame = timed("payloads_after_relabel_1_s", lambda: load_payloads(store, PROJECT, SPACE, cache_dir=cache))
        figures["payload_full_reads_after_writes"] = reads + len(full_reads)  # 0: patched from the journal
        figures["map_data_rebuild_s"] = _map_data_rebuild(store, frame)
        figures["tag_counts"] = timed("tag_counts_s", lambda: tags.tag_counts(store, PROJECT, SPACE))
        figures["corrected"] = len(timed("corrected_ids_s", lambda: corrected_ids(store, PROJECT, SPACE)))
        figures["relabelled_seen"] = int((frame["label"] == "fixed").sum())
        for name in ("undo_1_again_s", "undo_1k_s", "undo_1_s", "untag_10k_s"):
            timed(name, lambda: labels.undo(store, PROJECT, actor=Actor("bench", Role.EDITOR)))
        return figures
    finally:
        store.close()


def _count_payload_reads(store: Any) -> list[int]:
    """A list that grows by one on each full payload read (store.payloads) of this store object."""
    reads: list[int] = []
    plain = store.payloads

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return plain(*args, **kwargs)

    store.payloads = counted
    return reads


def _map_data_rebuild(store: Any, payloads: Any) -> float:
    """Seconds of the Explore map data's rebuild after a write (ui.resources.cached_map_data is keyed
    on the project revision): the persisted map read back, then joined to the payloads (no scores)."""
    from core.pipeline.maps import get_map
    from ui.explore import map_data

    start = time.perf_counter()
    result = get_map(store, PROJECT, SPACE, [DATASET], method="umap", actor=system_actor(),
                     **_cache_kwargs(get_map))
    read = time.perf_counter()
    map_data(result.ids, result.coords, payloads, None, n_fitted=result.n_fitted, token="bench")
    done = time.perf_counter()
    from ui.widgets.filters import facets_from_frame  # ui.resources.payload_facets: per space revision

    facets_from_frame(payloads)
    print(f"curate: map read {read - start:.2f} s, map data join {done - read:.2f} s, filter facets "
          f"{time.perf_counter() - done:.2f} s", file=sys.stderr, flush=True)
    return done - start


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as {field: value} (OSError when the process is gone)."""
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())


def _vm_hwm_gb(pid: int) -> float | None:
    """Peak resident memory of a live process (VmHWM), in GB."""
    try:
        return int(_status(pid)["VmHWM"].split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        return None


def _tree_memory_gb(pid: int) -> tuple[float, float]:
    """(anonymous, proportional) resident GB of pid and its descendants. Proportional (PSS) counts a
    page once however many times it is mapped; RSS does not: Edge's index build maps its new vector
    file twice (measured at 300k: 586 MB of matrix.dat counted 1,172 MB in RSS)."""
    anon = pss = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            anon += int(_status(p).get("RssAnon", "0 kB").split()[0])
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
            pss += next((int(line.split()[1]) for line in rollup if line.startswith("Pss:")), 0)
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return anon / 2**20, pss / 2**20


def memory_cgroup(cap_gb: float) -> Path | None:
    """A new memory cgroup under this process's own, capped at cap_gb (page cache included, so
    mapped store pages are reclaimed instead of counted), or None where cgroups cannot be written."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        v1 = "memory" in controllers.split(",")
        if not (v1 or controllers == ""):
            continue
        base = Path("/sys/fs/cgroup/memory" if v1 else "/sys/fs/cgroup") / path.lstrip("/")
        group = base / f"embedscope-scale-{os.getpid()}"
        try:
            group.mkdir(exist_ok=True)
            (group / ("memory.limit_in_bytes" if v1 else "memory.max")).write_text(str(int(cap_gb * 2**30)))
            return group
        except OSError as e:
            print(f"no memory cgroup ({e}): steps run uncapped", file=sys.stderr)
            return None
    return None


def _reset_peak(group: Path) -> None:
    """Start the group's peak-usage counter afresh (v1; v2's memory.peak resets on write where supported)."""
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        try:
            (group / name).write_text("0")
        except OSError:
            continue


def _cgroup_peak_gb(group: Path | None) -> float | None:
    """Peak memory charged to the group since the last reset (anonymous + page cache), in GB: at
    most the cap (the 1M index step's RSS peaked at 11.1 GB in an 8 GB group: see _tree_memory_gb)."""
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        try:
            return int((group / name).read_text()) / 2**30 if group is not None else None
        except (OSError, ValueError):
            continue
    return None


def start_server(work: Path, deadline: float, env: dict[str, str] | None = None
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m ui.serve` on a free port, run in work (its log: work/streamlit.log), with env
    (default: this process's); (process, url) once healthy, by the time.monotonic() deadline."""
    port = _free_port()
    cmd = [sys.executable, "-m", "ui.serve", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--global.developmentMode", "false"]
    with open(work / "streamlit.log", "wb") as log:  # cwd=work: no developer .env leaks in
        server = subprocess.Popen(cmd, cwd=work, env=os.environ.copy() if env is None else env, stdout=log,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return server, url
        except OSError:
            time.sleep(0.3)  # polling a socket for readiness: nothing to wait on yet
    raise RuntimeError(f"dashboard not healthy (exit {server.poll()}); see {work / 'streamlit.log'}")


CHART = '[data-testid="stPlotlyChart"]'
# the first picture: the server-drawn density picture (ui/widgets/map_preview.py), a scattergl canvas
# or a density image of the chart; the final map: the chart
PICTURE = f".st-key-map-preview img, {CHART} canvas, {CHART} .main-svg image"
MAP = f"{CHART} canvas, {CHART} .main-svg image"


def _idle(page: Any, timeout_ms: float) -> None:
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout_ms)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout_ms)


def _lasso(page: Any, timeout_ms: float) -> tuple[float, str]:
    """Draw a lasso over the middle of the map; seconds until "Selection · N" shows, and its text."""
    chart = page.locator(CHART).first
    chart.hover()
    try:  # the map opens in lasso mode; the button makes sure of it where the page has one
        chart.locator('.modebar-btn[data-title="Lasso Select"]').first.click(timeout=min(timeout_ms, 15_000))
    except Exception as e:  # noqa: BLE001 - a missing button is not a failed measurement
        print(f"no Lasso Select button ({type(e).__name__}): dragging in the map's own mode", file=sys.stderr)
    area = chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None, "no drag layer on the map"
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    rx, ry = area["width"] / 4, area["height"] / 4
    points = [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 16)]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=3)
    start = time.perf_counter()
    page.mouse.up()
    shown = page.get_by_text(__import__("re").compile(r"Selection · [0-9]")).first
    shown.wait_for(timeout=timeout_ms)
    return time.perf_counter() - start, shown.inner_text()


def step_browser(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Explore in Chromium; records every figure it reaches before an error or the time limit."""
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + args.browser_timeout
    left = lambda: max(1000.0, (deadline - time.monotonic()) * 1000)  # noqa: E731
    out: dict[str, Any] = {}
    frames: list[int] = []
    start = time.perf_counter()
    server, url = start_server(work, deadline)
    out["server_start_s"] = time.perf_counter() - start
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.on("websocket", lambda ws: ws.on("framereceived", lambda p: frames.append(
                    len(p.encode() if isinstance(p, str) else p))))
                t0 = time.perf_counter()
                page.goto(f"{url}/Explore", timeout=left())
                page.locator('[data-testid="stSidebar"]').wait_for(timeout=left())
                out["app_shell_s"] = time.perf_counter() - t0
                page.locator(PICTURE).first.wait_for(timeout=left())
                out["first_picture_s"] = time.perf_counter() - t0
                page.get_by_text("Quick layout").wait_for(state="detached", timeout=left())
                _idle(page, left())
                page.locator(MAP).first.wait_for(timeout=left())
                out["final_map_s"] = time.perf_counter() - t0
                out["lasso_to_selection_s"], out["selection_text"] = _lasso(page, left())
                page.screenshot(path=str(work / "browser.png"))
            except Exception as e:  # record how far it got: the figures above stay
                out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            finally:
                browser.close()
    finally:
        out["server_peak_rss_gb"] = _vm_hwm_gb(server.pid)
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    out["largest_ws_frame_bytes"] = max(frames, default=0)
    out["ws_bytes_total"] = sum(frames)
    out["ws_bytes_per_point"] = out["largest_ws_frame_bytes"] / len(np.load(work / "labels.npy", mmap_mode="r"))
    out["wall_s"] = time.perf_counter() - start
    return out


CHILD_STEPS: dict[str, Callable[[Path, argparse.Namespace], dict[str, Any]]] = {
    "index": step_index, "search": step_search, "map": step_map, "reopen": step_reopen,
    "analyse": step_analyse, "browser": step_browser, "curate": step_curate,
}


# -- parent: one subprocess per step -------------------------------------------------------------
def child_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDSCOPE_")}
    env.update({"EMBEDSCOPE_DATA_DIR": str(work / "data"), "EMBEDSCOPE_QDRANT_PATH": str(work / "data" / "qdrant"),
                "EMBEDSCOPE_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "NUMBA_CACHE_DIR": env.get("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache")),
                "PYTHONUNBUFFERED": "1"})
    return env


def step_command(step: str, work: Path, args: argparse.Namespace) -> list[str]:
    if step == "ingest":
        return [sys.executable, "-m", "core", "ingest", "--manifest", str(work / "labels.csv"),
                "--embeddings", str(work / "vecs.npy"), "--ids", str(work / "ids.txt"), "--space", SPACE,
                "--project", PROJECT, "--dataset", DATASET, "--store", str(work / "data" / "qdrant"),
                "--no-index", "--progress", "lines"]
    return [sys.executable, str(Path(__file__).resolve()), "--child", step, "--work", str(work),
            "--queries", str(args.queries), "--browser-timeout", str(args.browser_timeout)]


def _echo(proc: subprocess.Popen[bytes], tail: deque[str]) -> None:
    """Show the child's log (progress) live, keeping its last lines."""
    assert proc.stderr is not None
    for raw in proc.stderr:
        line = raw.decode(errors="replace").rstrip()
        tail.append(line)
        print(f"  | {line}", file=sys.stderr, flush=True)


def run_step(step: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one step in a child process; its wall time, peak RSS (ru_maxrss) and figures."""
    if step == "ingest":  # from an empty store: a kept one would be resumed (every item skipped)
        shutil.rmtree(work / "data", ignore_errors=True)
    load_start = os.getloadavg()
    out_path = work / f"{step}.out"
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(step_command(step, work, args), cwd=ROOT, env=child_env(work),
                                stdout=out, stderr=subprocess.PIPE)
    if args.cgroup is not None:  # before it allocates anything; its descendants inherit the group
        _reset_peak(args.cgroup)
        (args.cgroup / "cgroup.procs").write_text(str(proc.pid))
    tail: deque[str] = deque(maxlen=5)  # the child's last log lines, for the error of a failed step
    echo = threading.Thread(target=_echo, args=(proc, tail), daemon=True)
    echo.start()
    deadline = time.monotonic() + args.step_timeout
    status, usage, peak_anon, peak_pss = 0, None, 0.0, 0.0
    while True:
        anon, pss = _tree_memory_gb(proc.pid)
        peak_anon, peak_pss = max(peak_anon, anon), max(peak_pss, pss)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    echo.join(timeout=5)
    record: dict[str, Any] = {"step": step, "process_wall_s": time.perf_counter() - start,
                              "peak_rss_gb": usage.ru_maxrss / 2**20 if usage else None,
                              "peak_anon_gb": peak_anon, "peak_pss_gb": peak_pss, "memory_cap_gb": args.memory_cap,
                              "cgroup_peak_gb": _cgroup_peak_gb(args.cgroup),
                              "exit": proc.returncode, "load_start": load_start, "load_end": os.getloadavg()}
    lines = out_path.read_text(errors="replace").strip().splitlines()
    figures = next((json.loads(line) for line in reversed(lines) if line.startswith("{")), None)
    if step == "ingest":
        figures = {"wall_s": record["process_wall_s"], "last_line": lines[-1] if lines else ""}
    if figures is not None:
        record.update(figures)
    if proc.returncode != 0 and "error" not in record:
        record["error"] = f"exit {proc.returncode}: " + " | ".join([*lines[-2:], *tail])
    return record


def child_main(args: argparse.Namespace) -> None:
    work = Path(args.work)
    load_start = os.getloadavg()
    try:
        figures = CHILD_STEPS[args.child](work, args)
    except Exception as e:  # a failed step is a figure too: record it, the run goes on
        figures = {"error": f"{type(e).__name__}: {e}"}
    figures.update({"child_load_start": load_start, "child_load_end": os.getloadavg()})
    print(json.dumps(figures, default=str), flush=True)


def _cell(record: dict[str, Any] | None, key: str = "wall_s", fmt: str = "{:.1f} s") -> str:
    if record is None:
        return "-"
    if "error" in record and key not in record:
        return "error"
    value = record.get(key)
    rss = record.get("peak_rss_gb")
    text = fmt.format(value) if isinstance(value, int | float) else str(value)
    if rss is None or key != "wall_s":
        return text
    anon, cap, charged = record.get("peak_anon_gb"), record.get("memory_cap_gb"), record.get("cgroup_peak_gb")
    pss = record.get("peak_pss_gb")
    return (text + f" / {rss:.2f} GB" + (f" (PSS {pss:.2f}, anon {anon:.2f})" if pss and anon else "")
            + (f" [cap {cap:g} GB, charged {charged:.2f}]" if cap and charged else f" [cap {cap:g} GB]" if cap else ""))


def table(results: dict[int, dict[str, dict[str, Any]]]) -> str:
    sizes = sorted(results)
    rows = [["step", *(f"{n:,}" for n in sizes)]]

    def add(name: str, get: Callable[[dict[str, dict[str, Any]]], str]) -> None:
        rows.append([name, *(get(results[n]) for n in sizes)])

    for step in ("ingest", "index", "map"):
        add(f"{step} (wall / peak RSS)", lambda r, s=step: _cell(r.get(s)))
    add("map: points fitted (the rest placed)", lambda r: _cell(r.get("map"), "n_fitted", "{:,}"))
    add("reopen (get_map in a new process)", lambda r: _cell(r.get("reopen")))
    add("analyse (wall / peak RSS)", lambda r: _cell(r.get("analyse")))
    for case in ("unfiltered", *(f"filtered {s}" for s in FILTERS)):
        add(f"search {case}: p95 / recall@10", lambda r, c=case: "-" if c not in r.get("search", {}) else
            f"{r['search'][c]['p95_ms']:.1f} ms / {r['search'][c]['recall10']:.3f}")
    for key, label in (("app_shell_s", "app shell"), ("first_picture_s", "first picture"),
                       ("final_map_s", "final map"), ("lasso_to_selection_s", "lasso -> selection"),
                       ("largest_ws_frame_bytes", "largest websocket frame (bytes)"),
                       ("ws_bytes_per_point", "largest websocket frame (bytes/point)"),
                       ("server_peak_rss_gb", "dashboard server peak RSS")):
        add(f"browser: {label}", lambda r, k=key: "-" if k not in r.get("browser", {}) else str(
            round(r["browser"][k], 2) if isinstance(r["browser"][k], float) else r["browser"][k]))
    for key, label in (("open_s", "first open (tags index)"), ("tag_10k_s", "tag 10k points"),
                       ("relabel_1_s", "relabel 1 point"), ("relabel_1k_s", "relabel 1,000 points"),
                       ("payloads_after_write_s", "payloads re-read after a write"),
                       ("payloads_after_relabel_1_s", "payloads re-read after 1 relabel"),
                       ("map_data_rebuild_s", "Explore map data rebuilt after a write"),
                       ("payloads_cached_s", "payloads from the cache"), ("tag_counts_s", "tag counts"),
                       ("undo_1k_s", "undo the 1,000")):
        add(f"curate: {label} (s)", lambda r, k=key: "-" if k not in r.get("curate", {}) else
            f"{r['curate'][k]:.2f}")
    add("load average (1 min) start-end of steps", lambda r: " ".join(
        f"{v['load_start'][0]:.1f}-{v['load_end'][0]:.1f}" for v in r.values() if "load_start" in v))
    add("wall of each step's process (s)", lambda r: " ".join(
        f"{k}={v['process_wall_s']:.0f}" for k, v in r.items() if "process_wall_s" in v))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [f"error at {n:,} in {step}: {str(record['error'])[:300]}" for n in sizes
              for step, record in results[n].items() if record.get("error")]
    lines += [f"browser at {n:,} stopped: {results[n]['browser']['error']}" for n in sizes
              if results[n].get("browser", {}).get("error")]
    return "\n".join(dict.fromkeys(lines))


def load_results(paths: list[Path]) -> dict[int, dict[str, dict[str, Any]]]:
    """Figures of earlier --out files, merged (a later file wins per size and step)."""
    merged: dict[int, dict[str, dict[str, Any]]] = {}
    for path in paths:
        for n, steps in json.loads(path.read_text()).items():
            merged.setdefault(int(n), {}).update(steps)
    return merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--out", type=Path, help="write every figure as JSON here (an existing file is extended)")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) data and store under DIR/<n>/")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--step-timeout", type=float, default=3600.0, help="seconds before a step is killed")
    parser.add_argument("--browser-timeout", type=float, default=300.0)
    parser.add_argument("--memory-cap", type=float, metavar="GB",
                        help="run each step in a memory cgroup capped at GB (page cache included), where writable")
    parser.add_argument("--child", choices=sorted(CHILD_STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, nargs="+", metavar="JSON",
                        help="only print the table of earlier --out files (merged, later files win per step)")
    args = parser.parse_args(argv)
    if args.table:
        print(table(load_results(args.table)))
        return
    if args.child:
        child_main(args)
        return
    args.cgroup = memory_cgroup(args.memory_cap) if args.memory_cap else None
    # an existing --out file is extended: steps run one at a time add up to one table
    results = load_results([args.out]) if args.out and args.out.exists() else {}
    for n in args.sizes:
        work = (args.keep / str(n)) if args.keep else Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
        try:
            start = time.perf_counter()
            generate(work, n, args.dim)
            print(f"== {n:,} x {args.dim}: data in {work} ({time.perf_counter() - start:.1f} s)", flush=True)
            results.setdefault(n, {})
            for step in args.steps:
                results[n][step] = record = run_step(step, work, args)
                print(json.dumps({"n": n, **record}, default=str), flush=True)
                if args.out:
                    args.out.write_text(json.dumps(results, indent=1, default=str))
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    if args.cgroup is not None:
        args.cgroup.rmdir()
    print(table(results))


if __name__ == "__main__":
    main()
