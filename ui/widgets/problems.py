"""The Problems panel: top outliers, likely mislabels, error clusters and duplicate groups as grids.

Also the "Find problems" action (core.pipeline.analyse.run_analysis with a progress bar) and the
lookup of an analysis persisted earlier, so reopening Explore shows it without recomputing.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import streamlit as st

from core import export
from ui import resources
from ui.page import PageContext
from ui.text import md
from ui.widgets.grid import image_grid
from ui.widgets.progress import ProgressBar

log = logging.getLogger(__name__)

TOP = 24
MAX_GROUPS = 8
TABS = ("Outliers", "Likely mislabels", "Error clusters", "Duplicates")


def has_persisted_analysis(ctx: PageContext) -> bool:
    """Whether an analysis of the chosen datasets in the chosen space was stored before (cheap:
    lists document keys only)."""
    from core.pipeline.analyse import DOC_KIND
    from core.pipeline.analysis_io import doc_key

    assert ctx.project is not None and ctx.space is not None
    key = doc_key(ctx.space, *sorted(set(ctx.datasets)))
    return key in ctx.store.list_documents(ctx.project, DOC_KIND)


def current_analysis(ctx: PageContext) -> Any | None:
    """The AnalysisResult of the sidebar's selection when one was computed (reused, cached per
    data fingerprint), else None. CoreError propagates (the page shows it)."""
    if not ctx.ready or not ctx.datasets or not has_persisted_analysis(ctx):
        return None
    assert ctx.project is not None and ctx.space is not None
    return resources.cached_analysis(ctx.project, ctx.space, ctx.datasets)


def run_find_problems(ctx: PageContext, params: dict[str, Any] | None = None) -> Any:
    """Run (or reuse) the analysis with a progress bar; returns the AnalysisResult.

    params: overrides of core.pipeline.analyse.DEFAULT_PARAMS (None: the defaults)."""
    from core.pipeline.analyse import run_analysis
    from core.pipeline.vector_cache import cache_folder

    assert ctx.project is not None and ctx.space is not None
    with st.status("Finding problems: outliers, mislabels, clusters, duplicates…",
                   expanded=True) as status:
        with ProgressBar("Analysing", container=status) as bar:
            result = run_analysis(ctx.store, ctx.project, ctx.space, ctx.datasets,
                                  params=params, progress=bar, cache_dir=cache_folder(ctx.settings))
        status.update(label=f"Problems found in {len(result.scores):,} items", state="complete",
                      expanded=False)
    return result


def ranked(scores: pd.DataFrame, column: str, top: int = TOP) -> pd.DataFrame:
    """The `top` rows with the highest `column` (NaN dropped), with that value as "score"."""
    if column not in scores.columns:
        return scores.iloc[:0]
    values = pd.to_numeric(scores[column], errors="coerce")
    order = values.dropna().sort_values(ascending=False, kind="stable").index[:top]
    out = scores.loc[order].copy()
    out["score"] = values.loc[order].astype(float)
    return out


def _csv(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> bytes:
    return export.to_csv(export.export_frame(frame, extra=extra))


def _summary(analysis: Any) -> None:
    s = analysis.summary or {}
    cols = st.columns(5)
    cols[0].metric("Items", f"{s.get('items', len(analysis.scores)):,}")
    rate = s.get("error_rate")
    cols[1].metric("Model error rate", "–" if rate is None else f"{rate:.1%}")
    cols[2].metric("Clusters", s.get("clusters", len(analysis.clusters)))
    cols[3].metric("Duplicate groups", s.get("duplicate_groups", len(analysis.duplicates)))
    cols[4].metric("Leaking items", s.get("leakage_items", 0),
                   help="Items whose near-duplicates sit in another dataset or split")


def _ranked_tab(scores: pd.DataFrame, column: str, key: str, fields: tuple[str, ...],
                extra: tuple[str, ...], top: int) -> list[str] | None:
    rows = ranked(scores, column, top=top)  # the whole ranking only for a download (1M rows: seconds)
    if rows.empty:
        st.caption(f"No {column} scores (they need labels)" if column == "mislabel"
                   else "Nothing found.")
        return None
    total = int(pd.to_numeric(scores[column], errors="coerce").notna().sum())
    left, right = st.columns(2)
    right.download_button(f"Download all {total:,} as CSV",
                          lambda: _csv(ranked(scores, column, top=len(scores)), extra),
                          file_name=f"{column}.csv", mime="text/csv", key=f"{key}.csv",
                          icon="⬇️", width="stretch")
    if left.button(f"Select top {min(top, total)} on map", key=f"{key}.all", width="stretch"):
        return rows.index[:top].astype(str).tolist()
    clicked = image_grid(rows.head(top), key=f"{key}.grid", columns=6, fields=fields,
                         max_items=top)
    return [clicked] if clicked is not None else None


def _error_clusters_tab(table: pd.DataFrame | None, scores: pd.DataFrame,
                        key: str) -> list[str] | None:
    if table is None or table.empty:
        st.caption("No cluster concentrates model errors (or there are no predictions).")
        return None
    st.download_button("Download the error clusters as CSV", export.to_csv(table),
                       file_name="error_clusters.csv", mime="text/csv", key=f"{key}.csv",
                       icon="⬇️")
    for _, row in table.head(MAX_GROUPS).iterrows():
        cluster = int(row["cluster"])
        members = scores[scores["cluster"] == cluster]
        wrong = members[members["is_error"].fillna(False).astype(bool)]
        head, button = st.columns([4, 1], vertical_alignment="center")
        head.markdown(f"**Cluster {cluster}** · {int(row['errors'])} errors of "
                      f"{int(row['predicted'])} ({float(row['error_rate']):.0%}, "
                      f"{float(row['lift']):.1f}× the average) · top confusion "
                      f"{md(row.get('top_confusion') or '–')}")
        if button.button("Select cluster", key=f"{key}.sel.{cluster}", width="stretch"):
            return members.index.astype(str).tolist()
        clicked = image_grid(wrong, key=f"{key}.grid.{cluster}", columns=8,
                             fields=("label", "prediction"), max_items=8)
        if clicked is not None:
            return [clicked]
    return None


def _duplicates_tab(table: pd.DataFrame | None, scores: pd.DataFrame,
                    key: str) -> list[str] | None:
    if table is None or table.empty:
        st.caption("No near-duplicates at this similarity threshold.")
        return None
    members = scores[scores["duplicate_group"] >= 0]
    st.download_button(f"Download all {len(members):,} duplicates as CSV",
                       lambda: _csv(members, ("duplicate_group", "leakage")), file_name="duplicates.csv",
                       mime="text/csv", key=f"{key}.csv", icon="⬇️")
    ordered = table.sort_values(["leakage", "size"], ascending=False, kind="stable")
    for _, row in ordered.head(MAX_GROUPS).iterrows():
        ids = [i for i in row["ids"] if i in scores.index]
        head, button = st.columns([4, 1], vertical_alignment="center")
        leak = " · ⚠️ leakage across datasets/splits" if row["leakage"] else ""
        head.markdown(f"**Group {int(row['group'])}** · {int(row['size'])} items · "
                      f"{', '.join(md(d) for d in row['datasets'])}{leak}")
        if button.button("Select group", key=f"{key}.sel.{int(row['group'])}", width="stretch"):
            return ids
        clicked = image_grid(scores.loc[ids], key=f"{key}.grid.{int(row['group'])}", columns=8,
                             fields=("dataset", "label"), max_items=8)
        if clicked is not None:
            return [clicked]
    return None


def problems_panel(analysis: Any, *, key: str = "problems", top: int = TOP) -> list[str] | None:
    """Render the analysis as tabs of image grids with scores and CSV downloads.

    analysis: a core.pipeline.analyse.AnalysisResult (Explore passes ui.resources.analysis_on_map's:
    only the points on the map). Returns the ids the user chose to select (one clicked image,
    a whole cluster / group, or the top of a list), or None.
    """
    scores = analysis.scores
    _summary(analysis)
    picked: list[str] | None = None
    tabs = st.tabs(list(TABS))
    with tabs[0]:
        picked = _ranked_tab(scores, "outlier", f"{key}.outlier", ("label", "dataset", "score"),
                             ("outlier",), top) or picked
    with tabs[1]:
        picked = _ranked_tab(scores, "mislabel", f"{key}.mislabel",
                             ("label", "suggested_label", "score"),
                             ("mislabel", "suggested_label"), top) or picked
    with tabs[2]:
        picked = _error_clusters_tab(analysis.error_clusters, scores, f"{key}.errors") or picked
    with tabs[3]:
        picked = _duplicates_tab(analysis.duplicates, scores, f"{key}.dups") or picked
    return picked
