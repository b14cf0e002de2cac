"""The home page's "Load detection demo" action and the progress of its background space."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import streamlit as st

from core.config import Settings
from core.store.base import VectorStore
from ui.text import md
from ui.widgets.progress import ProgressBar, eta_text

if TYPE_CHECKING:
    from core.demo_detection_job import DetectionDemoStart
    from core.demo_job import DemoJob

log = logging.getLogger(__name__)

BUTTON_HELP = ("Scenes of handwritten digits placed on real photos, with COCO labels (planted errors: wrong "
               "class, missing and loose boxes) and simulated predictions: one point per image and per box.")


def load_detection_demo_with_progress(store: VectorStore, settings: Settings) -> DetectionDemoStart:
    """Load the detection demo (core.demo_detection_job.load_detection_demo_quick) with a progress
    bar for its pixels space; the pretrained space continues in the background
    (detection_job_status shows it). CoreError propagates (show_errors shows it)."""
    from core.auth import Permission, require
    from core.demo_detection import DETECTION_PROJECT
    from core.demo_detection_job import load_detection_demo_quick
    from ui import jobs_view
    from ui.actor import current_actor

    # The demo writes as the system actor (an internal job): the user who starts it must be allowed to ingest.
    actor = current_actor()
    require(actor, Permission.INGEST, "loading the detection demo")
    # Listed for everyone while this run does it (the pretrained space then is a job of its own).
    listed = jobs_view.registry().running_here("demo", "Load detection demo: the pixels space", actor,
                                               project=DETECTION_PROJECT, store=store.describe())
    with listed as job, st.status("Loading the detection demo…", expanded=True) as status:
        status.write("Composing the scenes and writing the COCO files…")
        bar = ProgressBar("Storing the images and boxes (pixels space)", container=status)
        started = load_detection_demo_quick(store, settings, jobs_view.mirrored(job, "storing the pixels space", bar),
                                            with_pretrained=settings.demo_pretrained)
        bar.finish("Images and boxes stored")
        status.update(label="Detection demo loaded", state="complete")
    log.info("detection demo loaded: background job: %s", started.job is not None)
    return started


def job_text(job: DemoJob) -> str:
    """One line on the background space: images done, ETA or phase."""
    eta = job.eta_s()
    where = eta_text(eta) if eta is not None else job.phase
    return (f"Computing the detection demo's EfficientNet-Lite0 space (images and their boxes) in the "
            f"background: {job.done:,} / {job.total:,} images · {where}")


@st.fragment(run_every=2.0)
def _job_progress(store: VectorStore) -> None:
    """Redrawn every 2 s while the job runs; one rerun of the whole page when it has finished."""
    from core.demo_detection_job import detection_job

    job = detection_job(store)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    st.progress(min(1.0, job.done / job.total) if job.total else 0.0, text=job_text(job))


def detection_job_status(store: VectorStore) -> bool:
    """The detection demo's background space on the home page: live progress while it runs, then a
    one-line result (or the error). False when this process started none."""
    from core.demo_detection_job import detection_job

    job = detection_job(store)
    if job is None:
        return False
    if job.running:
        _job_progress(store)
    elif job.error is not None:
        st.error(f"The detection demo's EfficientNet-Lite0 space could not be computed: "
                 f"{md(str(job.error), limit=300)}", icon=":material/error:")
    else:
        st.success(f"The detection demo's EfficientNet-Lite0 space is ready: {job.done:,} images and their "
                   f"boxes in {job.elapsed_s:.0f} s.", icon=":material/check_circle:")
    return True
