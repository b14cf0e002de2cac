"""Hover thumbnails on the map: (curve, point) from the browser -> the item's thumbnail, safely."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.config import Settings, load_settings
from tests.app.conftest import Seeded, run_page
from ui import explore
from ui.widgets import scatter
from ui.widgets.hover_preview import chart_class, hover_payload


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", data_roots=(tmp_path / "root",))


def _frame(tmp_path: Path) -> pd.DataFrame:
    """Six points: four images under the data root (colour = label), one text item, one image
    outside the roots."""
    uris: list[str | None] = []
    for i, colour in enumerate(["red", "red", "blue", "blue"]):
        path = tmp_path / "root" / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (200, 100), colour).save(path)
        uris.append(str(path))
    outside = tmp_path / "elsewhere" / "secret.png"
    outside.parent.mkdir(parents=True)
    Image.new("RGB", (10, 10), "green").save(outside)
    uris += [None, str(outside)]
    return pd.DataFrame({
        "x": np.arange(6, dtype=np.float32), "y": np.zeros(6, dtype=np.float32),
        "label": ["cat", "cat", "dog", "dog", "cat", "dog"],
        "key": [f"k{i}" for i in range(6)], "uri": uris, "text": [None] * 4 + ["a text", None],
    }, index=pd.Index([f"id{i}" for i in range(6)], name="id"))


def _decoded(src: str) -> Image.Image:
    assert src.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")


def test_a_hovered_point_maps_to_its_own_thumbnail(settings: Settings, tmp_path: Path) -> None:
    frame = _frame(tmp_path)
    built = scatter.build_figure(frame, explore.colour_spec(frame, "label"))
    names = [t.name for t in built.figure.data]
    dog = names.index("dog")
    rows = built.trace_rows[dog]
    assert rows is not None
    for point, row in enumerate(rows):
        payload = hover_payload(built.trace_rows, frame, dog, point, size=32, settings=settings)
        assert payload is not None
        assert payload["id"] == frame.index[row] and payload["caption"] == f"dog · k{row}"
        if frame["uri"].iloc[row] is None or "elsewhere" in str(frame["uri"].iloc[row]):
            assert payload["src"] is None  # no image / outside the data roots: the caption only
            continue
        image = _decoded(payload["src"])
        assert max(image.size) == 32
        r, g, b = image.getpixel((image.width // 2, image.height // 2))
        assert b > 200 and r < 60  # the blue images are the dogs: the right file was served


def test_out_of_range_or_malformed_requests_are_ignored(settings: Settings,
                                                       tmp_path: Path) -> None:
    frame = _frame(tmp_path)
    visible = np.array([True] * 5 + [False])
    built = scatter.build_figure(frame, explore.colour_spec(frame, "label"), visible=visible)
    assert built.trace_rows[0] is None  # the grey "filtered out" context
    n = len(built.trace_rows)
    for curve, point in [(0, 0), (n, 0), (-1, 0), (1, 99), (1, -1), ("1", 0), (1, 0.5),
                         (None, 0), (True, 0), (1, False)]:
        assert hover_payload(built.trace_rows, frame, curve, point, settings=settings) is None


def test_chart_class_matches_streamlits_key_class() -> None:
    assert chart_class("explore.map") == "st-key-explore-map"
    assert chart_class("a b/c_d-e") == "st-key-a-b-c_d-e"


def test_explore_page_mounts_the_hover_component_on_its_map(seeded_store: Seeded) -> None:
    at = run_page("pages/2_Explore.py", timeout=180)
    at.session_state["explore.method"] = "PCA"  # fast; the component does not depend on it
    at.run()
    assert not at.exception, at.exception
    mounted = [e for e in at.get("bidi_component")
               if e.proto.component_name == "embedscope.hover_preview"]
    assert len(mounted) == 1
    data = json.loads(mounted[0].proto.json)
    # Nothing is sent before a hover: the chart to watch and the figure revision, no image.
    assert data["chart"] == "st-key-explore-map" and data["reply"] is None and data["rev"]
    assert "data:image" not in mounted[0].proto.json
