"""A fast first run of the demo: the cheap spaces and the first map now, the pretrained space in the background.

load_demo_quick stores the "demo-mlp" and "pixels" spaces (seconds), fits and persists the UMAP
map the Explore page opens on (core.projection picks its numba-free engine while umap-learn is
still compiling), then starts a DemoJob: a daemon thread at the lowest CPU priority that embeds
the digits with EfficientNet-Lite0 into the "efficientnet-lite0" space, with progress and an
ETA the home page shows. On Linux the nice value is per thread, and the threads it starts (the
image-preparation pool, torch's OpenMP team) inherit it, so the embedding never starves the
first map or a user's clicks; it only takes idle CPU.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from core.auth import system_actor  # the demo is an internal job: its callers check the user may ingest
from core.config import Settings
from core.demo import (
    DEMO_PROJECT,
    MLP_SPACE,
    ingest_own_spaces,
    ingest_pretrained,
    prepare_demo,
    pretrained_available,
)
from core.demo_model import DemoData
from core.embedders.base import Embedder
from core.pipeline.rejects import IngestReport
from core.store.base import VectorStore
from core.types import Item, Progress

log = logging.getLogger(__name__)

BACKGROUND_NICE = 19  # the lowest priority: the background space uses only idle CPU
PRETRAINED_SPACE = "efficientnet-lite0"


@dataclass
class DemoJob:
    """The demo's pretrained space being embedded in a background thread.

    done / total: images stored so far; phase: what it is doing, in words; error: set when it
    failed (the thread has nobody to raise to); finished: set at the end, either way.
    """

    total: int
    space: str = PRETRAINED_SPACE
    done: int = 0
    phase: str = "loading the model…"
    error: BaseException | None = None
    reports: list[IngestReport] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    first_stored: float | None = None  # when the first batch was stored (the model was loaded)
    first_done: int = 0  # images stored by then
    ended: float | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    @property
    def elapsed_s(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    def eta_s(self) -> float | None:
        """Seconds left at the rate since the first batch was stored; None before the second / after."""
        if not self.running or self.first_stored is None or self.done <= self.first_done:
            return None
        rate = (self.done - self.first_done) / max(time.monotonic() - self.first_stored, 1e-3)
        return (self.total - self.done) / rate

    def update(self, done: int, total: int) -> None:
        """The ingest's progress(done, total) callback."""
        if done > 0 and self.first_stored is None:
            # The model is loaded and one batch is stored: the rate counts batches from here.
            self.first_stored, self.first_done = time.monotonic(), int(done)
        self.done, self.total = int(done), int(total)
        self.phase = "embedding the images…"


@dataclass(frozen=True)
class DemoStart:
    """What load_demo_quick did: reports of the spaces stored now, the first map's seconds, the
    background job (None when the pretrained space is off or its weights are not installed)."""

    reports: list[IngestReport]
    map_seconds: float
    job: DemoJob | None


_JOBS: dict[str, DemoJob] = {}  # the latest job per store, by store.describe(); one per process
_JOBS_LOCK = threading.Lock()


def demo_job(store: VectorStore) -> DemoJob | None:
    """The latest background job of this store in this process (running or finished), if any."""
    with _JOBS_LOCK:
        return _JOBS.get(store.describe())


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Give the calling thread (and the threads it starts) nice `nice`; Linux only, where the
    nice value is per thread (elsewhere it would slow the whole server: left alone)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as e:  # not fatal: the job just competes at normal priority
        log.info("could not lower the background thread's priority: %s", e)


def start_pretrained(store: VectorStore, settings: Settings, data: DemoData, items: list[Item], *,
                     embedder: Callable[[], Embedder] | None = None) -> DemoJob:
    """Embed the demo's images into the pretrained space in a low-priority daemon thread.
    A job of this store still running is returned instead of starting a second."""
    return start_job(store, len(items), lambda update: ingest_pretrained(
        store, settings, data, items, update, embedder=embedder), what="demo", project=DEMO_PROJECT)


def start_job(store: VectorStore, total: int, work: Callable[[Progress], list[IngestReport]], *,
              what: str, project: str | None = None, jobs: dict[str, DemoJob] | None = None,
              lock: threading.Lock | None = None) -> DemoJob:
    """Run work(job.update) in a low-priority daemon thread (`what` names the demo in the log and the
    job list); a job of this store still running is returned instead of starting a second. The thread
    is a job of the process's registry (core.jobs, its own thread: it must not hold a worker for
    minutes), so every user's job list shows it with its progress and ETA; it cannot be cancelled.
    jobs / lock: the registry of such jobs (default this module's; the detection demo keeps its own,
    so both demos' jobs can run side by side)."""
    from core.jobs import jobs as job_registry

    jobs = _JOBS if jobs is None else jobs
    with _JOBS_LOCK if lock is None else lock:
        running = jobs.get(store.describe())
        if running is not None and running.running:
            return running
        job = DemoJob(total=total)
        jobs[store.describe()] = job
    # A key of its own: a demo loaded again (after a delete) is a new job, not the one that just ended.
    job_registry().submit(("demo", uuid.uuid4().hex), "demo", f"Load {what}: the {job.space} space ({total:,} images)",
                          system_actor(), lambda progress, _: _run(job, work, what, progress), project=project,
                          store=store.describe(), own_thread=True, cancellable=False)
    return job


def _run(job: DemoJob, work: Callable[[Progress], list[IngestReport]], what: str,
         progress: Callable[..., None]) -> list[IngestReport]:
    """The job's thread: work(update) at the lowest priority, its progress mirrored into the listed job
    from the first stored batch on (the model's loading would skew the ETA's rate), its end into `job`."""
    lower_thread_priority()
    progress(0, 0, job.phase)

    def update(done: int, total: int) -> None:
        job.update(done, total)
        if done > 0:
            progress(done, total, job.phase)

    try:
        job.reports = work(update)
        job.space = job.reports[0].space if job.reports else job.space
        log.info("%s: the %s space was stored in the background in %.0f s", what, job.space, job.elapsed_s)
        return job.reports
    except BaseException as e:  # kept for the page to show (and for the job list)
        log.exception("%s: the background %s space failed", what, job.space)
        job.error = e
        raise
    finally:
        job.ended = time.monotonic()
        job.phase = "failed" if job.error is not None else "done"
        job.finished.set()


def load_demo_quick(store: VectorStore, settings: Settings, progress: Progress | None = None, *,
                    map_progress: Progress | None = None, with_pretrained: bool | None = None,
                    seed: int = 0, embedder: Callable[[], Embedder] | None = None) -> DemoStart:
    """Store the demo's cheap spaces, fit and persist the first map, start the pretrained space.

    progress(done, total): points stored (2 spaces); map_progress(done, 100): the map's fit.
    with_pretrained: None = settings.demo_pretrained; the job starts only when the weights are
    installed (or `embedder` makes the model, as tests do). Returns at once after the map.
    """
    from core.pipeline.maps import get_map
    from core.pipeline.vector_cache import cache_folder

    if with_pretrained is None:
        with_pretrained = settings.demo_pretrained
    data, items = prepare_demo(settings, seed)
    reports = ingest_own_spaces(store, data, items, progress)
    start = time.perf_counter()
    # The Explore page's default view (first space, every dataset, UMAP, no filter): it opens drawn.
    get_map(store, DEMO_PROJECT, MLP_SPACE.name, None, actor=system_actor(), method="umap",
            cache_dir=cache_folder(settings), fit_progress=map_progress)
    map_seconds = time.perf_counter() - start
    job = None
    if with_pretrained and (embedder is not None or pretrained_available()):
        job = start_pretrained(store, settings, data, items, embedder=embedder)
    elif with_pretrained:
        log.info("demo: EfficientNet-Lite0 weights not installed; skipping the pretrained image space")
    log.info("demo: own spaces and the first map ready (map in %.1f s)", map_seconds)
    return DemoStart(reports, map_seconds, job)
