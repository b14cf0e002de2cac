"""The Evaluate page's parts: scorecard table, per-class recall heat map, two maps linked by point id."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from pandas.io.formats.style import Styler

from core.auth import Permission
from core.jobs.work import JobSpec
from core.pipeline.evaluate import SCORE_COLUMNS, Scorecard
from core.pipeline.payload_cache import cache_folder as payload_folder
from core.pipeline.vector_cache import cache_folder
from ui import explore, jobs_view, resources
from ui.actor import current_actor
from ui.errors import show_errors
from ui.page import PageContext
from ui.text import md, plotly_text
from ui.widgets.scatter import scatter_map

METHODS = {"UMAP": "umap", "PCA": "pca"}
SIDES = ("left", "right")
LINKED = "evaluate.linked"  # list[str]: the point ids selected on either map (ringed on both)
LINKED_FROM = "evaluate.linked.from"  # str: the space they were selected in
BEST_STYLE = "font-weight: 700; background-color: rgba(46, 160, 67, 0.25)"
MAP_HEIGHT = 480
SCORECARD_JOB, FIT_JOB = "evaluate.scorecard", "evaluate.fit"  # keys of the jobs this page follows (ui.jobs_view)


def map_key(side: str) -> str:
    """The scatter widget key of one map (its lasso lands in `<key>.picked`, ui.widgets.map_events)."""
    return f"evaluate.map.{side}"


def start_scorecard(ctx: PageContext, sample: int, *, force: bool = False) -> None:
    """Score every space of the project on the chosen datasets as a background job (rows persisted in the
    store), or join the one running for the same data; follow_scorecard draws it."""
    from core.jobs.work import scorecard

    assert ctx.project is not None
    jobs_view.start(SCORECARD_JOB, scorecard(ctx.store, ctx.project, ctx.datasets, actor=current_actor(),
                                             sample=sample, force=force, cache_dir=cache_folder(ctx.settings),
                                             payload_cache=payload_folder(ctx.settings)))


def follow_scorecard() -> None:
    """The scorecard job this session follows: its progress (space by space, with an ETA) while it runs,
    the page rerunning at its end (stored() then reads its rows); its error raised (CoreError)."""
    jobs_view.track(SCORECARD_JOB, "Scoring the embedding spaces")


def stored(ctx: PageContext, sample: int) -> Scorecard:
    """The persisted, up-to-date scorecard rows (a few document reads; nothing is computed)."""
    from core.pipeline.evaluate import stored_scorecard

    assert ctx.project is not None
    return stored_scorecard(ctx.store, ctx.project, None, ctx.datasets, sample=sample)


def styled_table(table: pd.DataFrame) -> Styler:
    """The scorecard with the best value of each score column highlighted (ties: all of them)."""
    scores = [c for c in SCORE_COLUMNS if c in table.columns and table[c].notna().sum() > 1]
    return (table.style.highlight_max(subset=scores, props=BEST_STYLE)
            .format(precision=3, subset=[c for c in (*SCORE_COLUMNS, "noise") if c in table.columns], na_rep="–"))


def best_per_column(table: pd.DataFrame) -> dict[str, list[str]]:
    """{score column: the spaces holding its best value} (columns with fewer than 2 values skipped)."""
    out: dict[str, list[str]] = {}
    for column in SCORE_COLUMNS:
        values = table[column].dropna() if column in table.columns else pd.Series(dtype=float)
        if len(values) > 1:
            out[column] = [str(s) for s in values.index[values == values.max()]]
    return out


def recall_heatmap(recall: pd.DataFrame) -> go.Figure:
    """Spaces (rows) x classes (columns), the linear probe's recall of each class; blank = absent."""
    z = [[None if math.isnan(v) else round(float(v), 3) for v in row] for row in recall.to_numpy(dtype=float)]
    figure = go.Figure(go.Heatmap(
        z=z, x=[plotly_text(c) for c in recall.columns], y=[plotly_text(s) for s in recall.index],
        zmin=0, zmax=1, colorscale="Viridis", texttemplate="%{z:.2f}", hoverongaps=False,
        colorbar={"title": {"text": "recall"}},
        hovertemplate="space %{y}<br>class %{x}<br>recall %{z:.3f}<extra></extra>"))
    figure.update_layout(height=140 + 40 * len(recall), margin={"l": 8, "r": 8, "t": 36, "b": 8},
                         title={"text": "Per-class recall of the linear probe", "x": 0.01},
                         xaxis={"type": "category", "title": "class"}, yaxis={"type": "category"})
    return figure


def scorecard_section(card: Scorecard) -> None:
    """The best space, the table, what it was computed on, and the heat map."""
    if card.table.empty:
        st.info("No scorecard yet: press **Compute scorecard** to score every embedding space.")
        return
    st.success(md(card.best_line(), limit=None), icon=":material/trophy:")
    st.dataframe(styled_table(card.table), key="evaluate.table")
    st.caption(md(card.sample_line(), limit=None) + " Green: the best value of each column. knn_accuracy: "
               "leave-one-out kNN vote; probe_accuracy: cross-validated logistic regression; ari / nmi: "
               "clusters vs labels; trustworthiness: how well the persisted map keeps neighbourhoods.")
    if card.missing:
        st.info(f"Not scored yet (or changed since): {', '.join(md(s) for s in card.missing)}. "
                "Press **Compute scorecard** to score them.", icon=":material/pending:")
    if not card.recall.empty:
        st.plotly_chart(recall_heatmap(card.recall), key="evaluate.recall", width="stretch")


def _fit_spec(ctx: PageContext, space: str, method: str) -> JobSpec:
    from core.jobs.work import map_fit

    assert ctx.project is not None
    return map_fit(ctx.store, ctx.project, space, ctx.datasets, actor=current_actor(), method=method,
                   cache_dir=cache_folder(ctx.settings))


def _missing_map(ctx: PageContext, side: str, space: str, method: str) -> None:
    """No persisted map of this space: a button fits it as a background job (as Explore does), joined
    when someone already fits the same map; its progress shows here, and the page reruns when it ends."""
    key = f"{FIT_JOB}.{side}"
    spec = _fit_spec(ctx, space, method)
    running = jobs_view.registry().find(spec.key)
    if running is not None and running.running:  # someone (perhaps this session) fits it already: follow it
        jobs_view.start(key, spec)
    elif not spec.actor.can(Permission.ANALYSE):  # its map would not be saved
        st.info(f"No {method.upper()} map of {md(space)} yet; an editor's visit to Explore computes and saves it.",
                icon=":material/map:")
    else:
        st.info(f"No {method.upper()} map of {md(space)} yet.", icon=":material/map:")
        if st.button("Compute the map", key=f"evaluate.compute_map.{side}", icon=":material/scatter_plot:"):
            jobs_view.start(key, spec)
    if jobs_view.track(key, f"Computing the {method.upper()} map of {space}") is not None:
        st.rerun()  # saved: draw it (a failure is raised: linked_maps says it under this map)


def _map_panel(ctx: PageContext, side: str, space: str, method: str, linked: list[str]) -> list[str] | None:
    """One map with the linked ids ringed; returns the ids just lassoed on it (None: nothing new).
    Without a persisted map of this space, a button computes it (as Explore does)."""
    from core.pipeline import maps

    assert ctx.project is not None
    if not maps.has_map(ctx.store, ctx.project, space, ctx.datasets, method=method):
        _missing_map(ctx, side, space, method)
        return None
    data = resources.cached_map_data(ctx.project, space, ctx.datasets, method=method)
    colour_by = "label" if "label" in data.options else explore.AGREEMENT
    colour = resources.map_colour(data, colour_by if colour_by in data.options else data.options[0])
    return scatter_map(data.frame, colour, key=map_key(side), focus=linked, height=MAP_HEIGHT,
                       title=f"{method.upper()} of {space}", grid=data.grid, token=data.token)


def linked_maps(ctx: PageContext, spaces: list[str]) -> None:
    """Two spaces side by side; a lasso or box in either rings the same points (by id) in both."""
    top = st.columns([1, 1, 1], vertical_alignment="bottom")
    method = METHODS[top[0].selectbox("Projection", list(METHODS), key="evaluate.method")]
    chosen = [top[1 + i].selectbox(f"{side.title()} map", spaces, key=f"evaluate.space.{side}",
                                   index=min(i, len(spaces) - 1)) for i, side in enumerate(SIDES)]
    linked: list[str] = list(st.session_state.get(LINKED) or [])
    for column, side, space in zip(st.columns(2, gap="medium"), SIDES, chosen, strict=True):
        with column, show_errors():
            picked = _map_panel(ctx, side, space, method, linked)
            if picked is not None:  # ring them in both maps: draw again with the new selection
                st.session_state[LINKED] = list(picked)
                st.session_state[LINKED_FROM] = space
                st.rerun()
    _selection_summary(linked)


def _selection_summary(linked: list[str]) -> None:
    if not linked:
        st.caption("Lasso or box-select points on either map (toolbar): the same points are ringed on "
                   "the other, so you can see whether a group that is tight in one space stays together.")
        return
    origin = st.session_state.get(LINKED_FROM) or "a map"
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(f"**{len(linked):,}** points selected on {md(origin)}, ringed in both maps.")
    if right.button("Clear", key="evaluate.clear", icon=":material/close:"):
        st.session_state[LINKED] = []
        st.rerun()

