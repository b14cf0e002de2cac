"""Explore: the 2-D map of a project's embeddings — colour, filter, select a region, see its images."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.auth import Permission
from core.display import shorten
from core.filters import Filter
from core.jobs.work import JobSpec
from core.pipeline.vector_cache import cache_folder
from core.types import ITEM_KIND, OBJECT_KIND
from ui import explore, jobs_view, objects_view, resources, state, view_state
from ui.actor import current_actor
from ui.errors import show_errors
from ui.page import PageContext, require_datasets, setup_page
from ui.text import md
from ui.widgets import map_events
from ui.widgets.curation import curation_actions
from ui.widgets.detail import SELECTION_SOURCE, find_similar, item_detail, select_on_map
from ui.widgets.filters import payload_filter_widgets
from ui.widgets.grid import paged_grid
from ui.widgets.map_preview import preview_picture
from ui.widgets.object_problems import TITLE as OBJECT_PROBLEMS
from ui.widgets.object_problems import (
    current_object_analysis,
    follow_find_object_problems,
    object_problems_panel,
    start_find_object_problems,
)
from ui.widgets.out_of_date import out_of_date_notice
from ui.widgets.problems import current_analysis, follow_find_problems, problems_panel, start_find_problems
from ui.widgets.scatter import scatter_map
from ui.widgets.table import view_table

METHODS = {"UMAP": "umap", "PCA": "pca", "t-SNE": "tsne"}
QUICK_NOTE = "Quick layout"
PREVIEW_SEND_S = 0.3


def map_args(ctx: PageContext, method: str, fit_filter: Filter | None) -> dict[str, Any]:
    assert ctx.project is not None and ctx.space is not None
    return {"project": ctx.project, "space": ctx.space, "datasets": list(ctx.datasets),
            "method": method, "flt": fit_filter}


FIT_JOB = "explore.fit"  # the key under which this page follows its map fit (ui.jobs_view)


def fit_spec(ctx: PageContext, args: dict[str, Any], *, refit: bool) -> JobSpec:
    """The map fit (or refit) as a background job: another user asking for the same map joins it."""
    from core.jobs.work import map_fit
    from ui.actor import current_actor

    return map_fit(ctx.store, args["project"], args["space"], args["datasets"], actor=current_actor(),
                   method=args["method"], flt=args["flt"], refit=refit, cache_dir=cache_folder(ctx.settings))


def follow_fit(args: dict[str, Any]) -> None:
    """The fit this session follows: its progress while it runs; once it has ended, a rerun draws it (no
    cache to clear: the rewritten map document moved the map documents' token, the caches' key)."""
    if jobs_view.track(FIT_JOB, f"Computing the {args['method'].upper()} map") is not None:
        st.rerun()


def map_source(ctx: PageContext, args: dict[str, Any]) -> tuple[str, dict[str, Any] | None, bool]:
    """(method, params, is_quick) of the map to draw: the persisted one, or a quick first layout
    (PCA, persisted too) when the full one has never been computed for these arguments (the page
    computes it after drawing)."""
    if args["method"] == "pca" or resources.has_map(args["project"], args["space"], args["datasets"],
                                                     method=args["method"], flt=args["flt"]):
        # PCA is as fast as the quick layout (it is the quick layout): no two-step display.
        return args["method"], None, False
    return "pca", {"seed": 0}, True  # core.pipeline.maps.quick_map's arguments


def draw_preview(ctx: PageContext, slot: Any, method: str, method_label: str) -> None:
    """The persisted map's shape at once, in one colour, before the payloads and the analysis
    are read and joined (at 1M points: seconds from the disk cache, ~20 s from the store the
    first time); the map document alone takes a moment. Nothing when there is no map of all
    points yet (the quick layout path draws one)."""
    assert ctx.project is not None and ctx.space is not None
    if not resources.has_map(ctx.project, ctx.space, ctx.datasets, method=method):
        return
    result = resources.cached_map(ctx.project, ctx.space, ctx.datasets, method=method)
    with slot.container():
        preview_picture(result.coords, title=f"{method_label} of {ctx.space} · {', '.join(ctx.datasets)} "
                                             "· reading labels…")
    # Let the server's event loop send it before this run holds the GIL reading the payloads (a
    # cold read of 1M payloads kept the picture in the queue for ~4 s, measured in Chromium).
    time.sleep(PREVIEW_SEND_S)


PROBLEM_PICK = "explore.problem_pick"  # (what, nonce): a Problems action to bring into view next run


@st.dialog("Item", width="large")
def detail_dialog(ctx: PageContext, point_id: str, row: dict[str, Any] | None) -> None:
    """An item opened from the Problems panel, far below the map and its side panel: shown over the
    page instead, where the user is looking."""
    opened = item_detail(ctx, point_id, payload=row, key="explore.dialog", columns=6)
    if opened is not None:
        state.set_detail_id(opened)
        st.rerun()


def bring_into_view(ctx: PageContext, frame: pd.DataFrame) -> None:
    """After a Problems action (set as PROBLEM_PICK before its rerun): scroll the map into view, where
    the selection is ringed and listed; an opened item also opens as a dialog."""
    pick = st.session_state.pop(PROBLEM_PICK, None)
    if not isinstance(pick, tuple):
        return
    map_events.scroll_into_view("explore.map", pick[1])
    detail_id = state.get_detail_id()
    if pick[0] == "open" and detail_id is not None:
        detail_dialog(ctx, detail_id, frame.loc[detail_id].to_dict() if detail_id in frame.index else None)


SELECTION_POSITIONS = "explore.selection.positions"  # (map token, ids, their positions in the map frame)


def selection_rows(frame: pd.DataFrame, ids: list[str], token: str) -> pd.DataFrame:
    """The selection's rows of the map frame. The positions are kept for the next reruns (a lasso
    over 1M points selects ~350k ids: looking them up in the frame's index costs ~0.5 s a rerun;
    comparing the same list again costs milliseconds), and a selection just made on the map
    brings its own (explore.PickedIds)."""
    memo = st.session_state.get(SELECTION_POSITIONS)
    if (isinstance(memo, tuple) and memo[0] == token and not isinstance(ids, explore.PickedIds)
            and len(memo[1]) == len(ids) and memo[1] == ids):
        positions = memo[2]
    else:
        positions = explore.selection_positions(frame, ids)
        st.session_state[SELECTION_POSITIONS] = (token, list(ids), positions)
    return frame.iloc[positions]


def selection_actions(ctx: PageContext, rows: pd.DataFrame) -> None:
    """Buttons acting on the selection: clear, use as search examples, save, download."""
    from core import export

    def ids() -> list[str]:  # on click only: 350k ids from a lasso at 1M points
        return rows.index.astype(str).tolist()

    c1, c2, c3 = st.columns(3)
    if c1.button("Clear", key="explore.sel.clear", width="stretch"):
        state.set_selection([])
        state.set_detail_id(None)
        st.rerun()
    if c2.button("Search like these", key="explore.sel.search", width="stretch",
                 help="Use the selection (first 20) as examples on the Search page"):
        find_similar(ids()[:20])
    # Made on click only: a lasso can select 100k+ rows, and every rerun would rebuild the file.
    # on_click="ignore": a download changes nothing on the page, so the click reruns nothing.
    c3.download_button("CSV", lambda: export.to_csv(export.export_frame(rows)), file_name="selection.csv",
                       mime="text/csv", key="explore.sel.csv", icon=":material/download:", width="stretch",
                       on_click="ignore")
    curation_actions(ctx, ids, key="explore.sel.cur", count=len(rows))  # tag / label / reviewed
    with st.popover("Save as collection", width="stretch"):
        name = st.text_input("Collection name", key="explore.sel.name")
        if st.button("Save", key="explore.sel.save", disabled=not name):
            from core import collections

            chosen = ids()
            with show_errors():
                assert ctx.project is not None and ctx.space is not None
                collections.save(ctx.store, ctx.project, name, chosen, actor=current_actor(), space=ctx.space)
                st.success(f"Saved {len(chosen):,} items as “{md(name)}”.")


ctx = setup_page("Explore", ":material/map:")
st.title(":material/map: Explore")
require_datasets(ctx, "Nothing to explore yet: load the demo on the home page or ingest a dataset.")
assert ctx.project is not None and ctx.space is not None

objects = objects_view.points_switch(ctx)  # "Points: images | objects" when the space has objects
top = st.columns([1.2, 1.6, 1, 1.1, 1.6], vertical_alignment="bottom")
method_label = top[0].selectbox("Projection", list(METHODS), key="explore.method")
colour_slot = top[1].empty()
refit = top[2].button("Refit", key="explore.refit", width="stretch",
                      help="Fit the projection again on every point (points ingested since the "
                           "last fit are placed into the existing map until you do).")
can_analyse = current_actor().can(Permission.ANALYSE)  # a viewer reads the persisted analysis only
find = top[3].button("Find problems", key="explore.find", type="primary", width="stretch",
                     icon=":material/troubleshoot:", disabled=not can_analyse,
                     help=None if can_analyse else "Running an analysis needs the editor role.")
job_slot = st.container()  # the progress of an analysis this session started (it runs in the background)
map_col, side = st.columns([3, 2], gap="medium")
with map_col:
    map_slot = st.empty()
    st.caption("Lasso or box-select a region (toolbar) to see its images; click a point to open "
               "it; scroll to zoom; double-click (or the toolbar's Reset axes) to see the whole map again.")
    fit_slot = st.empty()

with show_errors(stop=True):
    if not refit and not objects and not resources.map_ready(ctx.project, ctx.space, ctx.datasets):
        draw_preview(ctx, map_slot, METHODS[method_label], method_label)
    payloads = resources.map_payloads(ctx.project, ctx.space, ctx.datasets)
if payloads.empty:
    map_slot.empty()
    st.info(f"The datasets {', '.join(md(d) for d in ctx.datasets)} have no points in the space "
            f"{md(ctx.space)}.")
    st.stop()

st.sidebar.subheader("Filter the map")
flt = payload_filter_widgets(resources.payload_facets(ctx.project, ctx.space, ctx.datasets,
                                                     kind=OBJECT_KIND if objects else ITEM_KIND),
                             key="explore.flt", container=st.sidebar)
fit_filtered = bool(flt) and st.sidebar.checkbox(
    "Fit the map on the filtered points only", key="explore.fit_filtered",
    help="Off: the filtered points keep their place in the map of all points (fast, stable).")

# The objects map is a map of its own (its filter keys the persisted document).
args = map_args(ctx, METHODS[method_label], objects_view.view_filter(objects, flt if fit_filtered else None))
with show_errors(stop=True):
    if refit:
        jobs_view.start(FIT_JOB, fit_spec(ctx, args, refit=True))
    method, params, quick = map_source(ctx, args)
    if find:
        (start_find_object_problems if objects else start_find_problems)(ctx)
    with show_errors():  # a failed analysis is said; the map is still drawn
        (follow_find_object_problems if objects else follow_find_problems)(job_slot)
    # The objects view has an analysis of its own (ui.widgets.object_problems): image scores mean nothing on boxes.
    analysis = None if objects else current_analysis(ctx)  # the persisted one: never recomputed on a page view
    found = current_object_analysis(ctx) if objects else None
    if analysis is not None and analysis.stale and out_of_date_notice(
            "the problem scores (and the map colours from them)", key="explore.recompute",
            labels_only=analysis.labels_changed):
        start_find_problems(ctx)
        st.rerun()
    data = resources.cached_map_data(ctx.project, ctx.space, ctx.datasets, method=method, params=params,
                                     flt=args["flt"], scores=analysis is not None)
    visible = (resources.visible_rows(data, ctx.project, ctx.space, ctx.datasets, flt) if flt
               else np.ones(len(data.frame), dtype=bool))
frame = data.frame

options = objects_view.colour_menu(data.options, objects)
# Label first (the classes); agreement, scores and metadata are one pick away in the menu.
default = objects_view.default_colour(objects, options, "label" if "label" in options else explore.AGREEMENT)
view_state.check_colour(options)  # a colour from a link that this map cannot show: the default
objects_view.reset_colour(default, options)  # images <-> objects switched: the view's default
colour_by = colour_slot.selectbox("Colour by", options, key="explore.colour", format_func=shorten,
                                  index=options.index(default) if default in options else 0)
placed = data.placed if not quick else 0
top[4].caption(f"**{int(visible.sum()):,}** of {len(frame):,} points"
               + (f" · {placed:,} placed since the last fit (Refit to include them)"
                  if placed > 0 else ""))

selection = state.get_selection()
external = st.session_state.get(SELECTION_SOURCE) == "external"
with map_slot.container():  # replaces the preview, if one was drawn
    title = (f"{QUICK_NOTE} (PCA) — computing {method_label}…" if quick else
             f"{method_label} of {ctx.space}") + f" · {', '.join(ctx.datasets)}"
    new = scatter_map(frame, resources.map_colour(data, colour_by), key="explore.map",
                      visible=visible, highlight=state.get_highlight_ids(), highlight_name=state.get_highlight_name(),
                      focus=selection if external else (), title=title, grid=data.grid, token=data.token)
    if new is not None:
        state.set_selection(new)
        st.session_state[SELECTION_SOURCE] = "map"
        state.set_detail_id(new[0] if len(new) == 1 else None)
        selection = new

with side:
    detail_id = state.get_detail_id()
    if detail_id is not None:
        with st.container(border=True):
            row = frame.loc[detail_id].to_dict() if detail_id in frame.index else None
            opened = item_detail(ctx, detail_id, payload=row, key="explore.detail", columns=3,
                                 **objects_view.detail_options(ctx, detail_id, objects, key="explore.detail"))
            if opened is not None:
                state.set_detail_id(opened)
                st.rerun()
    rows = selection_rows(frame, selection, data.token)
    st.subheader(f"Selection · {len(rows):,}" if len(rows) else "Selection")
    if rows.empty:
        st.caption("Select points on the map (lasso or box) to see their images here.")
    else:
        selection_actions(ctx, rows)
        fields = objects_view.grid_fields(objects, colour_by, explore.COLOUR_FIXED)
        clicked = paged_grid(rows, key="explore.grid", columns=3, fields=fields, page_size=30)
        if clicked is not None:
            state.set_detail_id(clicked)
            st.rerun()

with map_col:
    view_table(frame, visible, rows, token=data.token, key="explore.table", extra=[colour_by])
view_state.sync_url(ctx.project, ctx.space, ctx.datasets, ctx.page)  # what this run opened (a clicked point)

with st.expander(f":material/troubleshoot: {OBJECT_PROBLEMS}" if objects else
                 ":material/troubleshoot: Problems: outliers, likely mislabels, error clusters, duplicates",
                 expanded=analysis is not None or found is not None):
    picked = None
    if objects:
        picked = object_problems_panel(ctx, found, key="explore.objproblems")
    elif analysis is None:
        st.caption("Press **Find problems** to score every point: outliers, likely mislabels, "
                   "clusters of model errors, near-duplicates.")
    else:
        picked = problems_panel(resources.analysis_on_map(data, analysis, ctx.project), key="explore.problems")
    if picked is not None:
        select_on_map(picked)
        state.set_detail_id(picked[0] if len(picked) == 1 else None)
        st.session_state[PROBLEM_PICK] = ("open" if len(picked) == 1 else "select", time.monotonic_ns())
        st.rerun()
bring_into_view(ctx, frame)

with fit_slot.container(), show_errors():
    spec = fit_spec(ctx, args, refit=False) if quick else None
    if spec is not None and not spec.actor.can(Permission.ANALYSE):  # its map would not be saved: no loop
        st.caption(f"The {method_label} map has not been computed yet; an editor's visit computes and saves it.")
    elif spec is not None and jobs_view.cancelled_here(FIT_JOB, spec):
        st.caption(f"The {method_label} fit was cancelled: the quick layout is shown.")
        if st.button(f"Compute the {method_label} map", key="explore.fit.again", icon=":material/map:"):
            jobs_view.start(FIT_JOB, spec)
            st.rerun()
    elif spec is not None:  # the quick layout is on screen: now fit the real map (or join its fit)
        jobs_view.start(FIT_JOB, spec)
    follow_fit(args)
