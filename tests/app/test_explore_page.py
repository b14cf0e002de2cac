"""The Explore page through AppTest (empty and seeded stores) and the logic behind its map."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import SEED_DATASETS, SEED_LABELS, Seeded, run_page, with_images
from ui import explore
from ui import map_geometry as geo
from ui.widgets import map_images, scatter

PAGE = "pages/2_Explore.py"
SELECTION, DETAIL_ID = "es.selection", "es.detail_id"


# -- helpers -------------------------------------------------------------------------------------

def _spec(at: AppTest) -> dict[str, Any]:
    charts = at.get("plotly_chart")
    assert len(charts) == 1, f"expected one map, found {len(charts)}"
    return json.loads(charts[0].proto.spec)


def _n(values: Any) -> int:
    """Length of a plotly array: a list, or plotly's base64 typed array {dtype, bdata}."""
    if isinstance(values, dict):
        itemsize = {"f4": 4, "f8": 8, "i1": 1, "i2": 2, "i4": 4, "u1": 1, "u2": 2}[values["dtype"]]
        return len(base64.b64decode(values["bdata"])) // itemsize
    return len(values)


def _points(spec: dict[str, Any], skip: tuple[str, ...] = (scatter.CONTEXT,)) -> dict[str, int]:
    """Points per trace name (the grey "filtered out" context skipped)."""
    return {t["name"]: _n(t["x"]) for t in spec["data"] if t["name"] not in skip}


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "subheader", "title", "caption", "info", "error", "warning")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _explore(method: str = "PCA", **state: Any) -> AppTest:
    """The page with a projection preset (PCA keeps these tests fast; UMAP has its own test)."""
    at = run_page(PAGE, timeout=180)
    at.session_state["explore.method"] = method
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


# -- the page ------------------------------------------------------------------------------------

def test_empty_store_explains_what_to_do(app_env: Settings) -> None:
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    assert "Nothing to explore yet" in _texts(at)
    assert not at.get("plotly_chart")


def test_seeded_store_draws_the_umap_map(seeded_store: Seeded) -> None:
    at = run_page(PAGE, timeout=300).run()  # UMAP, the default
    assert not at.exception, at.exception
    spec = _spec(at)
    assert sum(_points(spec).values()) == seeded_store.total
    title = spec["layout"]["title"]["text"]
    assert title.startswith("UMAP") and "Quick layout" not in title
    assert all(t["type"] == "scattergl" for t in spec["data"])
    # Reopening is instant: the map was persisted, the second run draws it without a fit.
    again = run_page(PAGE).run()
    assert _spec(again)["layout"]["title"]["text"] == title


def test_colour_by_agreement_changes_traces_and_colours(seeded_store: Seeded) -> None:
    at = _explore()
    at.selectbox(key="explore.colour").set_value("label").run()
    by_label = _spec(at)
    assert set(_points(by_label)) == {*SEED_LABELS, explore.MISSING}
    at.selectbox(key="explore.colour").set_value("agreement").run()
    assert not at.exception, at.exception
    spec = _spec(at)
    points = _points(spec)
    assert set(points) == {explore.AGREE, explore.DISAGREE, explore.UNLABELED}
    colours = {t["name"]: t["marker"]["color"] for t in spec["data"]}
    assert colours[explore.DISAGREE] == explore.AGREEMENT_COLOURS[explore.DISAGREE]
    # The seed predicts wrong for every 5th item; prod has no labels.
    labeled = [n for n, _, lab in SEED_DATASETS.values() if lab]
    assert points[explore.DISAGREE] == sum(len(range(0, n, 5)) for n in labeled)
    assert points[explore.UNLABELED] == SEED_DATASETS["prod"][0]


def test_filter_reduces_the_points(seeded_store: Seeded) -> None:
    at = _explore()
    before = sum(_points(_spec(at)).values())
    at.sidebar.multiselect(key="explore.flt.label").set_value(["cat"]).run()
    assert not at.exception, at.exception
    spec = _spec(at)
    cats = sum(1 for label in seeded_store.labels.values() if label == "cat")
    assert sum(_points(spec).values()) == cats < before
    # The rest stays as grey context, so the slice keeps its place in the map.
    assert _points(spec, skip=())[scatter.CONTEXT] == before - cats


def test_selection_shows_the_image_grid(seeded_store: Seeded) -> None:
    chosen = seeded_store.ids["train"][:5]
    at = _explore(**{SELECTION: chosen})
    assert not at.exception, at.exception
    assert any(s.value == "Selection · 5" for s in at.subheader)
    opened = [b.key for b in at.button if b.key and b.key.startswith("explore.grid.open.")]
    assert sorted(opened) == sorted(f"explore.grid.open.{i}" for i in chosen)  # sorted by a score
    assert len(at.get("image")) >= 5  # thumbnails from ui.images
    # Clicking one opens its detail.
    at.button(key=f"explore.grid.open.{chosen[2]}").click().run()
    assert at.session_state[DETAIL_ID] == chosen[2]


def test_detail_shows_neighbours_from_the_full_space(seeded_store: Seeded) -> None:
    item = seeded_store.ids["train"][0]  # a "cat"
    at = _explore(**{DETAIL_ID: item})
    assert not at.exception, at.exception
    assert "Nearest neighbours" in _texts(at)
    neighbours = [b.key.rsplit(".", 1)[-1] for b in at.button
                  if b.key and b.key.startswith("explore.detail.nn.open.")]
    assert len(neighbours) == 12 and item not in neighbours
    # The pixels space separates the classes: most neighbours of a cat are cats (or unlabeled
    # prod cats; the seed cycles classes, so a prod item i is class i % 3).
    cats = {pid for ds, ids in seeded_store.ids.items() for i, pid in enumerate(ids) if i % 3 == 0}
    assert sum(n in cats for n in neighbours) >= 10
    at.button(key="explore.detail.select").click().run()
    assert at.session_state[SELECTION] == [item, *neighbours]
    assert _points(_spec(at))[scatter.FOCUS] == 13


def test_find_problems_adds_scores_and_the_panel(seeded_store: Seeded) -> None:
    at = _explore()
    assert "outlier" not in at.selectbox(key="explore.colour").options
    at.button(key="explore.find").click().run()
    assert not at.exception, at.exception
    options = at.selectbox(key="explore.colour").options
    assert {"outlier", "mislabel", "cluster"} <= set(options)
    # The seeded upload is clean: no likely outliers, said in words; the ranking is one toggle away.
    assert any(s.value.startswith("No likely outliers") for s in at.success)
    at.toggle(key="explore.problems.outlier.full").set_value(True).run()
    assert any(b.key and b.key.startswith("explore.problems.outlier.ranking.open.") for b in at.button)
    # "Open" in the panel (far below the map) opens the item as a dialog over the page, and selects it.
    first = next(b for b in at.button if b.key and b.key.startswith("explore.problems.outlier.ranking.open."))
    item = first.key.rsplit(".", 1)[-1]
    assert not any(b.key == "explore.dialog.close" for b in at.button)
    first.click().run()
    assert not at.exception, at.exception
    assert at.session_state[DETAIL_ID] == item and at.session_state[SELECTION] == [item]
    assert any(b.key == "explore.dialog.close" for b in at.button)  # the dialog's detail view
    at.run()
    assert not any(b.key == "explore.dialog.close" for b in at.button)  # once: not on every rerun
    at.selectbox(key="explore.colour").set_value("outlier").run()
    spec = _spec(at)
    assert any(t["marker"].get("colorscale") for t in spec["data"])  # continuous scale


# -- the logic behind the map --------------------------------------------------------------------

def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ids = [f"id{i:03d}" for i in range(n)]
    payloads = pd.DataFrame({
        "dataset": ["train"] * n, "key": [f"k{i}" for i in range(n)],
        "label": [None if i % 10 == 0 else f"c{i % 25}" for i in range(n)],
        "prediction": [f"c{i % 25}" if i % 4 else "c0" for i in range(n)],
        "confidence": rng.random(n), "meta.size": rng.random(n) * 100,
        "meta.camera": [f"cam{i % 2}" for i in range(n)],
    }, index=pd.Index(ids, name="id"))
    return explore.build_map_frame(ids, rng.normal(size=(n, 2)), payloads)


def test_categorical_colours_cap_top_n_and_stay_stable_under_filters() -> None:
    frame = _frame()
    spec = explore.colour_spec(frame, "label", top_n=5)
    assert explore.OTHER in spec.categories and explore.MISSING in spec.categories
    assert len([c for c in spec.categories if c not in (explore.OTHER, explore.MISSING)]) == 5
    colours = dict(zip(spec.categories, spec.colours, strict=True))
    subset = frame[frame["label"].isin(spec.categories[-2:])]
    filtered = explore.colour_spec(subset, "label", reference=frame, top_n=5)
    for category, colour in zip(filtered.categories, filtered.colours, strict=True):
        assert colours[category] == colour  # a filter never recolours a class


def _saturation(colour: str) -> float:
    r, g, b = (int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return 0.0 if max(r, g, b) == 0 else (max(r, g, b) - min(r, g, b)) / max(r, g, b)


@pytest.mark.parametrize("classes", [10, 25])
def test_no_class_is_grey_and_unlabeled_points_look_different(classes: int) -> None:
    # Class "9" and "(none)" were two near-identical greys: a class now never gets a grey.
    n = classes * 4
    ids = [f"id{i}" for i in range(n)]
    payloads = pd.DataFrame({"label": [None if i % 7 == 0 else str(i % classes) for i in range(n)]},
                            index=pd.Index(ids, name="id"))
    frame = explore.build_map_frame(ids, np.random.default_rng(0).normal(size=(n, 2)), payloads)
    spec = explore.colour_spec(frame, "label")
    colours = dict(zip(spec.categories, spec.colours, strict=True))
    missing = colours.pop(explore.MISSING)
    assert len(colours) == classes and len(set(colours.values())) == classes  # distinct
    assert all(_saturation(c) > 0.3 for c in colours.values()), colours
    assert _saturation(missing) < 0.05
    built = scatter.build_figure(frame, spec)
    traces = {t.name: t for t in built.figure.data}
    unlabeled, a_class = traces[explore.MISSING].marker, traces["1"].marker
    assert unlabeled.size < a_class.size and unlabeled.symbol == "circle-open"


def test_a_numeric_colour_puts_its_legend_below_the_colour_bar() -> None:
    frame = _frame()
    frame.loc[frame.index[:3], "meta.size"] = np.nan  # a "(none)" legend entry
    built = scatter.build_figure(frame, explore.colour_spec(frame, "meta.size"), highlight=list(frame.index[:2]))
    layout = built.figure.layout
    assert any(t.marker.showscale for t in built.figure.data if t.marker.showscale is not None)
    assert layout.legend.orientation == "h" and layout.legend.yanchor == "top" and layout.legend.y <= 0
    categorical = scatter.build_figure(frame, explore.colour_spec(frame, "label")).figure.layout
    assert categorical.legend.orientation != "h"  # classes: the usual legend on the right


def test_numeric_and_metadata_columns() -> None:
    frame = _frame()
    assert {"meta.size", "meta.camera", "confidence", "agreement"} <= set(
        explore.colour_options(frame))
    assert explore.colour_spec(frame, "meta.size").kind == "numeric"
    assert explore.colour_spec(frame, "meta.camera").kind == "categorical"
    with pytest.raises(ValueError, match="allowed"):
        explore.colour_spec(frame, "nope")


def test_selection_points_map_back_to_ids() -> None:
    frame = _frame()
    visible = np.arange(len(frame)) % 3 != 0
    built = scatter.build_figure(frame, explore.colour_spec(frame, "agreement"), visible=visible,
                                 highlight=["id005"])
    points = []
    for curve, rows in enumerate(built.trace_rows):
        if rows is not None and len(rows):
            points.append({"curve_number": curve, "point_index": len(rows) - 1})
    points.append({"curve_number": 0, "point_index": 0})  # the grey context: not selectable
    ids = scatter.selected_ids(points, built.trace_rows, frame.index)
    expected = [frame.index[rows[-1]] for rows in built.trace_rows if rows is not None]
    assert ids == list(dict.fromkeys(expected))
    assert all(visible[frame.index.get_loc(i)] for i in ids)


def test_the_map_sends_binary_arrays_and_no_per_point_text(seeded_store: Seeded) -> None:
    at = _explore()
    charts = at.get("plotly_chart")
    raw = charts[0].proto.spec
    spec = json.loads(raw)
    for trace in spec["data"]:
        # Coordinates are base64 uint16 grid units, never a JSON list of floats.
        assert isinstance(trace["x"], dict) and trace["x"]["dtype"] == "u2", trace["name"]
        assert isinstance(trace["y"], dict) and trace["y"]["dtype"] == "u2"
        assert not {"text", "hovertext", "customdata"} & set(trace)  # labels come on hover
    mounted = [e.proto.component_name for e in at.get("bidi_component")]
    assert "embedscope.map_events" in mounted  # lasso / click / zoom come back as a few numbers


def test_bytes_per_point_stay_small() -> None:
    import plotly.io as pio

    frame = _frame(20_000)
    for by in ("agreement", "confidence"):
        built = scatter.build_figure(frame, explore.colour_spec(frame, by))
        size = len(pio.to_json(built.figure, validate=False))
        assert size / len(frame) <= 8, (by, size / len(frame))  # the bound: 12 at 1M


def _brute_inside(xs: np.ndarray, ys: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd ray cast, one point at a time (the slow, obvious version)."""
    out = []
    for i, (x, y) in enumerate(zip(px, py, strict=True)):
        inside = False
        for j in range(len(xs)):
            xa, ya, xb, yb = xs[j], ys[j], xs[(j + 1) % len(xs)], ys[(j + 1) % len(xs)]
            if (ya <= y < yb or yb <= y < ya) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
                inside = not inside
        if inside:
            out.append(i)
    return np.array(out, dtype=int)


def test_a_lasso_selects_exactly_the_visible_points_inside_it() -> None:
    frame = _frame(3_000)
    visible = np.arange(len(frame)) % 4 != 0
    built = scatter.build_figure(frame, explore.colour_spec(frame, "label"), visible=visible)
    grid = built.grid.astype(float)
    t = np.linspace(0, 2 * np.pi, 41)[:-1]
    radius = 15_000 * (1 + 0.4 * np.sin(5 * t))  # a star: concave, many edges
    xs, ys = 32_000 + radius * np.cos(t), 30_000 + radius * np.sin(t)
    ids = scatter.region_ids(built, frame.index, {"lasso": {"x": xs.tolist(), "y": ys.tolist()}})
    inside = _brute_inside(xs, ys, grid[:, 0], grid[:, 1])
    expected = [frame.index[i] for i in inside if visible[i]]
    assert ids == expected and 100 < len(ids) < visible.sum() - 100
    box = scatter.region_ids(built, frame.index, {"box": {"x": [10_000, 30_000], "y": [0, 65_535]}})
    in_box = (grid[:, 0] >= 10_000) & (grid[:, 0] <= 30_000) & visible
    assert box == list(frame.index[in_box])
    for bad in ({"lasso": {"x": [1, 2], "y": [1, 2]}}, {"lasso": {"x": "no"}}, {"box": {"x": [1]}},
                {"lasso": {"x": [0, 1, float("nan")], "y": [0, 1, 1]}}, {}):
        assert scatter.region_ids(built, frame.index, bad) == []


def test_ids_picked_on_the_map_bring_their_rows_and_a_lookup_gives_the_same() -> None:
    """A lasso's ids carry their positions in the map frame (no 350k-id lookup in a 1M index on
    the next rerun); the rows are those a lookup of the ids finds, and ids picked on another
    frame (or plain lists: a selection from search, duplicates, unknown ids) are looked up."""
    frame = _frame(3_000)
    built = scatter.build_figure(frame, explore.colour_spec(frame, "label"))
    ids = scatter.region_ids(built, frame.index, {"box": {"x": [10_000, 30_000], "y": [0, 65_535]}})
    assert isinstance(ids, explore.PickedIds) and ids.frame_index is frame.index and len(ids) > 100
    looked_up = explore.selection_positions(frame, list(ids))
    assert np.array_equal(explore.selection_positions(frame, ids), looked_up)
    assert np.array_equal(ids.rows, looked_up)
    pd.testing.assert_frame_equal(explore.selection_rows(frame, ids), frame.loc[list(ids)])
    other = frame.copy()
    other.index = pd.Index(list(reversed(frame.index)), name=frame.index.name)  # same ids elsewhere
    assert list(explore.selection_rows(other, ids).index) == list(ids)  # looked up, not taken by position
    plain = [ids[3], "no-such-id", ids[1], ids[3]]
    assert list(explore.selection_rows(frame, plain).index) == [ids[3], ids[1]]


def test_in_index_matches_pandas_isin() -> None:
    from ui.resources import in_index

    within = pd.Index([f"id{i:05d}" for i in range(0, 5_000, 3)], name="id")
    index = pd.Index([f"id{i:05d}" for i in range(4_000, 0, -7)] + ["x"], name="id")
    assert np.array_equal(in_index(index, within), index.isin(within))
    assert in_index(index[:0], within).shape == (0,) and not in_index(index, within[:0]).any()


def test_large_maps_draw_a_density_and_zoomed_in_the_points_in_view(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scatter, "DENSITY_MIN", 1_000)
    monkeypatch.setattr(scatter, "SAMPLE", 400)
    frame = _frame(3_000)
    colours = explore.colour_spec(frame, "label")
    built = scatter.build_figure(frame, colours)
    assert built.dense and built.figure.data[0].type == "heatmap"
    assert sum(len(r) for r in built.trace_rows if r is not None) == 400
    assert len(built.selectable) == 3_000  # a lasso still selects among every point
    view = geo.View(0, 20_000, 0, 65_535)
    zoomed = scatter.build_figure(frame, colours, view=view)
    in_view = (built.grid[:, 0] <= 20_000).sum()
    assert not zoomed.dense and all(t.type == "scattergl" for t in zoomed.figure.data)
    assert sum(len(r) for r in zoomed.trace_rows if r is not None) == in_view < 1_000
    assert zoomed.revision != built.revision  # hover caches are per drawn figure


def test_zoomed_in_thumbnails_are_drawn_on_the_map(app_env: Settings) -> None:
    frame = with_images(_frame(400), app_env.demo_dir / "map")
    colours = explore.colour_spec(frame, "label")
    whole = scatter.build_figure(frame, colours, images=True)
    assert len(whole.figure.layout.images) == 0  # 400 points in view: more than IMAGES_MAX
    view = geo.View(0, 30_000, 0, 65_535, width_px=900, height_px=600)
    zoomed = scatter.build_figure(frame, colours, images=True, view=view)
    inside = np.flatnonzero(zoomed.grid[:, 0] <= 30_000)
    drawn = zoomed.figure.layout.images
    assert 0 < len(inside) <= map_images.IMAGES_MAX and len(drawn) == len(inside)
    for image, row in zip(drawn, inside, strict=True):
        assert (image.x, image.y) == (float(zoomed.grid[row, 0]), float(zoomed.grid[row, 1]))
        assert image.source.startswith("data:image/jpeg;base64,") and image.xref == "x"
        assert image.sizex == pytest.approx(map_images.IMAGE_PX * 30_000 / 900)


# -- what a rerun costs at scale ---------------------------------------------------------------

def test_a_rerun_after_a_selection_rebuilds_neither_the_frame_nor_the_figure(
        seeded_store: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, int] = {"map_data": 0, "figure": 0, "colour": 0}

    def counted(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(explore, "map_data", counted("map_data", explore.map_data))
    monkeypatch.setattr(explore, "colour_spec", counted("colour", explore.colour_spec))
    monkeypatch.setattr(scatter, "build_figure", counted("figure", scatter.build_figure))
    at = _explore()  # fits and saves the PCA map: a document write, so the next run builds once more
    at.run()
    before = dict(calls)
    at.session_state[SELECTION] = seeded_store.ids["train"][:4]  # what a lasso leaves behind
    at.run()
    assert not at.exception, at.exception
    assert any(s.value == "Selection · 4" for s in at.subheader)
    assert calls == before  # frame, colours and figure reused, not rebuilt
    kept = at.session_state["explore.selection.positions"]  # the selection's rows, for the next reruns
    assert kept[1] == seeded_store.ids["train"][:4] and len(kept[2]) == 4
    at.session_state[SELECTION] = seeded_store.ids["train"][2:3]
    at.run()
    assert any(s.value == "Selection · 1" for s in at.subheader)
    at.session_state[SELECTION] = seeded_store.ids["train"][:4]
    at.run()
    at.selectbox(key="explore.colour").set_value("agreement").run()
    assert calls == {**before, "colour": before["colour"] + 1, "figure": before["figure"] + 1}
    at.sidebar.multiselect(key="explore.flt.label").set_value(["cat"]).run()
    assert not at.exception, at.exception
    assert calls["map_data"] == before["map_data"] and calls["figure"] == before["figure"] + 2  # another mask


def test_after_a_write_the_map_shape_is_drawn_before_the_payloads_are_read(
        seeded_store: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.pipeline import payload_cache
    from ui import resources
    from ui.widgets import map_preview

    at = _explore().run()  # the PCA map is persisted, the payloads are on disk
    root = payload_cache.cache_folder(seeded_store.settings)
    assert len(list(root.glob("*/*.parquet"))) >= 1
    events: list[str] = []
    real_preview, real_load = map_preview.preview_picture, payload_cache.load_payloads

    def preview(coords: np.ndarray, **kwargs: Any) -> None:
        events.append(f"preview {len(coords)}")
        real_preview(coords, **kwargs)

    def load(*args: Any, **kwargs: Any) -> pd.DataFrame:
        events.append("payloads")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(map_preview, "preview_picture", preview)
    monkeypatch.setattr(payload_cache, "load_payloads", load)
    at.run()
    assert events == []  # nothing changed: nothing read, nothing previewed
    relabelled = seeded_store.ids["train"][0]
    resources.get_store().set_payload(seeded_store.project, [relabelled], [{"label": "lynx"}])
    at.run()
    assert not at.exception, at.exception
    assert events[:2] == [f"preview {seeded_store.total}", "payloads"]
    assert not at.get("imgs")  # the final map replaced the density picture
    assert "lynx" in _points(_spec(at))  # the final map replaced the preview, with the new label
    assert len(_spec(at)["data"]) > 1


def test_the_density_picture_shows_where_the_points_are() -> None:
    from PIL import Image

    from ui.widgets.map_preview import density_png

    rng = np.random.default_rng(0)
    dense = rng.normal((0.8, 0.8), 0.01, (5000, 2))  # top right of the map (y points up)
    lone = np.array([[0.0, 0.0], [np.nan, 1.0]])  # bottom left; a NaN row is skipped
    picture = np.asarray(Image.open(io.BytesIO(density_png(np.vstack([dense, lone]), width=100, height=50))))
    assert picture.shape == (50, 100)
    assert picture[49, 0] < 255  # the lone point, bottom left
    assert picture[:25, 50:].min() < 60 and picture[:20, :40].min() == 255  # dense top right; empty top left
