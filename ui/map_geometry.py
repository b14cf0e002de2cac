"""Map geometry in figure units: quantised coordinates, lasso / box hit tests, viewport, density.

Pure numpy (no streamlit, no plotly), so what the browser shows and what the server selects are
computed from the same numbers: the figure draws the uint16 grid coordinates made here, the
browser reports lasso polygons and zoom ranges in those units, and the server tests them against
the same grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

GRID = 65_535  # coordinates become uint16 on [0, GRID]: 2 bytes an axis, far below a pixel
MAX_POLYGON = 2_000  # vertices kept from a lasso (the browser sends a few hundred)


@dataclass(frozen=True)
class View:
    """A viewport in figure units: x and y ranges, and the plot area in px (for image sizes)."""

    x0: float
    x1: float
    y0: float
    y1: float
    width_px: float = 1000.0
    height_px: float = 600.0

    @property
    def span(self) -> tuple[float, float]:
        return max(self.x1 - self.x0, 1e-9), max(self.y1 - self.y0, 1e-9)


def quantise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, 2) uint16 grid coordinates of float coords, scaled per axis to [0, GRID]; NaN -> 0.

    The scaling uses the extent of all rows, so a filter never moves a point on the map.
    """
    out = np.zeros((len(x), 2), dtype=np.uint16)
    for axis, values in enumerate((x, y)):
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            continue
        lo, hi = float(values[finite].min()), float(values[finite].max())
        scaled = (values - lo) * (GRID / (hi - lo) if hi > lo else 0.0)
        out[:, axis] = np.rint(np.where(finite, scaled, 0.0)).clip(0, GRID).astype(np.uint16)
    return out


def in_box(grid: np.ndarray, rows: np.ndarray, x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """The `rows` (positions into grid (n, 2)) inside the closed box x=[a, b], y=[c, d]."""
    gx, gy = grid[rows, 0].astype(np.float64), grid[rows, 1].astype(np.float64)
    (xa, xb), (ya, yb) = sorted(map(float, x[:2])), sorted(map(float, y[:2]))
    return rows[(gx >= xa) & (gx <= xb) & (gy >= ya) & (gy <= yb)]


def in_view(grid: np.ndarray, rows: np.ndarray, view: View | None) -> np.ndarray:
    """The `rows` inside the viewport (all of them without one)."""
    return rows if view is None else in_box(grid, rows, (view.x0, view.x1), (view.y0, view.y1))


def in_polygon(grid: np.ndarray, rows: np.ndarray, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """The `rows` inside the polygon (xs, ys) (closed implicitly; even-odd rule, like plotly's lasso).

    Ray casting to +x, vectorised per edge: points are sorted by y once, so each edge only tests the
    points in its own y band (a slice found by binary search). Work ~ n log n + n x (edges crossed by
    one horizontal line), not n x edges, so a 500-vertex lasso over 1M points takes well under a second.
    """
    px, py = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if px.shape != py.shape or px.ndim != 1 or len(px) < 3 or not np.isfinite(px).all() \
            or not np.isfinite(py).all():
        return rows[:0]
    if len(px) > MAX_POLYGON:  # a huge polygon from a hostile client: keep its shape, bound the work
        keep = np.linspace(0, len(px) - 1, MAX_POLYGON).astype(int)
        px, py = px[keep], py[keep]
    candidates = in_box(grid, rows, (px.min(), px.max()), (py.min(), py.max()))
    gx = grid[candidates, 0].astype(np.float64)
    gy = grid[candidates, 1].astype(np.float64)
    order = np.argsort(gy, kind="stable")
    sy, sx = gy[order], gx[order]
    inside = np.zeros(len(order), dtype=bool)
    for xa, ya, xb, yb in zip(px, py, np.roll(px, -1), np.roll(py, -1), strict=True):
        if ya == yb:
            continue  # horizontal edges never cross a horizontal ray (half-open rule below)
        lo, hi = (ya, yb) if ya < yb else (yb, ya)
        # Half-open band [lo, hi): a vertex shared by two edges is counted once.
        start, stop = np.searchsorted(sy, lo, "left"), np.searchsorted(sy, hi, "left")
        if start == stop:
            continue
        band_y = sy[start:stop]
        cross_x = xa + (band_y - ya) * (xb - xa) / (yb - ya)
        inside[start:stop] ^= sx[start:stop] < cross_x
    return np.sort(candidates[order[inside]])


def density(grid: np.ndarray, rows: np.ndarray, view: View | None,
            bins: int = 256) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """A log-density image of `rows` over the view (the full grid without one).

    Returns (z (by, bx) float32 with NaN where empty: transparent in a plotly heatmap,
    (x0, dx), (y0, dy)) in figure units: cell centres at x0 + i dx.
    """
    x0, x1, y0, y1 = (0.0, float(GRID), 0.0, float(GRID)) if view is None else \
        (view.x0, view.x1, view.y0, view.y1)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    counts, _, _ = np.histogram2d(grid[rows, 1].astype(np.float32), grid[rows, 0].astype(np.float32),
                                  bins=bins, range=[[y0, y1], [x0, x1]])
    z = np.log1p(counts).astype(np.float32)
    z[counts == 0] = np.nan
    dx, dy = (x1 - x0) / bins, (y1 - y0) / bins
    return z, (x0 + dx / 2, dx), (y0 + dy / 2, dy)


def sample(rows: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """At most `cap` of `rows`, a stable random subset kept in row order (all of them if few)."""
    if len(rows) <= cap:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=cap, replace=False))
