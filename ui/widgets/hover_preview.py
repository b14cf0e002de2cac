"""Hover previews on the map: a CCv2 component fetching one thumbnail + caption per hovered point."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.config import Settings
from core.display import shorten
from core.types import BOX, CONFIDENCE, DATASET, KEY, LABEL, MATCH, PREDICTION, URI
from ui import crops

log = logging.getLogger(__name__)

THUMB_SIZE = 160
DEBOUNCE_MS = 120
JS_FILE = Path(__file__).with_name("hover_preview.js")


def _register() -> Any:
    """The CCv2 mount callable, or None (with a warning) where it cannot work: Streamlit before
    Custom Components v2, or an install that left the .js asset out. The map works without it."""
    try:
        from streamlit.components import v2 as components_v2
    except ImportError:
        log.warning("Streamlit %s has no st.components.v2: no hover thumbnails", st.__version__)
        return None
    if not JS_FILE.is_file():
        log.warning("%s is missing (package data not installed): no hover thumbnails", JS_FILE)
        return None
    # Registered once at import; the JS is our own trusted file, never user input.
    return components_v2.component("embedscope.hover_preview",
                                   js=JS_FILE.read_text(encoding="utf-8"))


_component = _register()


@dataclass(frozen=True)
class HoverSource:
    """What the hover lookup needs from one drawn figure: its trace rows and the map frame."""

    trace_rows: Sequence[np.ndarray | None]
    frame: pd.DataFrame
    revision: str


def _text(value: Any) -> str | None:
    if value is None or (np.isscalar(value) and pd.isna(value)):
        return None
    text = shorten(value).strip()  # shown with textContent (never HTML), but one short line
    return text or None


def caption(row: pd.Series) -> str:
    """One line for a point: "label · pred 7 (0.93) · dataset · key" (fields it has)."""
    pred = _text(row.get(PREDICTION))
    if pred is not None:
        confidence = pd.to_numeric(pd.Series([row.get(CONFIDENCE)]), errors="coerce").iloc[0]
        pred = f"pred {pred}" + ("" if pd.isna(confidence) else f" ({float(confidence):.2f})")
    # MATCH: a detection object's match status (tp, missed, ...); images have none.
    parts = (_text(row.get(LABEL)), pred, _text(row.get(MATCH)), _text(row.get(DATASET)), _text(row.get(KEY)))
    return " · ".join(t for t in parts if t)


def hover_payload(trace_rows: Sequence[np.ndarray | None], frame: pd.DataFrame, curve: Any,
                  point: Any, *, size: int = THUMB_SIZE,
                  settings: Settings | None = None) -> dict[str, Any] | None:
    """{curve, index, id, src, caption} for the point plotly reports as (curve, point), or None.

    trace_rows: per trace, the frame row positions of its points (ui.widgets.scatter.MapFigure);
    frame: the map frame (a `uri` column when items have images). The ids come from the browser,
    so anything out of range or of the wrong type is None. src is a data: URI made by
    ui.images.data_uri, which only reads files under the configured data roots; None when the
    point has no image (text items, own vectors) or it cannot be served. caption: the point's
    fields (the figure carries no per-point text: this is where they come from).
    """
    if any(not isinstance(v, int) or isinstance(v, bool) for v in (curve, point)):
        return None
    if not 0 <= curve < len(trace_rows):
        return None
    rows = trace_rows[curve]
    if rows is None or not 0 <= point < len(rows):
        return None
    row = frame.iloc[int(rows[point])]
    uri = row.get(URI) if URI in frame.columns else None
    src = crops.point_data_uri(frame.index[int(rows[point])], uri, row.get(BOX), size, settings)  # objects: crops
    return {"curve": curve, "index": point, "id": str(frame.index[int(rows[point])]),
            "src": src, "caption": caption(row)}


def chart_class(chart_key: str) -> str:
    """The CSS class Streamlit puts on a keyed element (its frontend maps other chars to '-')."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", chart_key.strip())


def _reply_key(key: str) -> str:
    return f"{key}.reply"


def _on_hover(key: str, source: HoverSource) -> None:
    """The hover trigger's callback: runs before the fragment, so the reply goes out this run."""
    request = (st.session_state.get(key) or {}).get("hover")
    if not isinstance(request, dict) or request.get("rev") != source.revision:
        return  # a hover on a figure that has since been replaced
    curve, point = request.get("curve"), request.get("index")
    payload = hover_payload(source.trace_rows, source.frame, curve, point)
    # "No image" is an answer too: the browser caches it and stops asking for that point.
    reply = payload or {"curve": curve, "index": point, "src": None}
    st.session_state[_reply_key(key)] = {**reply, "rev": source.revision}


@st.fragment
def _hover_fragment(key: str, chart_key: str, source: HoverSource) -> None:
    # A fragment: a hover reruns only this function (a few ms), never the page.
    data = {"chart": chart_class(chart_key), "rev": source.revision, "debounce": DEBOUNCE_MS,
            "reply": st.session_state.get(_reply_key(key))}
    _component(key=key, data=data, height=0,
               on_hover_change=functools.partial(_on_hover, key, source))


def hover_preview(frame: pd.DataFrame, trace_rows: Sequence[np.ndarray | None], revision: str, *,
                  chart_key: str) -> None:
    """Show the hovered point's thumbnail and fields next to the cursor on the chart `chart_key`.

    Call right after st.plotly_chart(..., key=chart_key) with the figure's trace_rows and
    revision (ui.widgets.scatter.MapFigure). Nothing is sent until a point is hovered; each
    hover then costs one fragment rerun and one thumbnail (~5 KB).
    """
    if _component is None:
        return
    key = f"{chart_key}.hover"
    st.session_state.pop(_reply_key(key), None)  # a full run: replies of older figures are stale
    _hover_fragment(key, chart_key, HoverSource(trace_rows, frame, revision))
