"""An image with its detection boxes drawn on it: labels solid, predictions dashed, coloured by match status."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import plotly.graph_objects as go
from PIL import Image

from ui.objects import MATCH_COLOURS, UNMATCHED_COLOUR, DrawnBox
from ui.text import plotly_text

SHOWN_PX = 800  # the longest side of the picture sent to the browser (boxes stay in image pixels)
LINE, FOCUS_LINE = 1.5, 4.0  # the opened object's box is drawn thicker
CLASS_SHOWN = 24  # characters of a class name written on its box


def _data_uri(image: Image.Image) -> str:
    shown = image.copy()
    shown.thumbnail((SHOWN_PX, SHOWN_PX))
    buffer = io.BytesIO()
    shown.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _tag(box: DrawnBox) -> str:
    """The text hovering a box says: class, source, status, score."""
    parts = [box.cls or "(no class)", "label" if box.is_label else "prediction"]
    if box.status:
        parts.append(box.status)
    if box.score is not None:
        parts.append(f"score {box.score:.2f}")
    return plotly_text(" · ".join(parts))


def boxes_figure(image: Image.Image, boxes: Sequence[DrawnBox], focus: str | None = None,
                 *, height: int | None = None) -> go.Figure:
    """The image with `boxes` (pixel coordinates of `image`) as rectangles: a label box solid, a
    prediction dashed, coloured by match status (ui.objects.MATCH_COLOURS), `focus` thicker.
    Hovering a box's corner names it; the legend lists the statuses drawn."""
    width_px, height_px = image.size
    height = height if height is not None else figure_height(image.size)
    fig = go.Figure()
    fig.add_layout_image(source=_data_uri(image), xref="x", yref="y", x=0, y=0, sizex=width_px,
                         sizey=height_px, sizing="stretch", layer="below", xanchor="left", yanchor="top")
    # Focused box last: drawn on top of the others.
    for box in sorted(boxes, key=lambda b: b.point == focus):
        x0, y0, x1, y1 = box.box
        fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, name=box.point,
                      line={"color": box.colour, "width": FOCUS_LINE if box.point == focus else LINE,
                            "dash": "solid" if box.is_label else "dash"})
    if boxes:  # one hover point per box (its top-left corner): shapes themselves do not hover
        fig.add_trace(go.Scatter(
            x=[b.box[0] for b in boxes], y=[b.box[1] for b in boxes], mode="markers",
            marker={"size": 6, "color": [b.colour for b in boxes]}, text=[_tag(b) for b in boxes],
            hovertemplate="%{text}<extra></extra>", showlegend=False, name="boxes"))
    for status in _statuses(boxes):  # legend entries only (no points)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=plotly_text(status),
                                 line={"color": MATCH_COLOURS.get(status, UNMATCHED_COLOUR)}))
    fig.update_xaxes(range=[0, width_px], visible=False, constrain="domain")
    fig.update_yaxes(range=[height_px, 0], visible=False, scaleanchor="x", constrain="domain")
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 24, "b": 0}, dragmode="zoom",
                      legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0}, plot_bgcolor="white")
    return fig


def figure_height(size: tuple[int, int], width: int = 420) -> int:
    """A figure height that fits an image of `size` drawn `width` px wide (+ the legend row)."""
    return int(min(max(width * size[1] / max(size[0], 1), 160), 560)) + 28


def _statuses(boxes: Sequence[DrawnBox]) -> list[str]:
    """The statuses among boxes, in the palette's order (unknown ones after)."""
    present = {b.status for b in boxes if b.status}
    return [s for s in MATCH_COLOURS if s in present] + sorted(present - MATCH_COLOURS.keys())

