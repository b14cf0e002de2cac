"""What the map draws for a viewport: thumbnails or a mosaic of representatives (ui.widgets.map_images),
the view kept as axis ranges, a readable density view, and the zoom events (ui.widgets.map_events)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.config import Settings
from tests.app.conftest import with_images
from ui import explore
from ui import map_geometry as geo
from ui.widgets import map_events, map_images, scatter


def _clusters(centres: list[tuple[float, float]], per: int, spread: float = 0.02,
              seed: int = 0) -> pd.DataFrame:
    """A map frame of `per` points around each centre (map units 0..1), labelled by cluster."""
    rng = np.random.default_rng(seed)
    xy = np.concatenate([np.asarray(c) + rng.normal(size=(per, 2)) * spread for c in centres])
    xy = np.concatenate([xy, [[0.0, 0.0], [1.0, 1.0]]])  # fix the extent: the quantised grid spans 0..1
    ids = [f"p{i:05d}" for i in range(len(xy))]
    labels = [f"c{i // per}" for i in range(len(xy) - 2)] + ["corner", "corner"]
    payloads = pd.DataFrame({"label": labels}, index=pd.Index(ids, name="id"))
    return explore.build_map_frame(ids, xy, payloads)


def test_the_mosaic_takes_the_point_nearest_each_cells_centre_of_mass() -> None:
    centres = [(0.15, 0.2), (0.8, 0.75), (0.45, 0.55)]
    frame = _clusters(centres, per=200)
    grid = scatter.map_grid(frame)
    rows = np.arange(len(frame))
    picked = map_images.mosaic_rows(grid, rows, None)
    # One representative per occupied cell of the coarse grid, the one nearest its points' mean.
    shown = map_images._view_of(grid, rows, None)
    cell_w, cell_h = (shown.x1 - shown.x0) / map_images.MOSAIC_CELLS, (shown.y1 - shown.y0) / map_images.MOSAIC_CELLS
    cells = ((grid[:, 0] - shown.x0) // cell_w).astype(int) * 100 + ((grid[:, 1] - shown.y0) // cell_h).astype(int)
    assert len(picked) == len(np.unique(cells)) <= map_images.MOSAIC_MAX
    for row in picked:
        members = np.flatnonzero(cells == cells[row])
        centre = grid[members].astype(float).mean(axis=0)
        distances = np.square(grid[members].astype(float) - centre).sum(axis=1)
        assert distances[members == row][0] == pytest.approx(distances.min())
    # Every cluster is represented, the clusters' densest cells first when the cap bites.
    assert {frame["label"].iloc[r] for r in picked} >= {"c0", "c1", "c2"}


def test_the_mosaic_is_capped_at_the_busiest_cells() -> None:
    rng = np.random.default_rng(1)
    grid = rng.integers(0, 65_535, size=(5_000, 2)).astype(np.uint16)
    grid[:3_000] = (np.array([30_000, 30_000]) + rng.integers(0, 2_000, size=(3_000, 2))).astype(np.uint16)
    rows = np.arange(len(grid))
    picked = map_images.mosaic_rows(grid, rows, geo.View(0, 65_535, 0, 65_535))
    assert len(picked) == map_images.MOSAIC_MAX < map_images.MOSAIC_CELLS ** 2  # ~64 cells occupied
    cell = (grid[:, 0].astype(int) * 8 // 65_536) * 8 + grid[:, 1].astype(int) * 8 // 65_536
    counts = np.bincount(cell, minlength=64)
    kept = np.sort(counts[cell[picked]])
    assert kept[0] >= np.sort(counts)[-map_images.MOSAIC_MAX]  # no less populated cell beat a kept one
    assert np.all(np.diff(picked) > 0) and len(map_images.mosaic_rows(grid, rows[:0], None)) == 0


def test_zoomed_out_the_map_draws_a_mosaic_zoomed_in_every_thumbnail(app_env: Settings) -> None:
    frame = with_images(_clusters([(0.2, 0.3), (0.7, 0.6)], per=250), app_env.demo_dir / "mosaic", (40, 30))
    colours = explore.colour_spec(frame, "label")
    plain = scatter.build_figure(frame, colours, images=True)
    assert len(plain.figure.layout.images) == 0  # more than IMAGES_MAX in view, no mosaic asked
    whole = scatter.build_figure(frame, colours, images=True, mosaic=True)
    drawn = whole.figure.layout.images
    expected = map_images.mosaic_rows(whole.grid, np.arange(len(frame)), None)
    assert 2 <= len(drawn) == len(expected) <= map_images.MOSAIC_MAX
    for image, row in zip(drawn, expected, strict=True):
        assert (image.x, image.y) == (float(whole.grid[row, 0]), float(whole.grid[row, 1]))
        assert image.source.startswith("data:image/jpeg;base64,")
    assert whole.revision != plain.revision
    # Zoomed in on one cluster: each of its points' thumbnails, not the mosaic.
    view = geo.View(0, 32_000, 0, 32_000, width_px=900, height_px=600)
    zoomed = scatter.build_figure(frame, colours, images=True, mosaic=True, view=view)
    inside = geo.in_view(zoomed.grid, np.arange(len(frame)), view)
    assert 0 < len(inside) <= map_images.IMAGES_MAX
    assert len(zoomed.figure.layout.images) == len(inside)


def test_a_zoomed_figure_keeps_its_view_as_axis_ranges() -> None:
    frame = _clusters([(0.3, 0.3), (0.6, 0.7)], per=100)
    colours = explore.colour_spec(frame, "label")
    whole = scatter.build_figure(frame, colours)
    assert whole.figure.layout.xaxis.range is None and whole.figure.layout.yaxis.range is None  # autorange
    view = geo.View(1_000, 40_000, 2_000, 50_000)
    zoomed = scatter.build_figure(frame, colours, view=view)
    # A new figure remounts the chart: without explicit ranges plotly would autorange on the points.
    assert tuple(zoomed.figure.layout.xaxis.range) == (1_000, 40_000)
    assert tuple(zoomed.figure.layout.yaxis.range) == (2_000, 50_000)


def test_the_density_view_shows_through_the_points_drawn_over_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scatter, "DENSITY_MIN", 1_000)
    monkeypatch.setattr(scatter, "SAMPLE", 2_000)  # a random 2,000 of these would keep ~30 of the outliers
    rng = np.random.default_rng(2)
    core = _clusters([(0.5, 0.5)], per=20_000, spread=0.01)
    outliers = rng.uniform(0, 1, size=(300, 2))
    ids = list(core.index) + [f"o{i}" for i in range(len(outliers))]
    xy = np.concatenate([core[["x", "y"]].to_numpy(), outliers])
    labels = list(core["label"]) + ["outlier"] * len(outliers)
    frame = explore.build_map_frame(ids, xy, pd.DataFrame({"label": labels}, index=pd.Index(ids, name="id")))
    built = scatter.build_figure(frame, explore.colour_spec(frame, "label"))
    heat = built.figure.data[0]
    assert built.dense and heat.type == "heatmap" and heat.opacity == 1.0
    assert heat.colorscale[0][1] != "rgb(255,255,255)"  # the lowest count is visible, not white
    drawn = np.concatenate([r for r in built.trace_rows if r is not None])
    # The dense core is thinned to a few points per cell (the density shows through) ...
    cells = (built.grid[drawn].astype(int) * scatter.DENSE_BINS) // 65_536
    _, per_cell = np.unique(cells[:, 0] * scatter.DENSE_BINS + cells[:, 1], return_counts=True)
    assert per_cell.max() <= scatter.DENSE_PER_CELL and len(drawn) < len(frame) // 4
    # ... while every sparse outlier is still drawn (a random sample would drop most of them).
    is_outlier = np.asarray(frame["label"] == "outlier")
    assert is_outlier[drawn].sum() >= 0.95 * is_outlier.sum()
    assert np.array_equal(drawn, np.concatenate([r for r in scatter.build_figure(
        frame, explore.colour_spec(frame, "label")).trace_rows if r is not None]))  # stable across reruns


def test_a_double_click_clears_the_selection_and_the_zoom_in_one_event(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _clusters([(0.4, 0.4)], per=50)
    built = scatter.build_figure(frame, explore.colour_spec(frame, "label"))
    session: dict[str, Any] = {"m.view": geo.View(0, 10, 0, 10)}
    monkeypatch.setattr(map_events.st, "session_state", session)
    session["m.events"] = {"select": {"clear": True, "view": {"auto": True}}}
    map_events._on_select("m", built, frame.index)
    assert session["m.picked"] == [] and session["m.view"] is None
    session["m.view"] = geo.View(0, 10, 0, 10)
    session["m.events"] = {"select": {"clear": True}}  # a plain clear keeps the zoom
    map_events._on_select("m", built, frame.index)
    assert session["m.view"] == geo.View(0, 10, 0, 10)
