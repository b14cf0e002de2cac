"""UMAP warm-up: compile umap-learn's numba code once per process and cache what numba can on disk.

A cold `import umap` plus the first fit in a fresh process spends close to a minute in numba's
JIT compiler. Most of umap-learn / pynndescent's functions are compiled with cache=True, so with
NUMBA_CACHE_DIR pointing at a persistent folder a later process loads them from disk; the
layout optimiser is compiled without a cache and is paid once per process. The dashboard runs
start_warm_up at start: the compiling happens first in a child process at the lowest CPU
priority (it fills the disk cache without taking this process's GIL or a user's cores), then
this process loads the compiled code. Until then small maps use core.projection.umap_numpy.
"""

from __future__ import annotations

import logging
import os
import subprocess
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
_ROOT = Path(__file__).resolve().parents[1]  # the folder `core` is imported from (the child's cwd)
# The child exits when its parent does (a server stopped mid-compile leaves no orphan behind).
_CHILD = ("import os, sys, threading, time\n"
          "os.nice(19)\n"
          "parent = int(sys.argv[1])  # given, not read: the parent may be gone by now\n"
          "def orphaned():\n"
          "    while os.getppid() == parent:\n"
          "        time.sleep(1)\n"
          "    os._exit(0)\n"
          "threading.Thread(target=orphaned, daemon=True).start()\n"
          "from core.warmup import warm_up_umap\n"
          "warm_up_umap()\n")
CHILD_TIMEOUT_S = 900.0


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


def compile_in_child(cache_dir: str | Path | None = None, timeout_s: float = CHILD_TIMEOUT_S) -> float:
    """Run warm_up_umap in a child Python process at nice 19, so numba's on-disk cache is filled
    without this process's GIL or a foreground user's CPU; returns its seconds. The child
    inherits NUMBA_CACHE_DIR (use_cache_dir(cache_dir) first). A failure is logged, not raised:
    the in-process warm-up then compiles everything itself."""
    if cache_dir is not None:
        use_cache_dir(cache_dir)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(os.getpid())], cwd=_ROOT, env=dict(os.environ),
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("UMAP warm-up child process failed (%s); compiling in this process", e)
        return time.perf_counter() - start
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        log.warning("UMAP warm-up child exited with %d: %s", done.returncode, done.stderr[-2000:])
    else:
        log.info("numba cache filled by a low-priority child process in %.1f s", seconds)
    return seconds


def _cache_filled(cache_dir: str | Path | None) -> bool:
    """True when numba's cache folder already holds compiled code (an earlier start filled it):
    no child is needed then, the in-process warm-up loads it."""
    folder = os.environ.get("NUMBA_CACHE_DIR") or (str(cache_dir) if cache_dir is not None else "")
    return bool(folder) and Path(folder).expanduser().is_dir() and any(Path(folder).expanduser().rglob("*.nbi"))


def start_warm_up(cache_dir: str | Path | None = None, *, child: bool = True) -> threading.Thread:
    """The warm-up in a daemon thread (started): compile_in_child (when child; with a filled
    numba cache it only loads it), then warm_up_umap here; errors are logged, never raised.

    Once per process: a later call (the pages call it too, after ui.serve did) returns the
    thread already started instead of starting another that would only wait for it.
    """
    global _thread

    def run() -> None:
        try:
            if child and not _done and not _cache_filled(cache_dir):
                compile_in_child(cache_dir)
            warm_up_umap(cache_dir)
        except Exception:  # a failed warm-up only costs speed later; the real fit reports errors
            log.exception("UMAP warm-up failed")

    with _START_LOCK:
        if _thread is None:
            _thread = threading.Thread(target=run, name="umap-warm-up", daemon=True)
            _thread.start()
        return _thread
