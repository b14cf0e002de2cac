"""The Explore map: a Plotly WebGL scatter (go.Scattergl) with box / lasso / click selection.

Bytes sent to the browser stay small: coordinates are float32 numpy arrays (plotly serialises
them as base64 typed arrays), one trace per colour category (no per-point colour strings), and
the only per-point strings are the short hover texts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui.explore import GREY, MISSING, ColourSpec, hover_text
from ui.text import plotly_text
from ui.widgets.hover_preview import hover_preview

log = logging.getLogger(__name__)

CONTEXT = "filtered out"
HIGHLIGHT = "search results"
FOCUS = "selected"
SELECTION_MODES: tuple[Literal["box", "lasso", "points"], ...] = ("box", "lasso", "points")
PLOTLY_CONFIG: dict[str, Any] = {
    "scrollZoom": True,
    "displaylogo": False,
    "modeBarButtonsToRemove": ["autoScale2d", "toggleSpikelines", "hoverCompareCartesian",
                               "hoverClosestCartesian"],
}


@dataclass(frozen=True)
class MapFigure:
    """A built figure and, per trace, the frame row positions of its points (None: not selectable)."""

    figure: go.Figure
    trace_rows: list[np.ndarray | None]
    revision: str


def marker_size(n: int) -> float:
    """Marker diameter in px: big for a few hundred points, small for 100k (less overdraw)."""
    if n <= 2_000:
        return 7.0
    if n <= 20_000:
        return 4.5
    if n <= 100_000:
        return 3.0
    return 2.0


def _xy(frame: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Rounded float32: 8 bytes a point as base64, and no false precision (axes mean nothing).
    x = np.round(frame["x"].to_numpy(dtype=np.float32)[rows], 3).astype(np.float32)
    y = np.round(frame["y"].to_numpy(dtype=np.float32)[rows], 3).astype(np.float32)
    return x, y


Hover = tuple[np.ndarray, np.ndarray]  # (label, details) strings per frame row
HOVER_TEMPLATE = "<b>%{text}</b><br>%{hovertext}<extra>%{fullData.name}</extra>"


def _trace(frame: pd.DataFrame, rows: np.ndarray, hover: Hover, name: str, *,
           size: float, **marker: Any) -> go.Scattergl:
    """One trace; `name` is plain text (a label, a metadata value): escaped for plotly here."""
    x, y = _xy(frame, rows)
    return go.Scattergl(
        x=x, y=y, mode="markers", name=plotly_text(name), text=hover[0][rows],
        hovertext=hover[1][rows],
        hovertemplate=HOVER_TEMPLATE,
        marker={"size": size, "opacity": 0.85, "line": {"width": 0}, **marker},
    )


def _colour_traces(frame: pd.DataFrame, colour: ColourSpec, rows: np.ndarray, hover: Hover,
                   size: float) -> tuple[list[go.Scattergl], list[np.ndarray | None]]:
    traces: list[go.Scattergl] = []
    trace_rows: list[np.ndarray | None] = []
    if colour.kind == "categorical":
        assert colour.codes is not None
        codes = colour.codes[rows]
        for i, (category, col) in enumerate(zip(colour.categories, colour.colours, strict=True)):
            members = rows[codes == i]
            if len(members) == 0:
                continue
            trace = _trace(frame, members, hover, category, size=size, color=col)
            trace.legendrank = 1000 + (colour.legend_rank[i] if colour.legend_rank else i)
            traces.append(trace)
            trace_rows.append(members)
        return traces, trace_rows
    assert colour.values is not None
    values = colour.values[rows]
    missing = rows[np.isnan(values)]
    if len(missing):
        traces.append(_trace(frame, missing, hover, MISSING, size=size, color=GREY))
        trace_rows.append(missing)
    present = rows[~np.isnan(values)]
    present = present[np.argsort(colour.values[present], kind="stable")]  # high values on top
    trace = _trace(frame, present, hover, colour.by, size=size,
                   color=colour.values[present].astype(np.float32), colorscale=colour.colorscale,
                   showscale=True,
                   colorbar={"title": {"text": plotly_text(colour.by)}, "thickness": 14})
    trace.hovertemplate = ("<b>%{text}</b><br>%{hovertext}<br>" + plotly_text(colour.by)
                           + ": %{marker.color:.3f}<extra></extra>")
    trace.showlegend = False
    traces.append(trace)
    trace_rows.append(present)
    return traces, trace_rows


def _overlay(frame: pd.DataFrame, ids: Sequence[str], hover: Hover, name: str,
             colour: str, size: float) -> tuple[go.Scattergl, np.ndarray] | None:
    rows = np.flatnonzero(frame.index.isin(list(ids)))
    if len(rows) == 0:
        return None
    trace = _trace(frame, rows, hover, name, size=size + 6, color=colour, symbol="circle-open")
    trace.marker.line = {"width": 2, "color": colour}
    trace.marker.opacity = 1.0
    trace.legendrank = 3000
    return trace, rows


def _revision(frame: pd.DataFrame, colour: ColourSpec, visible: np.ndarray, *parts: Any) -> str:
    digest = hashlib.sha1()
    digest.update(repr((len(frame), colour.by, colour.kind, *parts)).encode())
    digest.update(np.packbits(visible).tobytes())
    digest.update(np.ascontiguousarray(frame["x"].to_numpy(dtype=np.float32)[:1000]).tobytes())
    return digest.hexdigest()[:16]


def build_figure(frame: pd.DataFrame, colour: ColourSpec, *, visible: np.ndarray | None = None,
                 highlight: Sequence[str] = (), focus: Sequence[str] = (), title: str = "",
                 height: int = 640, uirevision: str = "map") -> MapFigure:
    """The map figure of `frame` (columns x, y + payload; see ui.explore.build_map_frame).

    visible: (n,) bool; hidden rows are drawn as a grey, non-selectable "filtered out" context.
    highlight: ids ringed in black (search results); focus: ids ringed in magenta (a selection
    made elsewhere, e.g. from the Problems panel). title: plain text (escaped here, like every
    trace name and the legend title).
    """
    n = len(frame)
    visible = np.ones(n, dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    size = marker_size(int(visible.sum()))
    hover = hover_text(frame)
    traces: list[go.Scattergl] = []
    trace_rows: list[np.ndarray | None] = []
    context = np.flatnonzero(~visible)
    if len(context):
        x, y = _xy(frame, context)
        traces.append(go.Scattergl(x=x, y=y, mode="markers", name=CONTEXT, hoverinfo="skip",
                                   legendrank=2000, marker={"size": max(size - 1, 2),
                                                            "color": "#e3e3e3", "opacity": 0.5}))
        trace_rows.append(None)
    colour_traces, colour_rows = _colour_traces(frame, colour, np.flatnonzero(visible), hover,
                                                size)
    traces += colour_traces
    trace_rows += colour_rows
    for ids, name, col in ((highlight, HIGHLIGHT, "#111111"), (focus, FOCUS, "#e7298a")):
        overlay = _overlay(frame, ids, hover, name, col, size)
        if overlay is not None:
            traces.append(overlay[0])
            trace_rows.append(overlay[1])
    figure = go.Figure(data=traces)
    figure.update_layout(
        height=height, margin={"l": 8, "r": 8, "t": 48, "b": 8}, hovermode="closest",
        title={"text": plotly_text(title, limit=200), "x": 0.01, "font": {"size": 16}},
        uirevision=uirevision, legend={"title": {"text": plotly_text(colour.by)},
                                       "itemsizing": "constant", "tracegroupgap": 2},
        dragmode="lasso",
    )
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "title": None}
    figure.update_xaxes(**axis)
    figure.update_yaxes(**axis)
    revision = _revision(frame, colour, visible, tuple(highlight[:200]), len(highlight),
                         tuple(focus[:200]), len(focus), title)
    return MapFigure(figure, trace_rows, revision)


def selected_ids(points: Sequence[dict[str, Any]], trace_rows: Sequence[np.ndarray | None],
                 index: pd.Index) -> list[str]:
    """Map plotly selection points ({curve_number, point_index}) back to frame ids, deduplicated
    in selection order; points of non-selectable traces (context) are skipped."""
    out: dict[str, None] = {}
    for point in points:
        curve, position = point.get("curve_number"), point.get("point_index")
        if curve is None or position is None or not 0 <= curve < len(trace_rows):
            continue
        rows = trace_rows[curve]
        if rows is None or not 0 <= position < len(rows):
            continue
        out[str(index[rows[position]])] = None
    return list(out)


def scatter_map(frame: pd.DataFrame, colour: ColourSpec, *, key: str,
                visible: np.ndarray | None = None, highlight: Sequence[str] = (),
                focus: Sequence[str] = (), title: str = "", height: int = 640,
                thumbnails: bool = True) -> list[str] | None:
    """Draw the map and return the ids the user just selected on it.

    thumbnails: hovering a point with an image shows its thumbnail (ui.widgets.hover_preview).

    Returns None when the selection did not change since the last run (so a selection made
    elsewhere is kept), or the new selection (an empty list when the user cleared it).
    """
    built = build_figure(frame, colour, visible=visible, highlight=highlight, focus=focus,
                         title=title, height=height, uirevision=key)
    event = st.plotly_chart(built.figure, key=key, on_select="rerun",
                            selection_mode=SELECTION_MODES, config=PLOTLY_CONFIG, width="stretch")
    if thumbnails:
        hover_preview(frame, built.trace_rows, built.revision, chart_key=key)
    event_data: dict[str, Any] = dict(event) if event else {}
    points = list((event_data.get("selection") or {}).get("points") or [])
    signature = hashlib.sha1(repr([(p.get("curve_number"), p.get("point_index"))
                                   for p in points]).encode()).hexdigest()
    last_key = f"{key}.last_event"
    last = st.session_state.get(last_key)
    st.session_state[last_key] = (built.revision, signature)
    if last is None or last[0] != built.revision:
        # A new figure starts with an empty selection: that is not the user clearing one.
        return selected_ids(points, built.trace_rows, frame.index) if points else None
    if last[1] == signature:
        return None
    return selected_ids(points, built.trace_rows, frame.index)
