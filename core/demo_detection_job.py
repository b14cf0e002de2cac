"""The detection demo from the home page: the "pixels" space now, the pretrained space of the crops in the background.

The pixels space needs no model (seconds); embedding ~2,000 crops and images with
EfficientNet-Lite0 takes minutes on 2 CPU cores, so, as core.demo_job does for the
classification demo, it runs in a daemon thread at the lowest CPU priority, its progress kept
in a core.demo_job.DemoJob the home page polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from core.config import Settings
from core.demo import pretrained_available, pretrained_embedder
from core.demo_detection import DETECTION_PROJECT, ingest_detection_space, prepare_detection_demo
from core.demo_job import DemoJob, start_job
from core.embedders.base import Embedder
from core.embedders.pixels import PixelEmbedder
from core.pipeline.rejects import IngestReport
from core.store.base import VectorStore
from core.types import Progress

log = logging.getLogger(__name__)

_JOBS: dict[str, DemoJob] = {}  # the latest job per store, by store.describe(); one per process
_JOBS_LOCK = threading.Lock()


@dataclass(frozen=True)
class DetectionDemoStart:
    """What load_detection_demo_quick did: the pixels space's report, and the background job
    (None when the pretrained space is off or its weights are not installed)."""

    reports: list[IngestReport]
    job: DemoJob | None


def detection_job(store: VectorStore) -> DemoJob | None:
    """The latest background job of this store in this process (running or finished), if any."""
    with _JOBS_LOCK:
        return _JOBS.get(store.describe())


def load_detection_demo_quick(store: VectorStore, settings: Settings, progress: Progress | None = None, *,
                              with_pretrained: bool | None = None, n_scenes: int | None = None, seed: int = 0,
                              embedder: Callable[[], Embedder] | None = None) -> DetectionDemoStart:
    """Store the demo's "pixels" space now (progress(done, images)) and start the pretrained space
    in the background when with_pretrained (None: settings.demo_pretrained) and the weights are
    installed (or `embedder` makes the model, as tests do). Returns once the pixels space is stored."""
    if with_pretrained is None:
        with_pretrained = settings.demo_pretrained
    det = prepare_detection_demo(settings, n_scenes, seed)
    reports = [ingest_detection_space(store, settings, det, PixelEmbedder(), progress)]
    job = None
    if with_pretrained and (embedder is not None or pretrained_available()):
        make = embedder or (lambda: pretrained_embedder(settings))
        job = start_job(store, len(det.images), lambda update: [
            ingest_detection_space(store, settings, det, make(), update)],
            what="detection demo", project=DETECTION_PROJECT, jobs=_JOBS, lock=_JOBS_LOCK)
    elif with_pretrained:
        log.info("detection demo: EfficientNet-Lite0 weights not installed; only the pixels space")
    return DetectionDemoStart(reports, job)
