"""When and how to build a space's HNSW index: after large ingests, in the foreground or a background thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.store.base import VectorStore

log = logging.getLogger(__name__)

# Below this many points an exact scan answers in a few ms (Edge: ~6 ms at 10k × 512-d,
# benchmarks/search.py), so building HNSW would cost minutes for nothing.
INDEX_THRESHOLD = 20_000
TICK_S = 10.0  # how often a foreground build reports its elapsed time

Tick = Callable[[float], None]  # elapsed seconds of a running build


def needs_index(store: VectorStore, project: str, space: str, threshold: int | None = None) -> bool:
    """True when the space holds more than `threshold` points (None: INDEX_THRESHOLD, read now)."""
    threshold = INDEX_THRESHOLD if threshold is None else threshold
    count = store.count(project, space)
    if count <= threshold:
        log.debug("index not needed for %s/%s: %d points", project, space, count)
        return False
    return True


def build_index_if_large(store: VectorStore, project: str, space: str, threshold: int | None = None,
                         *, tick: Tick | None = None, tick_s: float = TICK_S) -> bool:
    """Build the approximate index of a space holding more than `threshold` points, in this thread.

    Slow (minutes at 1M points on 2 cores): the CLI runs it after an ingest; the dashboard uses
    start_index_build. Always store.build_index (Edge: in a child process on a copy, since its
    optimize holds the GIL and the store's lease for minutes, locking a dashboard out), and, with
    tick, tick(elapsed_s) every tick_s (Edge reports no fraction done). Returns True when it ran (and,
    on Edge, was swapped in); the store's errors propagate.
    Do not call it inside store.hold(): the build needs the lease from another thread.
    """
    if not needs_index(store, project, space, threshold):
        return False
    log.info("building the search index of %s/%s; this can take minutes", project, space)
    build = _start(store, project, space)
    while not build.done.wait(tick_s):
        if tick is not None:
            tick(build.elapsed_s)
    if build.error is not None:
        raise build.error
    return not build.discarded


@dataclass
class IndexBuild:
    """A background index build of one space: running until `done` is set; error if it failed."""

    project: str
    space: str
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    discarded: bool = False  # the space changed during the build: not indexed, build again

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started


# Builds of this process, keyed by (store identity, project, space): the dashboard's reruns find
# the running one instead of starting a second (two optimizes of one shard would only queue).
_BUILDS: dict[tuple[int, str, str], IndexBuild] = {}
_BUILDS_LOCK = threading.Lock()


def _start(store: VectorStore, project: str, space: str) -> IndexBuild:
    key = (id(store), project, space)
    with _BUILDS_LOCK:
        running = _BUILDS.get(key)
        if running is not None and running.running:
            return running
        build = _BUILDS[key] = IndexBuild(project, space)

    def work() -> None:
        try:
            build.discarded = not store.build_index(project, space)
            log.info("search index of %s/%s built in %.0f s", project, space, build.elapsed_s)
        except BaseException as e:  # kept for the caller to show; a thread has nobody to raise to
            log.exception("building the search index of %s/%s failed", project, space)
            build.error = e
        finally:
            build.finished = time.monotonic()
            build.done.set()

    threading.Thread(target=work, name=f"embedscope-index-{project}-{space}", daemon=True).start()
    return build


def start_index_build(store: VectorStore, project: str, space: str,
                      threshold: int | None = None) -> IndexBuild | None:
    """Build the space's index in the background when it holds more than `threshold` points (None
    when not needed) with store.build_index: Edge optimizes a copy in a child process (its optimize
    holds the GIL), so this process keeps answering searches (exact) meanwhile.
    A build of the same space already running is returned instead of starting another."""
    if not needs_index(store, project, space, threshold):
        return None
    return _start(store, project, space)


def index_build(store: VectorStore, project: str, space: str) -> IndexBuild | None:
    """The latest background build of a space in this process (running or finished), if any."""
    with _BUILDS_LOCK:
        return _BUILDS.get((id(store), project, space))
