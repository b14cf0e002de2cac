"""The home page's summaries (datasets, spaces, top labels) and the "Load demo" action."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core.config import Settings
from core.store.base import VectorStore
from core.types import DatasetInfo, SpaceInfo
from ui import resources
from ui.text import md
from ui.widgets.progress import ProgressBar, eta_text

if TYPE_CHECKING:
    from core.demo_job import DemoJob, DemoStart

log = logging.getLogger(__name__)

def datasets_table(infos: list[DatasetInfo], spaces: list[SpaceInfo]) -> pd.DataFrame:
    """One row per dataset, one column of point counts per embedding space."""
    rows = [{"dataset": d.name, **{s.name: d.counts.get(s.name, 0) for s in spaces}}
            for d in infos]
    return pd.DataFrame(rows).set_index("dataset") if rows else pd.DataFrame()


def spaces_table(spaces: list[SpaceInfo], index: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per embedding space: model, dim, modality, whether text search works, and the
    state of its search index when `index` (index_states) is given."""
    return pd.DataFrame([{
        "space": s.name, "model": s.model or "(uploaded vectors)", "layer": s.layer or "",
        "dim": s.dim, "modality": s.modality, "text search": s.text_side,
        **({"search index": index.get(s.name, "")} if index is not None else {}),
    } for s in spaces])


def index_state(store: VectorStore, project: str, space: str) -> str:
    """A space's search index in words: building (this process), built, or not (exact search)."""
    from core.pipeline.indexing import INDEX_THRESHOLD, index_build

    build = index_build(store, project, space)
    if build is not None and build.running:
        return f"building… {build.elapsed_s:.0f} s (search works meanwhile, exact)"
    indexed, total = store.index_status(project, space)
    if total and indexed >= total:
        return "built"
    if total <= INDEX_THRESHOLD:
        return "not needed (small: exact search)"
    return f"not built: exact search ({indexed:,} of {total:,} points indexed)"


def index_states(store: VectorStore, project: str, spaces: list[SpaceInfo]) -> dict[str, str]:
    """index_state of every space of a project."""
    return {s.name: index_state(store, project, s.name) for s in spaces}


def top_labels(project: str, space: str, datasets: list[str], n: int = 12) -> pd.DataFrame:
    """The n most frequent labels with their count per dataset (plus "(unlabeled)")."""
    df = resources.cached_payloads(project, space, datasets, fields=("dataset", "label"))
    if df.empty or "label" not in df.columns:
        return pd.DataFrame()
    labels = df["label"].fillna("(unlabeled)")
    table = pd.crosstab(labels, df["dataset"])
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False).head(n)


def load_demo_with_progress(store: VectorStore, settings: Settings) -> DemoStart:
    """Load the demo the fast way (core.demo_job.load_demo_quick) with a progress bar for its
    points and one for its first map (both with an ETA); the pretrained space continues in the
    background (demo_job_status shows it). CoreError propagates (show_errors shows it)."""
    from core.auth import Permission, require
    from core.demo import DEMO_PROJECT
    from core.demo_job import load_demo_quick
    from ui import jobs_view
    from ui.actor import current_actor

    # The demo writes as the system actor (an internal job): the user who starts it must be allowed to ingest.
    actor = current_actor()
    require(actor, Permission.INGEST, "loading the demo project")
    # Listed for everyone while this run does it (the pretrained space then is a job of its own).
    listed = jobs_view.registry().running_here("demo", "Load demo: the own-model and pixel spaces, the first map",
                                               actor, project=DEMO_PROJECT, store=store.describe())
    # settings.demo_pretrained (EMBEDSCOPE_DEMO_PRETRAINED=0: skip the pretrained-model space).
    with listed as job, st.status("Loading the demo project…", expanded=True) as status:
        bar = ProgressBar("Storing the own-model and pixel spaces", container=status)
        map_bar = ProgressBar("Computing the first UMAP map (%)", container=status)
        started = load_demo_quick(store, settings, jobs_view.mirrored(job, "storing the spaces", bar),
                                  map_progress=jobs_view.mirrored(job, "computing the first UMAP map (%)", map_bar),
                                  with_pretrained=settings.demo_pretrained)
        bar.finish("Spaces stored")
        map_bar.finish(f"First map ready in {started.map_seconds:.0f} s")
        status.update(label="Demo loaded", state="complete")
    log.info("demo loaded: %d reports, background job: %s", len(started.reports), started.job is not None)
    return started


def job_text(job: DemoJob) -> str:
    """One line on the background space: images done, ETA or phase."""
    eta = job.eta_s()
    where = eta_text(eta) if eta is not None else job.phase
    return (f"Computing the EfficientNet-Lite0 space in the background: {job.done:,} / {job.total:,} "
            f"images · {where}")


@st.fragment(run_every=2.0)
def _job_progress(store: VectorStore) -> None:
    """Redrawn every 2 s while the job runs; one rerun of the whole page when it has finished
    (the new space then shows in the tables and the sidebar)."""
    from core.demo_job import demo_job

    job = demo_job(store)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    st.progress(min(1.0, job.done / job.total) if job.total else 0.0, text=job_text(job))
    st.caption("Every page works meanwhile (the map, search and problems use the other spaces); "
               "the new space appears in the sidebar when it is done.")


def demo_job_status(store: VectorStore) -> bool:
    """The demo's background space on the home page: live progress with an ETA while it runs,
    then a one-line result (or the error). False when this process started none."""
    from core.demo_job import demo_job

    job = demo_job(store)
    if job is None:
        return False
    if job.running:
        _job_progress(store)
    elif job.error is not None:
        st.error(f"The EfficientNet-Lite0 space could not be computed: {md(str(job.error), limit=300)}",
                 icon=":material/error:")
    else:
        st.success(f"The EfficientNet-Lite0 space is ready: {job.done:,} images in {job.elapsed_s:.0f} s.",
                   icon=":material/check_circle:")
    return True
