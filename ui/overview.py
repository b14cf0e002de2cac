"""The home page's summaries (datasets, spaces, top labels) and the "Load demo" action."""

from __future__ import annotations

import inspect
import logging
import os

import pandas as pd
import streamlit as st

from core.config import Settings
from core.store.base import VectorStore
from core.types import DatasetInfo, SpaceInfo
from ui import resources
from ui.widgets.progress import ProgressBar

log = logging.getLogger(__name__)

# "0" makes "Load demo" skip the pretrained-model spaces (fast; browser tests and CI use it).
DEMO_PRETRAINED_ENV = "EMBEDSCOPE_DEMO_PRETRAINED"


def demo_with_pretrained() -> bool:
    """Whether "Load demo" also embeds with the offline pretrained models (default yes)."""
    return os.environ.get(DEMO_PRETRAINED_ENV, "1").strip().lower() not in ("0", "false", "no")


def datasets_table(infos: list[DatasetInfo], spaces: list[SpaceInfo]) -> pd.DataFrame:
    """One row per dataset, one column of point counts per embedding space."""
    rows = [{"dataset": d.name, **{s.name: d.counts.get(s.name, 0) for s in spaces}}
            for d in infos]
    return pd.DataFrame(rows).set_index("dataset") if rows else pd.DataFrame()


def spaces_table(spaces: list[SpaceInfo]) -> pd.DataFrame:
    """One row per embedding space: model, dim, modality, whether text search works."""
    return pd.DataFrame([{
        "space": s.name, "model": s.model or "(uploaded vectors)", "layer": s.layer or "",
        "dim": s.dim, "modality": s.modality, "text search": s.text_side,
    } for s in spaces])


def top_labels(project: str, space: str, datasets: list[str], n: int = 12) -> pd.DataFrame:
    """The n most frequent labels with their count per dataset (plus "(unlabeled)")."""
    df = resources.cached_payloads(project, space, datasets, fields=("dataset", "label"))
    if df.empty or "label" not in df.columns:
        return pd.DataFrame()
    labels = df["label"].fillna("(unlabeled)")
    table = pd.crosstab(labels, df["dataset"])
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False).head(n)


def load_demo_with_progress(store: VectorStore, settings: Settings) -> list[object]:
    """Run core.demo.load_demo with a progress bar; CoreError propagates (show_errors shows it)."""
    from core.demo import load_demo

    with_pretrained = demo_with_pretrained()
    with st.status("Loading the demo project…", expanded=True) as status:
        bar = ProgressBar("Loading demo")
        kwargs: dict[str, object] = {"progress": bar}
        if "with_pretrained" in inspect.signature(load_demo).parameters:
            kwargs["with_pretrained"] = with_pretrained
        reports = list(load_demo(store, settings, **kwargs))
        bar.finish("Demo loaded")
        status.update(label="Demo loaded", state="complete")
    resources.invalidate_data()
    log.info("demo loaded (pretrained=%s): %d reports", with_pretrained, len(reports))
    return reports
