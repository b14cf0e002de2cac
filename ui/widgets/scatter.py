"""The Explore map: a Plotly WebGL scatter (go.Scattergl) whose bytes do not grow past the screen.

What goes to the browser per drawn point is 4-5 bytes before base64: coordinates as uint16 grid
units (ui.map_geometry.quantise), numeric colours as uint8 codes, one trace per colour category,
no per-point strings (labels, keys and thumbnails come from the server on hover:
ui.widgets.hover_preview). Above DENSITY_MIN points in view the map is a log-density image plus a
random sample of points; zoomed in, the points in view; with few enough in view, their thumbnails
(ui.widgets.map_images). Selection, clicks and zoom come back through ui.widgets.map_events as a
polygon / box / viewport, and the ids are computed here, on the server.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.types import URI
from ui import map_geometry as geo
from ui.explore import GREY, MISSING, ColourSpec, PickedIds
from ui.text import plotly_text
from ui.widgets import map_events
from ui.widgets.hover_preview import hover_preview
from ui.widgets.map_images import IMAGES_MAX, layout_images

log = logging.getLogger(__name__)

CONTEXT = "filtered out"
HIGHLIGHT = "search results"
FOCUS = "selected"
DENSITY = "density"
DENSITY_MIN = 200_000  # more points than this in view: density image + SAMPLE points
SAMPLE = 100_000
# Over the density image the sample keeps at most DENSE_PER_CELL points per cell of a DENSE_BINS²
# grid over the view: a random sample would paint over the image's dark cores, where it matters.
DENSE_BINS, DENSE_PER_CELL = 128, 2
DENSITY_SCALE = [[0.0, "#d6d6d6"], [0.5, "#7a7a7a"], [1.0, "#111111"]]  # log count: light grey .. near black
PLOTLY_CONFIG: dict[str, Any] = {
    "scrollZoom": True,
    "displaylogo": False,
    "modeBarButtonsToRemove": ["autoScale2d", "toggleSpikelines", "hoverCompareCartesian",
                               "hoverClosestCartesian"],
}
NAME_HOVER = "%{fullData.name}<extra></extra>"  # the category only: details come from the server


@dataclass(frozen=True)
class MapFigure:
    """A built figure; per trace, the frame row positions of its points (None: not pickable).

    grid: (n, 2) uint16 figure coordinates of every frame row; selectable: the rows a lasso can
    select (the visible ones, drawn or not); view: the viewport it was drawn for.
    """

    figure: go.Figure
    trace_rows: list[np.ndarray | None]
    revision: str
    grid: np.ndarray
    selectable: np.ndarray
    view: geo.View | None = None
    dense: bool = False


def marker_size(n: int) -> float:
    """Marker diameter in px: big for a few hundred points, small for 100k (less overdraw)."""
    if n <= 2_000:
        return 7.0
    if n <= 20_000:
        return 4.5
    if n <= 100_000:
        return 3.0
    return 2.0


def _trace(grid: np.ndarray, rows: np.ndarray, name: str, *, size: float, **marker: Any) -> go.Scattergl:
    """One trace of binary arrays; `name` is plain text (a label, a value): escaped here."""
    return go.Scattergl(
        x=np.ascontiguousarray(grid[rows, 0]), y=np.ascontiguousarray(grid[rows, 1]), mode="markers",
        name=plotly_text(name), hovertemplate=NAME_HOVER,
        marker={"size": size, "opacity": 0.85, "line": {"width": 0}, **marker},
    )


def _categorical(grid: np.ndarray, colour: ColourSpec, rows: np.ndarray,
                 size: float) -> tuple[list[go.Scattergl], list[np.ndarray | None]]:
    assert colour.codes is not None
    traces: list[go.Scattergl] = []
    trace_rows: list[np.ndarray | None] = []
    codes = colour.codes[rows]
    for i, (category, col) in enumerate(zip(colour.categories, colour.colours, strict=True)):
        members = rows[codes == i]
        if len(members) == 0:
            continue
        if category == MISSING:  # unlabeled: light, small, and hollow where markers are big enough to see it
            hollow = {"symbol": "circle-open", "line": {"width": 1, "color": col}} if size >= 4 else {}
            trace = _trace(grid, members, category, size=max(size - 1.5, 2.0), color=col, **hollow)
        else:
            trace = _trace(grid, members, category, size=size, color=col)
        trace.legendrank = 1000 + (colour.legend_rank[i] if colour.legend_rank else i)
        traces.append(trace)
        trace_rows.append(members)
    return traces, trace_rows


def _numeric(grid: np.ndarray, colour: ColourSpec, rows: np.ndarray,
             size: float) -> tuple[list[go.Scattergl], list[np.ndarray | None]]:
    assert colour.values is not None
    traces: list[go.Scattergl] = []
    trace_rows: list[np.ndarray | None] = []
    values = colour.values[rows]
    missing = rows[np.isnan(values)]
    if len(missing):
        traces.append(_trace(grid, missing, MISSING, size=size, color=GREY))
        trace_rows.append(missing)
    present = rows[~np.isnan(values)]
    present = present[np.argsort(colour.values[present], kind="stable")]  # high values on top
    finite = colour.values[~np.isnan(colour.values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    # uint8 codes (1 byte a point) on a fixed 0..255 scale; the colour bar shows the real values.
    codes = np.rint((colour.values[present] - lo) * (255 / (hi - lo) if hi > lo else 0.0)).astype(np.uint8)
    ticks = np.linspace(0, 255, 5)
    trace = _trace(grid, present, colour.by, size=size, color=codes, cmin=0, cmax=255,
                   colorscale=colour.colorscale, showscale=True,
                   colorbar={"title": {"text": plotly_text(colour.by)}, "thickness": 14,
                             "tickvals": ticks.tolist(),
                             "ticktext": [f"{lo + t / 255 * (hi - lo):.3g}" for t in ticks]})
    trace.showlegend = False
    traces.append(trace)
    trace_rows.append(present)
    return traces, trace_rows


def _legend(colour: ColourSpec) -> dict[str, Any]:
    """Categories: a titled legend on the right. A numeric colour has its colour bar there, so the few
    legend entries left (missing values, search results, selected, filtered out) go in a row below."""
    if colour.kind == "numeric":
        return {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.01, "yanchor": "top",
                "itemsizing": "constant"}
    return {"title": {"text": plotly_text(colour.by)}, "itemsizing": "constant", "tracegroupgap": 2}


def _overlay(frame: pd.DataFrame, grid: np.ndarray, ids: Sequence[str], name: str,
             colour: str, size: float) -> tuple[go.Scattergl, np.ndarray] | None:
    rows = np.flatnonzero(frame.index.isin(list(ids)))
    if len(rows) == 0:
        return None
    trace = _trace(grid, rows, name, size=size + 6, color=colour, symbol="circle-open")
    trace.marker.line = {"width": 2, "color": colour}
    trace.marker.opacity = 1.0
    trace.legendrank = 3000
    return trace, rows


def _density_trace(grid: np.ndarray, rows: np.ndarray, view: geo.View | None) -> go.Heatmap:
    z, (x0, dx), (y0, dy) = geo.density(grid, rows, view)
    return go.Heatmap(z=z, x0=x0, dx=dx, y0=y0, dy=dy, name=DENSITY, colorscale=DENSITY_SCALE,
                      zmin=0, showscale=False, hoverinfo="skip", opacity=1.0, zsmooth=False)


def _thinned(grid: np.ndarray, rows: np.ndarray, view: geo.View | None) -> np.ndarray:
    """The points drawn over the density image: sparse regions (outliers) in full, dense ones at most
    DENSE_PER_CELL a cell, then at most SAMPLE of them; random within a cell, stable across reruns."""
    x0, x1, y0, y1 = (0.0, float(geo.GRID), 0.0, float(geo.GRID)) if view is None else \
        (view.x0, view.x1, view.y0, view.y1)
    cx = ((grid[rows, 0] - x0) * (DENSE_BINS / max(x1 - x0, 1.0))).astype(np.int64).clip(0, DENSE_BINS - 1)
    cy = ((grid[rows, 1] - y0) * (DENSE_BINS / max(y1 - y0, 1.0))).astype(np.int64).clip(0, DENSE_BINS - 1)
    cell = (cy * DENSE_BINS + cx).astype(np.uint16)
    shuffled = np.random.default_rng(0).permutation(len(rows))
    order = shuffled[np.argsort(cell[shuffled], kind="stable")]  # by cell, random within (radix: O(n))
    starts = np.flatnonzero(np.r_[True, np.diff(cell[order].astype(np.int32)) != 0])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    return geo.sample(rows[np.sort(order[rank < DENSE_PER_CELL])], SAMPLE)


def _revision(frame: pd.DataFrame, colour: ColourSpec, visible: np.ndarray, *parts: Any) -> str:
    digest = hashlib.sha1()
    digest.update(repr((len(frame), colour.by, colour.kind, *parts)).encode())
    digest.update(np.packbits(visible).tobytes())
    digest.update(np.ascontiguousarray(frame["x"].to_numpy(dtype=np.float32)[:1000]).tobytes())
    return digest.hexdigest()[:16]


def map_grid(frame: pd.DataFrame) -> np.ndarray:
    """(n, 2) uint16 figure coordinates of the frame's x, y (ui.map_geometry.quantise)."""
    return geo.quantise(frame["x"].to_numpy(), frame["y"].to_numpy())


def build_figure(frame: pd.DataFrame, colour: ColourSpec, *, visible: np.ndarray | None = None,
                 highlight: Sequence[str] = (), focus: Sequence[str] = (), title: str = "",
                 height: int = 640, uirevision: str = "map", view: geo.View | None = None,
                 images: bool = False, mosaic: bool = False, grid: np.ndarray | None = None,
                 highlight_name: str = HIGHLIGHT) -> MapFigure:
    """The map figure of `frame` (columns x, y + payload; see ui.explore.build_map_frame).

    visible: (n,) bool; hidden rows are drawn as a grey, non-selectable "filtered out" context.
    highlight: ids ringed in black (search results); focus: ids ringed in magenta (a selection
    made elsewhere, e.g. from the Problems panel). title: plain text (escaped here, like every
    trace name and the legend title). view: the viewport (figure units) the browser shows: above
    DENSITY_MIN points in it, a density image and a SAMPLE of them are drawn. images: draw the
    thumbnails of the points in view when there are few (ui.widgets.map_images); with mosaic too,
    a mosaic of representative thumbnails when there are many.
    grid: map_grid(frame) when the caller has it already.
    """
    n = len(frame)
    visible = np.ones(n, dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    grid = map_grid(frame) if grid is None else grid
    shown = geo.in_view(grid, np.flatnonzero(visible), view)
    dense = len(shown) > DENSITY_MIN
    drawn = _thinned(grid, shown, view) if dense else shown
    size = 2.0 if dense else marker_size(len(drawn))
    traces: list[go.BaseTraceType] = []
    trace_rows: list[np.ndarray | None] = []
    if dense:
        traces.append(_density_trace(grid, shown, view))
        trace_rows.append(None)
    context = geo.sample(geo.in_view(grid, np.flatnonzero(~visible), view), SAMPLE)
    if len(context):
        traces.append(go.Scattergl(x=np.ascontiguousarray(grid[context, 0]),
                                   y=np.ascontiguousarray(grid[context, 1]), mode="markers",
                                   name=CONTEXT, hoverinfo="skip", legendrank=2000,
                                   marker={"size": max(size - 1, 2), "color": "#e3e3e3",
                                           "opacity": 0.5}))
        trace_rows.append(None)
    build = _categorical if colour.kind == "categorical" else _numeric
    colour_traces, colour_rows = build(grid, colour, drawn, size)
    traces += colour_traces
    trace_rows += colour_rows
    for ids, name, col in ((highlight, highlight_name, "#111111"), (focus, FOCUS, "#e7298a")):
        overlay = _overlay(frame, grid, ids, name, col, size)
        if overlay is not None:
            traces.append(overlay[0])
            trace_rows.append(overlay[1])
    figure = go.Figure(data=traces)
    figure.update_layout(
        height=height, margin={"l": 8, "r": 8, "t": 48, "b": 8}, hovermode="closest",
        title={"text": plotly_text(title, limit=200), "x": 0.01, "font": {"size": 16}},
        uirevision=uirevision, legend=_legend(colour), dragmode="lasso",
    )
    if colour.kind == "numeric":  # room for the legend under the plot
        figure.update_layout(margin={"b": 40})
    if images and (mosaic or not dense):
        figure.update_layout(images=layout_images(frame, grid, shown, view, mosaic=mosaic))
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "title": None}
    figure.update_xaxes(**axis)
    figure.update_yaxes(**axis)
    if view is not None:  # a new figure remounts the chart: show the view the user zoomed to, not autorange
        figure.update_xaxes(range=[view.x0, view.x1])
        figure.update_yaxes(range=[view.y0, view.y1])
    revision = _revision(frame, colour, visible, tuple(highlight[:200]), len(highlight),
                         tuple(focus[:200]), len(focus), title, view, dense, images, mosaic)
    return MapFigure(figure, trace_rows, revision, grid, np.flatnonzero(visible), view, dense)


def selected_ids(points: Sequence[dict[str, Any]], trace_rows: Sequence[np.ndarray | None],
                 index: pd.Index) -> list[str]:
    """Map plotly points ({curve_number, point_index}) back to frame ids, deduplicated in order;
    points of non-selectable traces (context, density) and out-of-range values are skipped."""
    out: dict[str, None] = {}
    for point in points:
        curve, position = point.get("curve_number"), point.get("point_index")
        if not isinstance(curve, int) or not isinstance(position, int) or not 0 <= curve < len(trace_rows):
            continue
        rows = trace_rows[curve]
        if rows is None or not 0 <= position < len(rows):
            continue
        out[str(index[rows[position]])] = None
    return list(out)


def region_ids(built: MapFigure, index: pd.Index, region: dict[str, Any]) -> list[str]:
    """The ids of the selectable rows inside a lasso {"lasso": {"x": [...], "y": [...]}} or a box
    {"box": {"x": [a, b], "y": [c, d]}} in figure units, in frame order; [] for anything else.
    A PickedIds: the rows' positions in `index` come along (no id lookup on the next rerun)."""
    lasso, box = region.get("lasso"), region.get("box")
    try:
        if isinstance(lasso, dict):
            rows = geo.in_polygon(built.grid, built.selectable, lasso["x"], lasso["y"])
        elif isinstance(box, dict):
            rows = geo.in_box(built.grid, built.selectable, box["x"], box["y"])
        else:
            return []
    except (KeyError, TypeError, ValueError, IndexError):  # malformed input from the browser
        log.warning("ignoring a malformed selection region")
        return []
    rows = np.asarray(rows, dtype=np.int64)
    return PickedIds(index[rows].astype(str).tolist(), rows, index)


def _mask_digest(mask: np.ndarray | None) -> str | None:
    return None if mask is None else hashlib.sha1(np.packbits(np.asarray(mask, dtype=bool)).tobytes()).hexdigest()


def _memo_figure(key: str, token: str | None, frame: pd.DataFrame, colour: ColourSpec,
                 **kwargs: Any) -> MapFigure:
    """build_figure, reused while nothing it depends on changed (a rerun after a lasso or a click
    draws the same figure: at 1M points building it costs ~1 s). token names frame + grid (e.g.
    ui.explore.MapData.token); None: always built."""
    if token is None:
        return build_figure(frame, colour, **kwargs)
    signature = (token, colour.by, colour.kind, _mask_digest(kwargs.get("visible")),
                 hashlib.sha1(repr([v for k, v in sorted(kwargs.items()) if k not in ("visible", "grid")])
                              .encode()).hexdigest())
    memo = st.session_state.get(f"{key}.figure")
    if isinstance(memo, tuple) and memo[0] == signature:
        return memo[1]  # type: ignore[no-any-return]
    built = build_figure(frame, colour, **kwargs)
    st.session_state[f"{key}.figure"] = (signature, built)
    return built


def scatter_map(frame: pd.DataFrame, colour: ColourSpec, *, key: str,
                visible: np.ndarray | None = None, highlight: Sequence[str] = (),
                focus: Sequence[str] = (), title: str = "", height: int = 640,
                thumbnails: bool = True, grid: np.ndarray | None = None,
                token: str | None = None, highlight_name: str = HIGHLIGHT) -> list[str] | None:
    """Draw the map and return the ids the user just selected on it.

    thumbnails: hovering a point shows its thumbnail (ui.widgets.hover_preview), and zoomed in
    on a few points their thumbnails are drawn on the map, zoomed out a mosaic of representative
    ones (ui.widgets.map_images).
    grid: map_grid(frame) when the caller has it; token: a name for (frame, grid, colour.by)
    that changes when any of them does (ui.explore.MapData.token): the figure is then reused
    across reruns while nothing it depends on changed.

    Returns None when the user did not select anything since the last run (so a selection made
    elsewhere is kept), or the new selection (an empty list when the user cleared it). The
    selection is computed here from the lasso / box region the browser sent (map_events), never
    from a list of points through the websocket.
    """
    view = map_events.current_view(key)
    built = _memo_figure(key, token, frame, colour, visible=visible, highlight=tuple(highlight),
                         focus=tuple(focus), title=title, height=height, uirevision=key, view=view,
                         images=thumbnails, mosaic=thumbnails, grid=grid, highlight_name=highlight_name)
    st.plotly_chart(built.figure, key=key, on_select="ignore", config=PLOTLY_CONFIG, width="stretch")
    picked = map_events.take_selection(key)
    images = thumbnails and URI in frame.columns and len(built.selectable) > IMAGES_MAX
    map_events.map_events(key, built, frame.index, watch_view=images or len(built.selectable) > DENSITY_MIN)
    if thumbnails:
        hover_preview(frame, built.trace_rows, built.revision, chart_key=key)
    return picked
