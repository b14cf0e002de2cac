"""Compare-page logic: run (or reuse) the comparison of two sides, show drift, novelty, regions,
label shift and the joint map coloured by side (sides are picked in ui.compare_pick)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.pipeline.compare import CompareResult
from core.pipeline.compare_sides import CompareSide
from core.pipeline.vector_cache import cache_folder
from core.types import BOX, ITEM_KIND, OBJECT_KIND
from ui import compare_pick, crops, explore, jobs_view, resources
from ui.actor import current_actor
from ui.page import PageContext
from ui.text import md, plotly_text
from ui.widgets import scatter
from ui.widgets.grid import caption, image_grid

log = logging.getLogger(__name__)

COLOUR_A, COLOUR_B = "#7f9cc0", "#f28e2b"  # A muted underneath, B bright on top
MAP_KEY = "compare.map"  # the joint map's widget key (its lasso lands in ui.widgets.map_events)
LASSO = "compare.lasso.ids"  # the ids lassoed on the joint map, ringed on it and listed below
COMPARE_JOB, FIT_JOB = "compare.run", "compare.fit"  # keys of the jobs this page follows (ui.jobs_view)


def run(ctx: PageContext, a: CompareSide, b: CompareSide, *, force: bool = False,
        refresh: bool = False, kind: str = ITEM_KIND) -> CompareResult:
    """The comparison of B against A. A page view reads the persisted one (cached per store
    revision; `.stale` when the data changed since: the page offers to update it) and computes,
    with a progress bar, only the first time. refresh: bring a stale result up to date (reused
    when the data of the two sides did not change); force: compute again whatever the data.
    CoreError propagates. kind: the points compared (OBJECT_KIND: the two sides' detection objects).
    The computation is a background job (core.jobs, shared with anyone comparing the same sides): while
    it runs past settings.job_wait_s its progress shows and the run stops (the page reruns at its end)."""
    from core.jobs.work import comparison

    assert ctx.project is not None and ctx.space is not None
    label = f"Comparing {b} with {a}: novelty, regions, drift"
    if not (force or refresh):
        # Sides travel as their text form: plain strings for the cache key.
        persisted = resources.cached_compare(ctx.project, ctx.space, a.name, b.name, kind)
        if persisted is not None:
            jobs_view.track(COMPARE_JOB, label)  # a recompute started on an earlier run, still going
            return persisted
    actor = current_actor()
    from core.auth import Permission
    if not actor.can(Permission.ANALYSE):  # a viewer reads persisted comparisons only: no error, no button
        st.info(f"No comparison of {md(a)} and {md(b)} yet: an editor or admin can compute it.")
        st.stop()
    spec = comparison(ctx.store, ctx.project, ctx.space, a, b, actor=actor, force=force,
                      cache_dir=cache_folder(ctx.settings), kind=kind)
    job = jobs_view.track(COMPARE_JOB, label, jobs_view.start(COMPARE_JOB, spec))
    if job is None:  # still running (or cancelled): nothing to show until it ends
        st.stop()
    # No cache to clear: the stored result changed the project's revision, the cache key.
    return job.result


def noun(result: CompareResult) -> str:
    """What the comparison's points are called: "objects" (detection boxes) or "items"."""
    return "objects" if result.kind == OBJECT_KIND else "items"


def with_boxes(top: pd.DataFrame, payloads: pd.DataFrame) -> pd.DataFrame:
    """Novelty rows with their box (objects: the grids show crops, ui.crops.point_thumbnail)."""
    if BOX not in payloads.columns or BOX in top.columns:
        return top
    return top.join(payloads[[BOX]], how="left")


# -- drift -------------------------------------------------------------------------------------
def verdict(auc: float) -> str:
    """Plain words for a domain-classifier AUC."""
    if auc < 0.6:
        return "no clear drift"
    if auc < 0.75:
        return "moderate drift"
    if auc < 0.9:
        return "strong drift"
    return "very strong drift"


def auc_sentence(auc: float, a: str, b: str) -> str:
    """What the AUC means, in words, with the dataset names (Markdown; names escaped)."""
    return (f"**Domain classifier AUC {auc:.2f}** ({verdict(auc)}): shown one {md(b)} item and one "
            f"{md(a)} item, a linear classifier trained on the embeddings tells which is which "
            f"{auc:.0%} of the time. 0.5 would mean the two are indistinguishable, 1.0 that "
            "they do not overlap at all.")


def drift_section(result: CompareResult) -> None:
    """The overall drift figure (domain classifier AUC) and the kNN mixing test, in words."""
    d, a, b = result.drift, result.name_a, result.name_b
    auc = float(d["domain_auc"])
    left, mid, right = st.columns(3)
    quiet: dict[str, Any] = {"delta_color": "off", "delta_arrow": "off", "border": True}
    left.metric("Drift: domain classifier AUC", f"{auc:.2f}", verdict(auc),
                help=str(d.get("domain_auc_meaning", "")), **quiet)
    mid.metric("Same-dataset neighbours", f"{float(d['knn_same_share']):.0%}",
               f"{float(d['knn_expected_share']):.0%} if mixed at random",
               help=str(d.get("knn_meaning", "")), **quiet)
    n_b = int(result.summary.get("n_b", len(result.novelty)))
    novel = int((result.novelty["novelty"] >= 2.0).sum()) if len(result.novelty) else 0
    right.metric(f"{md(b)} items unlike {md(a)}", f"{novel:,} of {n_b:,}", "novelty ≥ 2", **quiet,
                 help="Novelty 1 = as close to A as A's own items are to each other; 2 = twice "
                      "as far from A as is usual inside A.")
    st.markdown(auc_sentence(auc, a, b))
    p = float(d["knn_p_value"])
    st.caption(f"kNN test: {float(d['knn_same_share']):.0%} of each item's nearest neighbours "
               f"come from its own dataset, against {float(d['knn_expected_share']):.0%} if the "
               f"two were mixed at random (p = {p:.3g}"
               + (": the two are not mixed)." if p < 0.01 else ")."))


# -- joint map ---------------------------------------------------------------------------------
def side_colours(frame: pd.DataFrame, a: CompareSide, b: CompareSide) -> explore.ColourSpec:
    """Colour the joint map by side: A muted underneath, B on top (-1: in neither)."""
    by = "dataset" if a.split is None and b.split is None else "side"
    return explore.ColourSpec(by, "categorical", categories=[a.name, b.name],
                              colours=[COLOUR_A, COLOUR_B],
                              codes=compare_pick.side_codes(frame, a, b), legend_rank=[0, 1])


def load_joint_map(ctx: PageContext, a: CompareSide, b: CompareSide,
                   method: str, kind: str = ITEM_KIND) -> tuple[Any, bool]:
    """(MapResult, quick): the persisted map of A + B, or the quick PCA layout when `method`
    has never been fitted on them (the page fits it after drawing, see fit_joint_map)."""
    from core.pipeline import maps

    assert ctx.project is not None and ctx.space is not None
    datasets, flt = compare_pick.map_scope(a, b, kind)
    if method == "pca" or maps.has_map(ctx.store, ctx.project, ctx.space, datasets,
                                       method=method, flt=flt):
        return resources.cached_map(ctx.project, ctx.space, datasets, method=method,
                                    flt=flt), False
    return maps.quick_map(ctx.store, ctx.project, ctx.space, datasets, actor=current_actor(), flt=flt,
                          cache_dir=cache_folder(ctx.settings)), True


def fit_joint_map(ctx: PageContext, a: CompareSide, b: CompareSide, method: str, kind: str = ITEM_KIND,
                  *, quick: bool = True) -> None:
    """Fit (and persist) the joint map (of `kind` points) as a background job when `quick` (only its quick
    layout is drawn), and follow it: the page reruns to draw it once fitted."""
    from core.auth import Permission
    from core.jobs.work import map_fit

    assert ctx.project is not None and ctx.space is not None
    datasets, flt = compare_pick.map_scope(a, b, kind)
    spec = map_fit(ctx.store, ctx.project, ctx.space, datasets, actor=current_actor(), method=method, flt=flt,
                   cache_dir=cache_folder(ctx.settings)) if quick else None
    if spec is not None and not spec.actor.can(Permission.ANALYSE):  # its map would not be saved: no loop
        st.caption(f"The {method.upper()} map has not been computed yet; an editor's visit computes and saves it.")
    elif spec is not None and not jobs_view.cancelled_here(FIT_JOB, spec):
        jobs_view.start(FIT_JOB, spec)
    if jobs_view.track(FIT_JOB, f"Computing the {method.upper()} map of {a} + {b}") is not None:
        st.rerun()


def joint_map(map_result: Any, payloads: pd.DataFrame, result: CompareResult,
              highlight: Sequence[str], title: str) -> None:
    """A and B on one WebGL map, coloured by side, the most novel B items ringed; a lasso or box
    on it selects points (shown by lasso_section). payloads: the two sides' items only
    (compare_pick.side_payloads), so no other point is drawn."""
    a, b = sides(result)
    frame = explore.build_map_frame(map_result.ids, map_result.coords, payloads)
    picked = scatter.scatter_map(frame, side_colours(frame, a, b), key=MAP_KEY, highlight=highlight,
                                 focus=st.session_state.get(LASSO) or (), title=title, height=560,
                                 highlight_name=plotly_text(f"most novel in {b}"))
    if picked is not None:  # ring the new selection: draw the map again
        st.session_state[LASSO] = list(picked)
        st.rerun()


def lasso_section(result: CompareResult, payloads: pd.DataFrame) -> None:
    """What the lasso on the joint map holds: its count per side and their images."""
    picked = [i for i in st.session_state.get(LASSO) or [] if i in payloads.index]
    if not picked:
        st.caption("Lasso or box-select points on the map (toolbar) to see them here, per side.")
        return
    a, b = sides(result)
    rows = payloads.loc[picked]
    codes = compare_pick.side_codes(rows, a, b)
    n_a, n_b = int((codes == 0).sum()), int((codes == 1).sum())
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.markdown(f"**Selection · {len(picked):,}**: {n_a:,} {md(a.name)}, {n_b:,} {md(b.name)}")
    if right.button("Clear", key="compare.lasso.clear", icon=":material/close:"):
        st.session_state.pop(LASSO, None)
        st.rerun()
    image_grid(rows, key="compare.lasso", columns=6, fields=("dataset", "split", "label", "prediction"))


def sides(result: CompareResult) -> tuple[CompareSide, CompareSide]:
    """The result's two sides (a whole dataset where the result names no split)."""
    return (result.side_a or CompareSide(result.dataset_a),
            result.side_b or CompareSide(result.dataset_b))


# -- novelty, regions, labels ------------------------------------------------------------------
NOVELTY_COLUMNS = ("key", "label", "prediction", "confidence", "novelty", "nearest_similarity",
                   "duplicate_of_a", "region")


def novelty_table(top: pd.DataFrame) -> None:
    shown = [c for c in NOVELTY_COLUMNS if c in top.columns]
    st.dataframe(top[shown], width="stretch", column_config={
        "novelty": st.column_config.NumberColumn(format="%.2f"),
        "nearest_similarity": st.column_config.NumberColumn("nearest A similarity",
                                                            format="%.3f"),
        "duplicate_of_a": st.column_config.CheckboxColumn("near-copy of A")})


def nearest_pair(point_id: str, result: CompareResult, payloads: pd.DataFrame) -> None:
    """An examined item next to its nearest reference item, with their similarity."""
    row = result.novelty.loc[point_id]
    nearest = str(row["nearest_a"])
    captions = [f"{md(result.name_b)} · novelty {float(row['novelty']):.2f}",
                f"nearest in {md(result.name_a)} · similarity "
                f"{float(row['nearest_similarity']):.3f}"]
    cells = st.columns([1, 1, 3])
    for cell, pid, text in zip(cells, (point_id, nearest), captions, strict=False):
        item = payloads.loc[pid] if pid in payloads.index else pd.Series(dtype=object)
        data = crops.point_thumbnail(pid, item.get("uri"), item.get(BOX), 256)  # an object: its crop
        with cell:
            if data is not None:
                st.image(data, width="stretch")
            st.caption(f"{text} · {caption(item, ('label', 'prediction')) or 'no label'}")
    cells[2].caption("The most novel items usually show what the model has never seen: a new "
                     "class, a new camera, a new background. Label a few and add them to train.")


OPENED = "compare.opened"  # the novel item shown next to its nearest reference item


def novelty_section(ctx: PageContext, result: CompareResult, top: pd.DataFrame,
                    payloads: pd.DataFrame) -> None:
    """The most novel B items: actions (map, search, export, save), grid, pair view, table."""
    from core.pipeline.analysis_io import export_scores
    from ui import collections_view, search_view, state

    a, b, ids = result.name_a, result.name_b, top.index.tolist()
    side_a, side_b = sides(result)
    actions = st.columns([1, 1, 1, 1.3], vertical_alignment="bottom")
    if actions[0].button("Show on map", key="compare.show_map", icon=":material/map:", width="stretch"):
        search_view.show_on_map(ids, datasets=sorted({side_a.dataset, side_b.dataset}))
    if actions[1].button("Search like these", key="compare.search", icon=":material/search:", width="stretch",
                         help="Use the most novel items (first 20) as examples to mine more"):
        state.set_search_positive(ids[:20])
        state.set_search_negative([])
        search_view.go_to("pages/3_Search.py")
    with actions[2]:
        collections_view.export_buttons(
            export_scores(result.novelty, "novelty"), key="compare.export",
            stem=f"novelty-{_stem(side_b)}-vs-{_stem(side_a)}")
    with actions[3].popover("Save as collection", icon=":material/save:", width="stretch"):
        collections_view.save_form(ctx, ids, key="compare.save",
                                   scores=top["novelty"].astype(float).tolist(),
                                   query={"type": "novelty", "a": a, "b": b},
                                   description=f"most novel {b} items vs {a}")
    opened = st.session_state.get(OPENED)
    if isinstance(opened, str) and opened in result.novelty.index:
        with st.container(border=True):
            nearest_pair(opened, result, payloads)
            if st.button("Close", key="compare.close"):
                st.session_state[OPENED] = None
                st.rerun()
    clicked = image_grid(top, key="compare.novel", columns=6,
                         fields=("novelty", "label", "prediction"), max_items=len(top))
    if clicked is not None:
        st.session_state[OPENED] = clicked
        st.rerun()
    with st.expander("As a table"):
        novelty_table(top)


def _stem(side: CompareSide) -> str:
    """A side in a file name ("all-data-test"): split values may hold any character."""
    return re.sub(r"[^\w.-]+", "_", side.dataset + (f"-{side.split}" if side.split else ""))


def _status_text(status: str, a: str, b: str) -> str:
    return {"only in B": f"only in {b}", "only in A": f"only in {a}",
            "more B": f"more {b} than expected", "less B": f"less {b} than expected"
            }.get(status, status)


def region_table(result: CompareResult) -> pd.DataFrame:
    """Regions with readable status and dataset-named count columns, the most one-sided first."""
    a, b = result.name_a, result.name_b
    table = result.regions.drop(columns=["representatives"], errors="ignore").copy()
    table["status"] = [_status_text(s, a, b) for s in table["status"]]
    first = [c for c in ("region", "status", "skew", "n_a", "n_b", "expected_b", "ratio_b")
             if c in table.columns]
    table = table[first + [c for c in table.columns if c not in first]]
    return table.rename(columns={"n_a": f"in {a}", "n_b": f"in {b}",
                                 "expected_b": f"{b} expected", "ratio_b": f"{b} ratio"})


def regions_section(result: CompareResult, payloads: pd.DataFrame, max_regions: int = 6) -> None:
    """Over / under-represented regions: counts, and example images of each."""
    a, b = result.name_a, result.name_b
    st.dataframe(region_table(result), hide_index=True, width="stretch", column_config={
        "p_value": st.column_config.NumberColumn(format="%.2g"),
        f"{b} expected": st.column_config.NumberColumn(format="%.1f"),
        f"{b} ratio": st.column_config.NumberColumn(format="%.2f")})
    notable = result.regions[result.regions["status"] != "balanced"].head(max_regions)
    if notable.empty:
        st.caption(f"No region has significantly more or fewer {md(b)} items than expected.")
    for n, (_, reg) in enumerate(notable.iterrows()):
        label = (f"Region {int(reg['region'])} · {md(_status_text(str(reg['status']), a, b))} · "
                 f"{int(reg['n_a']):,} {md(a)} / {int(reg['n_b']):,} {md(b)} "
                 f"(expected {float(reg['expected_b']):.0f} {md(b)})")
        with st.expander(label, expanded=n < 2):
            reps = payloads.reindex([str(i) for i in reg["representatives"]]).dropna(how="all")
            image_grid(reps, key=f"compare.region.{int(reg['region'])}", columns=6,
                       fields=("dataset", "label", "prediction"))


def labels_section(result: CompareResult) -> None:
    """Label (or prediction) shares of A and B side by side, and their total variation."""
    a, b = result.name_a, result.name_b
    if result.label_field is None or result.labels.empty:
        st.caption(f"No labels or predictions on both {md(a)} and {md(b)}: nothing to compare.")
        return
    labels = result.labels.copy()
    labels["label"] = labels["label"].map(plotly_text)  # category axis ticks render HTML
    what = "Labels" if result.label_field == "label" else "Predicted classes (no labels on both)"
    figure = go.Figure([
        go.Bar(name=plotly_text(a), x=labels["label"], y=labels["share_a"], marker_color=COLOUR_A,
               customdata=labels["count_a"], hovertemplate="%{x}: %{y:.1%} (%{customdata})"),
        go.Bar(name=plotly_text(b), x=labels["label"], y=labels["share_b"], marker_color=COLOUR_B,
               customdata=labels["count_b"], hovertemplate="%{x}: %{y:.1%} (%{customdata})")])
    figure.update_layout(barmode="group", height=340, margin={"l": 8, "r": 8, "t": 40, "b": 8},
                         yaxis={"tickformat": ".0%", "title": "share"},
                         xaxis={"type": "category", "title": plotly_text(result.label_field)},
                         title={"text": f"{what}: share of each class", "x": 0.01})
    st.plotly_chart(figure, key="compare.labels", width="stretch")
    if result.label_tv is not None:
        st.caption(f"Total variation distance {float(result.label_tv):.2f}: the share of "
                   f"{md(a)}'s class mix that would have to change to match {md(b)}'s (0 = the same "
                   "mix, 1 = no class in common). Counts only items with a value.")
