"""UMAP warm-up: compile umap-learn's numba code once per process and cache what numba can on disk.

A cold `import umap` plus the first fit in a fresh process spends close to a minute in numba's
JIT compiler. Most of umap-learn / pynndescent's functions are compiled with cache=True, so with
NUMBA_CACHE_DIR pointing at a persistent folder a later process loads them from disk; the
layout optimiser is compiled without a cache and is paid once per process. The dashboard runs
warm_up_umap in a background thread at start, so the first map a user asks for is fast.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_done = False
_START_LOCK = threading.Lock()
_thread: threading.Thread | None = None  # the warm-up thread, once started


def use_cache_dir(cache_dir: str | Path) -> Path:
    """Point numba's on-disk cache at cache_dir unless NUMBA_CACHE_DIR is already set.

    Returns the folder in use. Call it before numba is imported where possible; if numba is
    already imported, its configuration is reloaded so the folder still takes effect.
    """
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return Path(current)
    path = Path(cache_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    if "numba" in sys.modules:
        from numba.core import config

        config.reload_config()
    return path


def warm_up_umap(cache_dir: str | Path | None = None) -> float:
    """Run a tiny UMAP fit (300 x 16) through the same code path as real maps; return its seconds.

    cache_dir: numba's cache folder (e.g. settings.cache_dir / "numba"), used only when
    NUMBA_CACHE_DIR is not set. Thread-safe and done once per process: later calls return 0.0
    at once (a concurrent caller waits for the first). Safe to run in a daemon thread.
    """
    global _done
    if cache_dir is not None:
        use_cache_dir(cache_dir)
    with _LOCK:
        if _done:
            return 0.0
        start = time.perf_counter()
        from core.projection.fit import umap_layout
        from core.projection.params import normalise_params, resolve_umap
        from core.projection.place import unit_rows

        x = unit_rows(np.random.default_rng(0).random((300, 16), dtype=np.float32))
        params = resolve_umap(len(x), normalise_params("umap", {"n_epochs": 10}))
        umap_layout(x, params, force_approximation=True)
        _done = True
        seconds = time.perf_counter() - start
    log.info("UMAP warm-up done in %.1f s (numba cache: %s)", seconds, os.environ.get("NUMBA_CACHE_DIR"))
    return seconds


def start_warm_up(cache_dir: str | Path | None = None) -> threading.Thread:
    """warm_up_umap in a daemon thread (started); errors are logged, never raised.

    Once per process: a later call (the pages call it too, after ui.serve did) returns the
    thread already started instead of starting another that would only wait for it.
    """
    global _thread

    def run() -> None:
        try:
            warm_up_umap(cache_dir)
        except Exception:  # a failed warm-up only costs speed later; the real fit reports errors
            log.exception("UMAP warm-up failed")

    with _START_LOCK:
        if _thread is None:
            _thread = threading.Thread(target=run, name="umap-warm-up", daemon=True)
            _thread.start()
        return _thread
