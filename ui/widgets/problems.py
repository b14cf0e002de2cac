"""The Problems panel: likely outliers and mislabels (past the data's own cut-offs, the full ranking on
request), error clusters and duplicate groups as grids.

Also the "Find problems" action (core.pipeline.analyse.run_analysis as a background job, core.jobs) and the
lookup of an analysis persisted earlier, so reopening Explore shows it without recomputing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core import export
from core.analysis.outliers import OUTLIER_LOCAL_Z, OUTLIER_MIN_RATIO, OUTLIER_Z
from ui import resources
from ui.page import PageContext
from ui.text import md
from ui.widgets.curation import curation_actions, finding_actions
from ui.widgets.grid import image_grid, paged_grid

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
    return key in resources.document_keys(ctx.project, DOC_KIND)


def current_analysis(ctx: PageContext) -> Any | None:
    """The AnalysisResult of the sidebar's selection when one was computed (reused, cached per
    data fingerprint), else None. CoreError propagates (the page shows it)."""
    if not ctx.ready or not ctx.datasets or not has_persisted_analysis(ctx):
        return None
    assert ctx.project is not None and ctx.space is not None
    return resources.cached_analysis(ctx.project, ctx.space, ctx.datasets)


ANALYSIS_JOB = "problems.analysis"  # the key under which a page follows its analysis job (ui.jobs_view)
ANALYSIS_LABEL = "Finding problems: outliers, mislabels, clusters, duplicates"


def start_find_problems(ctx: PageContext, params: dict[str, Any] | None = None) -> None:
    """Start the analysis (or join the one running for the same data) as a background job that this
    session follows; follow_find_problems draws it. params: overrides of DEFAULT_PARAMS."""
    from core.jobs.work import analysis
    from core.pipeline.vector_cache import cache_folder
    from ui import jobs_view
    from ui.actor import current_actor

    assert ctx.project is not None and ctx.space is not None
    jobs_view.start(ANALYSIS_JOB, analysis(ctx.store, ctx.project, ctx.space, ctx.datasets, actor=current_actor(),
                                           params=params, cache_dir=cache_folder(ctx.settings)))


def follow_find_problems(container: Any = None) -> Any:
    """The AnalysisResult of the job this session follows once it has finished (persisted: the page's
    current_analysis reads it too), else None (its progress drawn while it runs; the page reruns at its end)."""
    from ui import jobs_view

    job = jobs_view.track(ANALYSIS_JOB, ANALYSIS_LABEL, container=container)
    return job.result if job is not None else None


def run_find_problems(ctx: PageContext, params: dict[str, Any] | None = None, container: Any = None) -> Any:
    """Run (or reuse) the analysis as a background job: the AnalysisResult when it finished within
    settings.job_wait_s, else None while it runs (its progress shown, the page reruns when it ends)."""
    start_find_problems(ctx, params)
    return follow_find_problems(container)


def ranked(scores: pd.DataFrame, column: str, top: int = TOP) -> pd.DataFrame:
    """The `top` rows with the highest `column` (NaN dropped), with that value as "score"."""
    if column not in scores.columns:
        return scores.iloc[:0]
    values = pd.to_numeric(scores[column], errors="coerce")
    order = values.dropna().sort_values(ascending=False, kind="stable").index[:top]
    out = scores.loc[order].copy()
    out["score"] = values.loc[order].astype(float)
    return out


def flagged(scores: pd.DataFrame, column: str, flag: str) -> pd.DataFrame | None:
    """The rows whose `flag` column (likely_outlier / likely_mislabel) is set, highest `column`
    first, with that value as "score"; None when the analysis has no such column."""
    if flag not in scores.columns or column not in scores.columns:
        return None
    return ranked(scores[scores[flag].fillna(False).astype(bool)], column, top=len(scores))


@dataclass(frozen=True)
class Finder:
    """What one ranked tab shows: the score, its likely_* flag, the words around them."""

    column: str  # the score column, higher = more likely a problem
    flag: str  # its boolean likely_* column (the data's own cut-off)
    noun: str  # "likely outlier"; an "s" is added for counts other than 1
    precision: str  # the summary key of the estimated precision of the flagged items
    fields: tuple[str, ...]  # grid captions
    extra: tuple[str, ...]  # CSV columns after the export columns
    rule: str  # one line: how the cut-off is drawn
    empty: str  # why nothing passed the cut-off, in plain words
    unsure: str  # what a low estimated precision means and what to do about it


OUTLIER_HELP = {
    "blend": "Outlier score: how far an item sits from its nearest neighbours, compared with the typical item "
             "and with its neighbours' own distances (about 1 = typical, 2 = about twice as far).",
    "knn": "Outlier score: mean cosine distance to the nearest neighbours (0 = identical neighbours, "
           "higher = more isolated).",
    "lof": "Outlier score: distance to the nearest neighbours over theirs to their own (about 1 = as close as "
           "its neighbourhood, higher = sparser than its surroundings).",
}
MISLABEL_HELP = ("Mislabel score: 1 − the probability that the given label is right, estimated from the item's "
                 "nearest neighbours, a classifier trained without it and the model's prediction (each weighted "
                 "by how well it predicts this data's labels): 0 = they all agree with the label, 1 = none "
                 "supports it.")
# Under this estimated precision the list carries a warning: most of it is likely not a real problem.
LOW_PRECISION = 0.5
OUTLIERS = Finder(
    "outlier", "likely_outlier", "likely outlier", "outlier_precision", ("label", "dataset", "score"),
    ("outlier", "likely_outlier"),
    f"Flagged when the score stands far above this space's typical scores ({OUTLIER_Z:g} spreads of the bulk) "
    f"or above its own neighbours' ({OUTLIER_LOCAL_Z:g} spreads), and at least {OUTLIER_MIN_RATIO:g}× "
    "typical: a cut-off from the data, not a fixed count.",
    "No likely outliers: every item sits about as close to its neighbours as the typical items of this "
    "space do, so no score stands out from the rest.",
    "Fewer than half of these are likely real outliers: this space's scores stand out only a little. "
    "Look before you act.")
MISLABELS = Finder(
    "mislabel", "likely_mislabel", "likely mislabel", "mislabel_precision",
    ("label", "suggested_label", "score"), ("mislabel", "likely_mislabel", "suggested_label"),
    "Flagged when the evidence for another class is as strong as for that class's typical members and "
    "stronger than for the given label (confident learning: per-class thresholds from the data).",
    "No likely mislabels: every labelled item agrees with its neighbours and the probe. For no item do its "
    "nearest neighbours, a classifier trained without it and the model's prediction point confidently to "
    "another class.",
    "Fewer than half of these are likely wrong labels: this space only partly separates the classes, so "
    "most disagreements are its own confusions between similar classes. Review before relabelling; a space "
    "that separates the classes better (see Evaluate) gives a shorter, surer list.")


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


def headline(count: int, noun: str, precision: float | None) -> str:
    """"12 likely mislabels (estimated precision 85%)" (no precision when unknown)."""
    text = f"**{count:,} {noun}{'' if count == 1 else 's'}**"
    return text if precision is None else f"{text} (estimated precision {precision:.0%})"


def _without_corrected(analysis: Any, likely: pd.DataFrame) -> pd.DataFrame:
    """The likely mislabels nobody relabeled or marked reviewed since (core.curation.corrected: one
    read by id of the flagged rows, so a fix shows on the next rerun without recomputing)."""
    from core.curation.corrected import drop_corrected_from_store

    return drop_corrected_from_store(resources.get_store(), analysis.project, likely)


def _finder_tab(analysis: Any, finder: Finder, key: str, top: int, explanation: str) -> list[str] | None:
    """The flagged items first (a headline and their grid, or why there are none), a CSV of the
    whole ranking, and the ranking itself behind a toggle."""
    scores = analysis.scores
    values = pd.to_numeric(scores[finder.column], errors="coerce") if finder.column in scores else None
    total = 0 if values is None else int(values.notna().sum())
    if total == 0:
        st.caption(f"No {finder.column} scores (they need labels)" if finder.column == "mislabel"
                   else "Nothing found.")
        return None
    st.caption(explanation)
    picked: list[str] | None = None
    likely = flagged(scores, finder.column, finder.flag)  # None: an analysis without the cut-off
    if likely is not None and finder is MISLABELS and not likely.empty:
        likely = _without_corrected(analysis, likely)
    if likely is not None and likely.empty:
        st.success(finder.empty, icon=":material/check_circle:")
    elif likely is not None:
        precision = (analysis.summary or {}).get(finder.precision)
        head, button = st.columns([3, 1], vertical_alignment="center")
        head.markdown(headline(len(likely), finder.noun, precision))
        head.caption(finder.rule)
        if precision is not None and precision < LOW_PRECISION:
            head.warning(finder.unsure, icon=":material/warning:")
        if button.button(f"Select {'all ' if len(likely) > 1 else ''}{len(likely):,} on map",
                         key=f"{key}.all", width="stretch", icon=":material/select_all:"):
            picked = likely.index.astype(str).tolist()
        # Ranked by the score already: paged, not re-sorted (a list past the cut-off can be long).
        clicked = paged_grid(likely, key=f"{key}.grid", columns=6, fields=finder.fields, page_size=top,
                             sortable=False)
        picked = [clicked] if clicked is not None else picked
        finding_actions(None, likely.index.astype(str).tolist(), key=f"{key}.cur", mislabels=finder is MISLABELS)
    st.download_button(f"Download the full ranking ({total:,}) as CSV",
                       lambda: _csv(ranked(scores, finder.column, top=len(scores)), finder.extra),
                       file_name=f"{finder.column}.csv", mime="text/csv", key=f"{key}.csv",
                       icon=":material/download:")
    if st.toggle("Show the full ranking", key=f"{key}.full", value=likely is None,
                 help="Every scored item, highest score first, flagged or not: to look further than the cut-off."):
        rows = ranked(scores, finder.column, top=top)  # the whole ranking only for a download
        if st.button(f"Select top {min(top, total)} on map", key=f"{key}.top", icon=":material/select_all:"):
            picked = rows.index.astype(str).tolist()
        clicked = image_grid(rows, key=f"{key}.ranking", columns=6, fields=finder.fields, max_items=top)
        picked = [clicked] if clicked is not None else picked
    return picked


def _error_clusters_tab(table: pd.DataFrame | None, scores: pd.DataFrame,
                        key: str) -> list[str] | None:
    if table is None or table.empty:
        known = scores["is_error"].dropna() if "is_error" in scores.columns else pd.Series(dtype=bool)
        clustered = int((scores["cluster"] >= 0).sum()) if "cluster" in scores.columns else 0
        if known.empty:
            st.caption("No error clusters: they need items with both a label and a model prediction, "
                       "and none of these items has both.")
        elif not clustered:
            st.caption("No error clusters: no clusters were found in this space (its points form no "
                       "groups apart from each other).")
        else:
            st.caption(f"No cluster holds significantly more model errors than the {known.mean():.1%} "
                       "average (one-sided hypergeometric test, p ≤ 0.05 after correcting for the "
                       "number of clusters).")
        return None
    st.caption("Clusters holding significantly more model errors than average, highest lift first. "
               "Lift: the cluster's error rate over the overall rate (2.0 = twice as many errors); "
               "p: the chance a random group that size has as many errors, corrected for the number "
               "of clusters.")
    st.download_button("Download the error clusters as CSV", export.to_csv(table),
                       file_name="error_clusters.csv", mime="text/csv", key=f"{key}.csv",
                       icon=":material/download:")
    for _, row in table.head(MAX_GROUPS).iterrows():
        cluster = int(row["cluster"])
        members = scores[scores["cluster"] == cluster]
        wrong = members[members["is_error"].fillna(False).astype(bool)]
        head, button = st.columns([4, 1], vertical_alignment="center")
        # "Select cluster" selects every member, unlabeled ones too: count them all, then the labeled.
        labeled = int(members["is_error"].notna().sum())
        head.markdown(f"**Cluster {cluster}** · {len(members):,} point{'' if len(members) == 1 else 's'}, "
                      f"{labeled:,} labeled, {int(row['errors']):,} error{'' if int(row['errors']) == 1 else 's'} "
                      f"({float(row['error_rate']):.0%} of the labeled, lift "
                      f"{float(row['lift']):.1f}× the average, p = {float(row['p_value']):.1g}) · "
                      f"top confusion {md(row.get('top_confusion') or '–')}")
        description = row.get("description")
        if isinstance(description, str) and description:
            head.caption(md(description))
        with head:  # tag / label / mark reviewed every point of the cluster (unlabeled ones too)
            curation_actions(None, members.index.astype(str).tolist(), key=f"{key}.cur.{cluster}",
                             count=len(members))
        if button.button("Select cluster", key=f"{key}.sel.{cluster}", width="stretch"):
            return members.index.astype(str).tolist()
        clicked = paged_grid(wrong, key=f"{key}.grid.{cluster}", columns=8,
                             fields=("label", "prediction"), page_size=8, sortable=False)
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
                       mime="text/csv", key=f"{key}.csv", icon=":material/download:")
    ordered = table.sort_values(["leakage", "size"], ascending=False, kind="stable")
    for _, row in ordered.head(MAX_GROUPS).iterrows():
        ids = [i for i in row["ids"] if i in scores.index]
        head, button = st.columns([4, 1], vertical_alignment="center")
        leak = " · :material/warning: leakage across datasets/splits" if row["leakage"] else ""
        head.markdown(f"**Group {int(row['group'])}** · {int(row['size'])} items · "
                      f"{', '.join(md(d) for d in row['datasets'])}{leak}")
        with head:  # e.g. tag the group "duplicate", or mark it reviewed once kept
            curation_actions(None, ids, key=f"{key}.cur.{int(row['group'])}", count=len(ids))
        if button.button("Select group", key=f"{key}.sel.{int(row['group'])}", width="stretch"):
            return ids
        clicked = paged_grid(scores.loc[ids], key=f"{key}.grid.{int(row['group'])}", columns=8,
                             fields=("dataset", "label"), page_size=8, sortable=False)
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
    method = str((analysis.params or {}).get("outlier_method", "blend"))
    with tabs[0]:
        picked = _finder_tab(analysis, OUTLIERS, f"{key}.outlier", top,
                             OUTLIER_HELP.get(method, OUTLIER_HELP["blend"])) or picked
    with tabs[1]:
        picked = _finder_tab(analysis, MISLABELS, f"{key}.mislabel", top, MISLABEL_HELP) or picked
    with tabs[2]:
        picked = _error_clusters_tab(analysis.error_clusters, scores, f"{key}.errors") or picked
    with tabs[3]:
        picked = _duplicates_tab(analysis.duplicates, scores, f"{key}.dups") or picked
    return picked
