"""The home page's summaries (datasets, spaces, top labels) and the "Load demo" action."""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from core.config import Settings
from core.pipeline.rejects import IngestReport
from core.store.base import VectorStore
from core.types import DatasetInfo, SpaceInfo
from ui import resources
from ui.widgets.progress import ProgressBar

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


def load_demo_with_progress(store: VectorStore, settings: Settings) -> list[IngestReport]:
    """Run core.demo.load_demo with a progress bar; CoreError propagates (show_errors shows it)."""
    from core.demo import load_demo

    # settings.demo_pretrained (EMBEDSCOPE_DEMO_PRETRAINED=0: skip the pretrained-model spaces).
    with_pretrained = settings.demo_pretrained
    with st.status("Loading the demo project…", expanded=True) as status:
        bar = ProgressBar("Loading demo")
        reports = list(load_demo(store, settings, bar, with_pretrained=with_pretrained))
        bar.finish("Demo loaded")
        status.update(label="Demo loaded", state="complete")
    log.info("demo loaded (pretrained=%s): %d reports", with_pretrained, len(reports))
    return reports
