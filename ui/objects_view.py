"""Explore's objects view: the images | objects switch, an object's detail (its boxes on the scene), grid fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.filters import Filter, items_only, objects_only
from core.types import CONFIDENCE, KIND, LABEL, MATCH, OBJECT_KIND, PARENT, URI
from ui import resources, state
from ui.errors import show_errors
from ui.explore import AGREEMENT
from ui.objects import CLASS, boxes_of_parent
from ui.page import PageContext
from ui.text import md
from ui.widgets.boxes import boxes_figure

POINTS_KEY = "explore.points"  # the switch's widget key
IMAGES, OBJECTS = "images", "objects"
COLOUR_KEY = "explore.colour"
RESET_COLOUR = "explore.points.reset_colour"  # set by a switch: the next run sets the view's default colour
SELECTION_KEYS = ("es.selection", "es.detail_id")  # ids of one view mean nothing in the other


def _switched() -> None:
    """The view changed: the colour menu falls back to the view's default; the selection and the
    opened point (ids of the other view) are cleared."""
    st.session_state[RESET_COLOUR] = True
    state.set_selection([])
    state.set_detail_id(None)


def points_switch(ctx: PageContext, container: Any = None) -> bool:
    """"Points: images | objects", shown only when the datasets have detection objects in the space;
    True when the objects view is chosen. A space of objects only (ROI embeddings: "<space>-roi")
    shows its objects, without a switch."""
    assert ctx.project is not None and ctx.space is not None
    count = resources.object_count(ctx.project, ctx.space, ctx.datasets)
    if count == 0:
        return False
    if resources.item_count(ctx.project, ctx.space, ctx.datasets) == 0:
        st.caption(f"{count:,} detection objects (this space holds no image points)")
        return True
    box = container if container is not None else st
    st.session_state.setdefault(POINTS_KEY, IMAGES)  # not default=: "Open the image" sets it too
    chosen = box.segmented_control(
        "Points", [IMAGES, OBJECTS], key=POINTS_KEY, on_change=_switched,
        help=f"Images: one point per image. Objects: one point per box ({count:,} label and "
             "prediction boxes), coloured by class, source or match status; hover shows the crop.")
    return chosen == OBJECTS


def view_filter(objects: bool, flt: Filter | None) -> Filter | None:
    """The map's filter in this view: the objects (and flt) in the objects view, else flt as given."""
    return objects_only(flt) if objects else flt


def colour_menu(options: list[str], objects: bool) -> list[str]:
    """The colour menu of this view: on objects, no label-vs-prediction agreement (a box has one of
    the two; its match status says how it fared)."""
    return [o for o in options if o != AGREEMENT] if objects else options


def default_colour(objects: bool, options: list[str], default: str) -> str:
    """The colour menu's default: the match status on the objects map when known, else `default`."""
    return MATCH if objects and MATCH in options else default


def reset_colour(default: str, options: list[str]) -> None:
    """Right before the colour menu: after a switch, the menu shows the view's default. Set, not
    dropped: a dropped value leaves the browser's menu showing the other view's colour."""
    if st.session_state.pop(RESET_COLOUR, False):
        if default in options:
            st.session_state[COLOUR_KEY] = default
        else:
            st.session_state.pop(COLOUR_KEY, None)


def grid_fields(objects: bool, colour_by: str, fixed: tuple[str, ...]) -> tuple[str, ...]:
    """Captions of the selection's grid: an object's class, status and score (+ the colour column)."""
    if not objects:
        return ("label", "prediction", "confidence") if colour_by in fixed else ("label", colour_by)
    return tuple(dict.fromkeys((CLASS, MATCH, CONFIDENCE, colour_by)))


def _open_image(parent: str) -> None:
    """"Open the image": the images view with the object's image opened (a callback: it sets the
    switch before the widget is drawn)."""
    st.session_state[POINTS_KEY] = IMAGES
    st.session_state[RESET_COLOUR] = True
    state.set_selection([parent])
    state.set_detail_id(parent)


def scene_boxes(ctx: PageContext, image_point: str) -> list[Any]:
    """Every box of one image (ui.objects.DrawnBox), read from the store by its parent id."""
    assert ctx.project is not None and ctx.space is not None
    flt = objects_only(Filter.where(**{PARENT: image_point}))
    frame = ctx.store.payloads(ctx.project, ctx.space, flt)
    return boxes_of_parent(frame, image_point)


def scene(ctx: PageContext, point_id: str, payload: Mapping[str, Any], *, key: str) -> None:
    """The whole image of a point with all its boxes: an object's own box thicker, and a button to
    open the image itself; an image point: its boxes (none drawn when it has none)."""
    from ui import images

    is_object = payload.get(KIND) == OBJECT_KIND
    parent = payload.get(PARENT) if is_object else point_id
    uri = payload.get(URI)
    image = images.open_image(uri, ctx.settings) if isinstance(uri, str) and uri else None
    if image is None:
        st.caption("No image available (outside the data roots, or not found).")
        return
    boxes = []
    if isinstance(parent, str) and parent:
        with show_errors():
            boxes = scene_boxes(ctx, parent)
    st.plotly_chart(boxes_figure(image, boxes, focus=point_id if is_object else None),
                    key=f"{key}.boxes", config={"displaylogo": False})
    if boxes:
        st.caption("Solid: label boxes · dashed: predictions · colour: match status"
                   + (" · thicker: this object" if is_object else ""))
    assert ctx.project is not None and ctx.space is not None
    if is_object and isinstance(parent, str) and parent and resources.item_count(ctx.project, ctx.space, ctx.datasets):
        cls = payload.get(LABEL) or payload.get("prediction")
        st.button("Open the image", key=f"{key}.parent", icon=":material/image:", on_click=_open_image,
                  args=(parent,), help=f"The whole scene of this {md(cls or 'object')} box in the images view")


def detail_options(ctx: PageContext, point_id: str, objects: bool, *, key: str) -> dict[str, Any]:
    """item_detail's picture / among for this view: with objects in the space, the scene with its
    boxes and neighbours of the same kind (an object's neighbours are objects); else nothing."""
    assert ctx.project is not None and ctx.space is not None
    if not objects and resources.object_count(ctx.project, ctx.space, ctx.datasets) == 0:
        return {}

    def picture(payload: Mapping[str, Any]) -> None:
        scene(ctx, point_id, payload, key=key)

    return {"picture": picture, "among": objects_only() if objects else items_only()}
