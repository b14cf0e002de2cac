"""Thumbnails drawn on the map: every point's when few are in view, a mosaic of representatives when many.

Plotly layout images with small data-URI JPEGs (core.thumbnails.INGEST_SIZE, made at ingest),
placed in figure units and sized from the viewport so each is about IMAGE_PX on screen. Zoomed
out, the mosaic shows what each region holds: per occupied cell of a coarse grid over the view, the
image of the point nearest the cell's centre of mass (the MOSAIC_MAX most populated cells).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.thumbnails import INGEST_SIZE
from core.types import BOX, URI
from ui import crops
from ui import map_geometry as geo

IMAGES_MAX = 300  # at most this many points in view get their thumbnail drawn
IMAGE_PX = 44  # on-screen size of one thumbnail
MOSAIC_CELLS = 8  # the mosaic's grid over the view: cells of ~110 x 75 px hold one IMAGE_PX image apart
MOSAIC_MAX = 40


def _view_of(grid: np.ndarray, rows: np.ndarray, view: geo.View | None) -> geo.View:
    """The view, or the extent plotly's autorange shows for these rows (a little padding)."""
    if view is not None:
        return view
    gx, gy = grid[rows, 0].astype(np.float64), grid[rows, 1].astype(np.float64)
    pad_x, pad_y = max(np.ptp(gx) * 0.05, 50.0), max(np.ptp(gy) * 0.05, 50.0)
    return geo.View(gx.min() - pad_x, gx.max() + pad_x, gy.min() - pad_y, gy.max() + pad_y)


def mosaic_rows(grid: np.ndarray, rows: np.ndarray, view: geo.View | None) -> np.ndarray:
    """The representatives of `rows` (positions into grid): per occupied cell of a MOSAIC_CELLS² grid
    over the view, the row nearest the cell's centre of mass; the MOSAIC_MAX most populated cells."""
    if len(rows) == 0:
        return rows
    shown = _view_of(grid, rows, view)
    xy = grid[rows].astype(np.float64)
    cx = ((xy[:, 0] - shown.x0) * (MOSAIC_CELLS / max(shown.x1 - shown.x0, 1.0))).astype(np.int64)
    cy = ((xy[:, 1] - shown.y0) * (MOSAIC_CELLS / max(shown.y1 - shown.y0, 1.0))).astype(np.int64)
    cell = cy.clip(0, MOSAIC_CELLS - 1) * MOSAIC_CELLS + cx.clip(0, MOSAIC_CELLS - 1)
    count = np.bincount(cell, minlength=MOSAIC_CELLS**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.stack([np.bincount(cell, xy[:, k], MOSAIC_CELLS**2) / count for k in (0, 1)], axis=1)
    distance = np.square(xy - centre[cell]).sum(axis=1)
    nearest = np.full(MOSAIC_CELLS**2, np.inf)
    np.minimum.at(nearest, cell, distance)  # O(n), no sort of the points in view
    hits = np.flatnonzero(distance == nearest[cell])
    cells, first = np.unique(cell[hits], return_index=True)  # one representative per cell
    busiest = hits[first][np.argsort(-count[cells], kind="stable")[:MOSAIC_MAX]]
    return rows[np.sort(busiest)]


def layout_images(frame: pd.DataFrame, grid: np.ndarray, rows: np.ndarray, view: geo.View | None,
                  *, mosaic: bool = False) -> list[dict[str, Any]]:
    """Plotly layout.images for the `rows` in view (positions into frame / grid (n, 2) uint16): each
    one's when there are at most IMAGES_MAX, else (mosaic) the mosaic_rows' or []. Rows without an
    image under the data roots are left out."""
    if URI not in frame.columns or len(rows) == 0 or (len(rows) > IMAGES_MAX and not mosaic):
        return []
    shown = _view_of(grid, rows, view)
    if len(rows) > IMAGES_MAX:
        rows = mosaic_rows(grid, rows, shown)
    span_x, span_y = shown.span
    size_x, size_y = IMAGE_PX * span_x / shown.width_px, IMAGE_PX * span_y / shown.height_px
    uris = frame[URI].to_numpy(dtype=object)
    boxes = frame[BOX].to_numpy(dtype=object) if BOX in frame.columns else None  # objects: their crops
    out: list[dict[str, Any]] = []
    for row in rows:
        uri = uris[row]
        src = crops.point_data_uri(frame.index[row], uri, boxes[row] if boxes is not None else None, INGEST_SIZE)
        if src is None:
            continue
        out.append({"source": src, "xref": "x", "yref": "y", "x": float(grid[row, 0]),
                    "y": float(grid[row, 1]), "sizex": size_x, "sizey": size_y,
                    "xanchor": "center", "yanchor": "middle", "sizing": "contain",
                    "layer": "above", "opacity": 1.0})
    return out
