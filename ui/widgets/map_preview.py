"""The map's shape as a density picture drawn on the server: what Explore shows first of a big map."""

from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st
from PIL import Image

from ui.text import md

# The picture's container key (CSS class st-key-map-preview): benchmarks/scale.py finds it by it.
PREVIEW_KEY = "map-preview"
WIDTH, HEIGHT = 1200, 640
_EMPTY, _LIGHTEST, _DARKEST = 255, 215, 15  # grey levels: no point, one point, the densest pixel


def density_png(coords: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A greyscale PNG of the points' log density (white: none, light grey: one, near black: the
    densest pixel), y pointing up like the map. 1M points: ~0.1 s and ~100 kB."""
    xy = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    image = np.full((height, width), _EMPTY, dtype=np.uint8)
    if len(xy):
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        cols = np.minimum(((xy[:, 0] - lo[0]) / span[0] * (width - 1)).astype(np.int64), width - 1)
        rows = np.minimum(((hi[1] - xy[:, 1]) / span[1] * (height - 1)).astype(np.int64), height - 1)
        counts = np.bincount(rows * width + cols, minlength=width * height).reshape(height, width)
        level = np.log1p(counts) / np.log1p(max(int(counts.max()), 1))
        shade = _LIGHTEST - level * (_LIGHTEST - _DARKEST)
        image = np.where(counts > 0, shade, _EMPTY).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(image, mode="L").save(out, format="PNG")
    return out.getvalue()


def preview_picture(coords: np.ndarray, *, title: str) -> None:
    """The density picture under its title. It travels inside the page's message as a data URI:
    a chart waits for plotly.js to load and WebGL to start in the browser, and an st.image file
    for a second request that the server answers late while the same run reads 1M payloads (first
    picture at 1M, measured in Chromium: chart 5.3 s, st.image 8.6 s cold); the interactive map
    replaces it in the same run."""
    uri = "data:image/png;base64," + base64.b64encode(density_png(coords)).decode("ascii")
    with st.container(key=PREVIEW_KEY):
        st.caption(md(title, limit=200))
        st.markdown(f'<img src="{uri}" alt="density of the map" style="width: 100%">', unsafe_allow_html=True)
