"""Explore's Problems panel on the objects view: the per-class matching table and the detection-object finders
(likely mislabeled boxes, likely missing labels, background predictions, failure clusters) as mosaics of crops.

"Find problems" runs core.pipeline.analyse_objects.run_object_analysis with a progress bar; a page view
only reads the persisted result (load_object_analysis, cached per project revision) and offers a
recompute when it is stale. Selections are returned as point ids for the page to ring on the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import export
from ui import resources
from ui.actor import current_actor
from ui.page import PageContext
from ui.text import md
from ui.widgets.curation import finding_actions, run_action
from ui.widgets.grid import paged_grid
from ui.widgets.out_of_date import out_of_date_notice

_CSV_EXTRA = ("box", "source", "match", "suggested_label")
TOP = 24  # crops per page of a finding's mosaic
MAX_CLUSTERS = 8
TITLE = ("Problems: matching per class, mislabeled boxes, missing labels, background, failure clusters, "
         "duplicates")
TABS = ("Likely mislabeled boxes", "Likely missing labels", "Background predictions", "Failure clusters",
        "Duplicates / leakage")


@dataclass(frozen=True)
class ObjectFinder:
    """One ranked tab: its frame of ObjectAnalysis, score and likely_* flag, and the words around them."""

    frame: str  # the ObjectAnalysis attribute ("mislabels", "missing", "background")
    column: str  # the score, higher = more likely a problem
    flag: str  # the finder's own cut-off
    noun: str  # "likely mislabeled box"; an "s" is added for counts other than 1
    fields: tuple[str, ...]  # crop captions
    explanation: str  # one line: what the score means
    empty: str  # why nothing passed the cut-off


MISLABELED = ObjectFinder(
    "mislabels", "mislabel", "likely_mislabel", "likely mislabeled box", ("label", "suggested_label", "mislabel"),
    "Mislabel score: 1 − the probability that the box's class is right, from its nearest label boxes, a "
    "classifier trained without it and the detector's class where a prediction matched it (0 = all agree "
    "with the label, 1 = none supports it).",
    "No likely mislabeled boxes: every label box agrees with its neighbours, the probe and the detector.")
MISSING = ObjectFinder(
    "missing", "missing", "likely_missing", "likely missing label", ("prediction", "confidence", "missing"),
    "Missing score = confidence × agreement × closeness: a confident prediction no label matched whose crop "
    "looks like the labelled boxes of its class (agreement: that class's share of the nearest labels' vote; "
    "closeness: 1 = as close to labelled objects as they are to each other).",
    "No likely missing labels: no unmatched prediction looks like the labelled objects of its class.")
BACKGROUND = ObjectFinder(
    "background", "background", "likely_background", "background prediction",
    ("prediction", "confidence", "background"),
    "Background score = 1 − (1 − spurious share) × closeness: a prediction far from every labelled object, or "
    "among other spurious boxes (what the detector fires on where there is no object).",
    "No background predictions: every unmatched prediction sits near labelled objects.")
FINDERS = (MISLABELED, MISSING, BACKGROUND)


@st.cache_resource(show_spinner="Reading the last object analysis…", max_entries=4)
def _load(project: str, space: str, datasets: tuple[str, ...], revision: str) -> Any:
    # A resource, not data: never unpickled per rerun; shared between sessions, never mutated.
    from core.pipeline.analyse_objects import load_object_analysis
    from core.pipeline.payload_cache import cache_folder

    return load_object_analysis(resources.get_store(), project, space, list(datasets),
                                cache_dir=cache_folder(resources.get_settings()))


def current_object_analysis(ctx: PageContext) -> Any | None:
    """The persisted ObjectAnalysis of the sidebar's selection (`.stale` set), or None when never
    computed; never computed on a page view. Cached per project revision (a recompute anywhere shows)."""
    if not ctx.ready or not ctx.datasets:
        return None
    assert ctx.project is not None and ctx.space is not None
    return _load(ctx.project, ctx.space, tuple(sorted(set(ctx.datasets))), resources.project_revision(ctx.project))


OBJECT_ANALYSIS_JOB = "problems.object_analysis"  # the key under which a page follows it (ui.jobs_view)


def start_find_object_problems(ctx: PageContext, params: dict[str, Any] | None = None) -> None:
    """Start the object analysis of the sidebar's selection as a background job this session follows (or
    join the one running for the same data); follow_find_object_problems draws it."""
    from core.jobs.work import object_analysis
    from core.pipeline.vector_cache import cache_folder
    from ui import jobs_view

    assert ctx.project is not None and ctx.space is not None
    jobs_view.start(OBJECT_ANALYSIS_JOB, object_analysis(ctx.store, ctx.project, ctx.space, ctx.datasets,
                                                         actor=current_actor(), params=params,
                                                         cache_dir=cache_folder(ctx.settings)))


def follow_find_object_problems(container: Any = None) -> Any:
    """The ObjectAnalysis of the job this session follows once finished (persisted: current_object_analysis
    reads it too), else None (its progress drawn while it runs; the page reruns at its end). Its error
    (NotEnoughDataError below 3 objects, a CoreError) is raised for the page to show."""
    from ui import jobs_view

    job = jobs_view.track(OBJECT_ANALYSIS_JOB, "Finding problems in the objects: mislabeled boxes, missing labels, "
                          "failure clusters", container=container)
    return job.result if job is not None else None


def run_find_object_problems(ctx: PageContext, params: dict[str, Any] | None = None, container: Any = None) -> Any:
    """Run (or reuse) the object analysis as a background job: the ObjectAnalysis when it finished within
    settings.job_wait_s, else None while it runs (its progress shown, the page reruns when it ends)."""
    start_find_object_problems(ctx, params)
    return follow_find_object_problems(container)


def class_table(analysis: Any) -> pd.DataFrame:
    """The per-class matching table with the "(all)" row (box_matching.with_total)."""
    from core.analysis.box_matching import with_total

    return with_total(analysis.table)


def _class_table(analysis: Any, key: str) -> None:
    table = class_table(analysis)
    st.markdown("**Matching per class** — labels and predictions, counts per match status")
    # Tall enough for every class and the "(all)" row (35 px a row + the header), within reason.
    st.dataframe(table, hide_index=True, width="stretch", key=f"{key}.table", height=min(38 + 35 * len(table), 600),
                 column_config={
                     "precision": st.column_config.NumberColumn("precision", format="percent",
                                                                help="tp / predictions of the class"),
                     "recall": st.column_config.NumberColumn("recall", format="percent",
                                                             help="tp / labels of the class")})


def _summary(analysis: Any) -> None:
    s = analysis.summary or {}
    cols = st.columns(6)
    cols[0].metric("Objects", f"{s.get('objects', len(analysis.objects)):,}",
                   help=f"{s.get('labels', 0):,} labels, {s.get('predictions', 0):,} predictions")
    cols[1].metric("Likely mislabeled", s.get("likely_mislabels", 0))
    cols[2].metric("Likely missing", s.get("likely_missing", 0))
    cols[3].metric("Background", s.get("likely_background", 0))
    cols[4].metric("Failure clusters", s.get("failure_clusters", len(analysis.clusters)))
    cols[5].metric("Duplicate groups", s.get("duplicate_groups", len(analysis.duplicates)),
                   help=f"{s.get('leakage_objects', 0):,} boxes leak across datasets or splits")


def _headline(count: int, noun: str) -> str:
    plural = noun if count == 1 else noun + ("es" if noun.endswith("x") else "s")  # boxes, labels
    return f"**{count:,} {plural}**"


def flagged_rows(analysis: Any, finder: ObjectFinder) -> pd.DataFrame:
    """The finder's rows past its cut-off, ranked; the mislabeled boxes nobody relabeled or reviewed since."""
    frame: pd.DataFrame = getattr(analysis, finder.frame)
    if frame.empty or finder.flag not in frame.columns:
        return frame.iloc[:0]
    likely = frame[frame[finder.flag].fillna(False).astype(bool)]
    if finder is MISLABELED and not likely.empty:
        from core.curation.corrected import drop_corrected_from_store

        likely = drop_corrected_from_store(resources.get_store(), analysis.project, likely)
    return likely


def _on_accept(ctx: PageContext, points: list[str], suggested: list[str]) -> None:
    from core.curation import labels

    project = ctx.project
    assert project is not None

    def act() -> str:
        entry = labels.set_labels(ctx.store, project, points, suggested, actor=current_actor(), why="finding",
                                  note="accepted suggested classes of boxes")
        return "Nothing changed." if entry is None else f"{len(entry.rows):,} suggested class(es) accepted."
    run_action(act)


def _finder_tab(ctx: PageContext, analysis: Any, finder: ObjectFinder, key: str) -> list[str] | None:
    """The flagged objects as a mosaic of crops (a headline, Select on map, curation), a CSV of the
    whole ranking, and the ranking past the cut-off behind a toggle."""
    frame: pd.DataFrame = getattr(analysis, finder.frame)
    if frame.empty:
        st.caption("Nothing scored: this finder needs label boxes of two classes or more"
                   + (" and unmatched predictions." if finder is not MISLABELED else "."))
        return None
    st.caption(finder.explanation)
    picked: list[str] | None = None
    likely = flagged_rows(analysis, finder)
    if likely.empty:
        st.success(finder.empty, icon=":material/check_circle:")
    else:
        head, button = st.columns([3, 1], vertical_alignment="center")
        head.markdown(_headline(len(likely), finder.noun))
        if button.button(f"Select {len(likely):,} on map", key=f"{key}.all", width="stretch",
                         icon=":material/select_all:"):
            picked = likely.index.astype(str).tolist()
        clicked = paged_grid(likely, key=f"{key}.grid", columns=6, fields=finder.fields, page_size=TOP,
                             sortable=False)
        picked = [clicked] if clicked is not None else picked
        ids = likely.index.astype(str).tolist()
        finding_actions(ctx, ids, key=f"{key}.cur")
        if finder is MISLABELED:
            st.button(f"Accept the {len(ids):,} suggested class{'' if len(ids) == 1 else 'es'}", key=f"{key}.accept",
                      icon=":material/done_all:", on_click=_on_accept,
                      args=(ctx, ids, [str(s) for s in likely["suggested_label"]]),
                      help="Set each box's label to its suggested class (one history entry; undo on History)")
    st.download_button(f"Download the full ranking ({len(frame):,}) as CSV",
                       lambda: export.to_csv(export.export_frame(frame, extra=_CSV_EXTRA + (finder.column, finder.flag))),
                       file_name=f"objects_{finder.column}.csv", mime="text/csv", key=f"{key}.csv",
                       icon=":material/download:")
    if st.toggle("Show the full ranking", key=f"{key}.full", help="Every scored object, flagged or not"):
        clicked = paged_grid(frame, key=f"{key}.ranking", columns=6, fields=finder.fields, page_size=TOP,
                             sortable=False)
        picked = [clicked] if clicked is not None else picked
    return picked


def cluster_line(row: pd.Series) -> str:
    """"**Cluster 3** · 40 objects, 18 failures (45%, lift 2.6× the average, p = 1e-04) · mostly seven
    (60%) · top failure missed (9) · median box 21 px" (Markdown, values escaped)."""
    area = pd.to_numeric(pd.Series([row.get("median_box_area")]), errors="coerce").iloc[0]
    size = "–" if pd.isna(area) else f"{np.sqrt(float(area)):.0f} px"
    share = row.get("class_share")
    mostly = md(row.get("dominant_class") or "–") + ("" if pd.isna(share) else f" ({float(share):.0%})")
    return (f"**Cluster {int(row['cluster'])}** · {int(row['size']):,} objects, {int(row['failures']):,} failures "
            f"({float(row['failure_rate']):.0%}, lift {float(row['lift']):.1f}× the average, "
            f"p = {float(row['p_value']):.1g}) · mostly {mostly} · top failure {md(row.get('top_failure') or '–')} "
            f"· median box {size}")


def _clusters_tab(ctx: PageContext, analysis: Any, key: str) -> list[str] | None:
    clusters: pd.DataFrame = analysis.clusters
    if clusters.empty:
        st.caption("No failure clusters: no kind of object (a cluster of similar boxes) holds significantly "
                   "more misses and errors than average (one-sided hypergeometric test, p ≤ 0.05 corrected "
                   "for the number of clusters).")
        return None
    st.caption("Kinds of objects the detector fails on, highest lift first. Lift: the cluster's failure rate over "
               "the average (2.0 = twice as many); the crops are its failing boxes nearest its centre.")
    st.download_button("Download the failure clusters as CSV", export.to_csv(clusters.drop(columns="examples")),
                       file_name="failure_clusters.csv", mime="text/csv", key=f"{key}.csv",
                       icon=":material/download:")
    for _, row in clusters.head(MAX_CLUSTERS).iterrows():
        cluster = int(row["cluster"])
        ids = [str(i) for i in row["examples"] if i in analysis.objects.index]
        head, button = st.columns([4, 1], vertical_alignment="center")
        head.markdown(cluster_line(row))
        if isinstance(row.get("description"), str) and row["description"]:
            head.caption(md(row["description"], limit=1000))
        with head:
            finding_actions(ctx, ids, key=f"{key}.cur.{cluster}")
        if button.button(f"Select {len(ids)} on map", key=f"{key}.sel.{cluster}", width="stretch",
                         icon=":material/select_all:"):
            return ids
        members = analysis.objects.loc[ids].assign(**{"class": _classes(analysis.objects.loc[ids])})
        clicked = paged_grid(members, key=f"{key}.grid.{cluster}", columns=8, fields=("class", "match"),
                             page_size=8, sortable=False)
        if clicked is not None:
            return [clicked]
    return None


def _classes(frame: pd.DataFrame) -> Sequence[Any]:
    from core.analysis.object_findings import object_class

    return list(object_class(frame)) if len(frame) else []


def object_problems_panel(ctx: PageContext, analysis: Any, *, key: str = "objproblems") -> list[str] | None:
    """The persisted object analysis (None: how to get one): an out-of-date notice when stale, the
    summary, the class table and one tab per finder. Returns the ids to select on the map, or None."""
    if analysis is None:
        st.caption("Press **Find problems** to match every box and rank the objects: likely mislabeled boxes, "
                   "likely missing labels, background predictions, clusters of failures.")
        return None
    if analysis.stale and out_of_date_notice("the object problems", key=f"{key}.recompute"):
        start_find_object_problems(ctx)  # the page follows it (follow_find_object_problems)
        st.rerun()
    _summary(analysis)
    _class_table(analysis, key)
    picked: list[str] | None = None
    tabs = st.tabs(list(TABS))
    for tab, finder in zip(tabs, FINDERS, strict=False):
        with tab:
            picked = _finder_tab(ctx, analysis, finder, f"{key}.{finder.column}") or picked
    with tabs[3]:
        picked = _clusters_tab(ctx, analysis, f"{key}.clusters") or picked
    with tabs[4]:
        from ui.widgets.object_duplicates import duplicates_tab

        picked = duplicates_tab(ctx, analysis, f"{key}.dups") or picked
    return picked
