"""Thumbnails drawn on the map at their points' positions when few points are in view.

Plotly layout images with small data-URI JPEGs (core.thumbnails.INGEST_SIZE, made at ingest),
placed in figure units and sized from the viewport so each is about IMAGE_PX on screen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.thumbnails import INGEST_SIZE
from core.types import URI
from ui import images
from ui import map_geometry as geo

IMAGES_MAX = 300  # at most this many points in view get their thumbnail drawn
IMAGE_PX = 44  # on-screen size of one thumbnail


def _view_of(grid: np.ndarray, rows: np.ndarray, view: geo.View | None) -> geo.View:
    """The view, or the extent plotly's autorange shows for these rows (a little padding)."""
    if view is not None:
        return view
    gx, gy = grid[rows, 0].astype(np.float64), grid[rows, 1].astype(np.float64)
    pad_x, pad_y = max(np.ptp(gx) * 0.05, 50.0), max(np.ptp(gy) * 0.05, 50.0)
    return geo.View(gx.min() - pad_x, gx.max() + pad_x, gy.min() - pad_y, gy.max() + pad_y)


def layout_images(frame: pd.DataFrame, grid: np.ndarray, rows: np.ndarray,
                  view: geo.View | None) -> list[dict[str, Any]]:
    """Plotly layout.images for the `rows` in view (positions into frame / grid (n, 2) uint16),
    or [] when there are more than IMAGES_MAX of them or none has an image under the data roots."""
    if URI not in frame.columns or not 0 < len(rows) <= IMAGES_MAX:
        return []
    shown = _view_of(grid, rows, view)
    span_x, span_y = shown.span
    size_x, size_y = IMAGE_PX * span_x / shown.width_px, IMAGE_PX * span_y / shown.height_px
    uris = frame[URI].to_numpy(dtype=object)
    out: list[dict[str, Any]] = []
    for row in rows:
        uri = uris[row]
        src = images.data_uri(uri, INGEST_SIZE) if isinstance(uri, str) and uri else None
        if src is None:
            continue
        out.append({"source": src, "xref": "x", "yref": "y", "x": float(grid[row, 0]),
                    "y": float(grid[row, 1]), "sizex": size_x, "sizey": size_y,
                    "xanchor": "center", "yanchor": "middle", "sizing": "contain",
                    "layer": "above", "opacity": 1.0})
    return out
