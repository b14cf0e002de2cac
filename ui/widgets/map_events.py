"""Map events from the browser (lasso / box region, click, zoom) as a few numbers, via a CCv2 listener.

st.plotly_chart(on_select="rerun") sends every selected point through the websocket (30 s for a
300k lasso); this listener sends only the lasso polygon or box (figure units), the clicked
(trace, point) and the viewport, and ui.widgets.scatter computes the ids on the server. It also
puts the Box / Lasso buttons back in the modebar (Streamlit drops them when on_select is off).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from ui import map_geometry as geo
from ui.widgets.hover_preview import chart_class

if TYPE_CHECKING:
    from ui.widgets.scatter import MapFigure

log = logging.getLogger(__name__)

JS_FILE = Path(__file__).with_name("map_events.js")
VIEW_DEBOUNCE_MS = 250


def _register() -> Any:
    try:
        from streamlit.components import v2 as components_v2
    except ImportError:
        log.warning("Streamlit %s has no st.components.v2: no map selection", st.__version__)
        return None
    if not JS_FILE.is_file():
        log.warning("%s is missing (package data not installed): no map selection", JS_FILE)
        return None
    return components_v2.component("embedscope.map_events", js=JS_FILE.read_text(encoding="utf-8"))


_component = _register()

# Scrolls the element with a CSS class into view once per nonce (a rerun that draws it again does not).
SCROLL_JS = """
export default function ({ parentElement, data }) {
  const host = parentElement.host || parentElement;
  const box = host.closest && host.closest('[data-testid="stElementContainer"]');
  if (box) box.style.display = "none";
  const seen = (window.__embedscopeScrolled = window.__embedscopeScrolled || {});
  if (!data || !data.target || seen[data.target] === data.nonce) return;
  seen[data.target] = data.nonce;
  const go = (tries) => {
    const el = document.querySelector("." + CSS.escape(data.target));
    if (el) el.scrollIntoView({ behavior: "smooth", block: "start" });
    else if (tries > 0) setTimeout(() => go(tries - 1), 100);
  };
  setTimeout(() => go(30), 50);
}
"""


def _register_scroll() -> Any:
    try:
        from streamlit.components import v2 as components_v2
    except ImportError:
        return None
    return components_v2.component("embedscope.scroll_to", js=SCROLL_JS)


_scroll = _register_scroll()


def scroll_into_view(key: str, nonce: int) -> None:
    """Scroll the page so that the element with `key` (e.g. the map) is at the top of the viewport:
    an action far below it (the Problems panel) shows its result. Once per nonce."""
    if _scroll is not None:
        _scroll(key=f"{key}.scroll", data={"target": chart_class(key), "nonce": nonce}, height=0)


def _events_key(key: str) -> str:
    return f"{key}.events"


def _picked_key(key: str) -> str:
    return f"{key}.picked"


def _view_key(key: str) -> str:
    return f"{key}.view"


def current_view(key: str) -> geo.View | None:
    """The viewport the browser last reported for the map `key` (None: the whole map)."""
    view = st.session_state.get(_view_key(key))
    return view if isinstance(view, geo.View) else None


def take_selection(key: str) -> list[str] | None:
    """The ids the user selected on the map since the last run (popped), or None."""
    return st.session_state.pop(_picked_key(key), None)


def parse_view(value: Any) -> geo.View | None:
    """A View from the browser's {x: [a, b], y: [c, d], w, h}, or None (autorange / malformed)."""
    if not isinstance(value, dict) or value.get("auto"):
        return None
    try:
        (x0, x1), (y0, y1) = (float(v) for v in value["x"][:2]), (float(v) for v in value["y"][:2])
        w, h = float(value.get("w") or 1000), float(value.get("h") or 600)
    except (KeyError, TypeError, ValueError):
        return None
    return geo.View(min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1), max(w, 50), max(h, 50))


def _on_select(key: str, built: MapFigure, index: pd.Index) -> None:
    from ui.widgets.scatter import region_ids

    region = (st.session_state.get(_events_key(key)) or {}).get("select")
    if not isinstance(region, dict):
        return
    if "view" in region:  # a double-click clears the selection and the zoom in one event
        st.session_state[_view_key(key)] = parse_view(region["view"])
    ids = [] if region.get("clear") else region_ids(built, index, region)
    st.session_state[_picked_key(key)] = ids


def _on_click(key: str, built: MapFigure, index: pd.Index) -> None:
    from ui.widgets.scatter import selected_ids

    click = (st.session_state.get(_events_key(key)) or {}).get("click")
    if not isinstance(click, dict) or click.get("rev") != built.revision:
        return  # a click on a figure that has since been replaced: its indices mean nothing now
    ids = selected_ids([{"curve_number": click.get("curve"), "point_index": click.get("index")}],
                       built.trace_rows, index)
    if ids:
        st.session_state[_picked_key(key)] = ids


def _on_view(key: str) -> None:
    value = (st.session_state.get(_events_key(key)) or {}).get("view")
    st.session_state[_view_key(key)] = parse_view(value)


def map_events(key: str, built: MapFigure, index: pd.Index, *, watch_view: bool) -> None:
    """Listen to the plotly chart `key` (drawn just before) for selections, clicks and zoom.

    The browser sends zoom changes only when the figure depends on the viewport (a large map
    drawn as density + sample, or a map with thumbnails to draw once zoomed in).
    """
    if _component is None:
        return
    watch = len(built.selectable) > 300 or built.view is not None
    view = built.view
    data = {"chart": chart_class(key), "rev": built.revision, "watch_view": watch,
            "debounce": VIEW_DEBOUNCE_MS,
            "view": None if view is None else [round(v) for v in (view.x0, view.x1, view.y0, view.y1)]}
    k = _events_key(key)
    _component(key=k, data=data, height=0,
               on_select_change=functools.partial(_on_select, key, built, index),
               on_click_change=functools.partial(_on_click, key, built, index),
               on_view_change=functools.partial(_on_view, key))
