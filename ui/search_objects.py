"""Search page over detection objects: the images | objects switch, the object filters, crop cards, "open the image".

A search ranks images or objects, never both (core.search.kind_filter). The switch shows only when
the chosen datasets have objects in the space; the object filters (match status, class, source,
prediction score) become core.search.object_filters, one Qdrant query each, merged by score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core import search
from core.filters import Filter, objects_only
from core.types import BOX, LABEL, MATCH, OBJECT_KIND, OBJECT_SOURCES, PARENT, PREDICTION, SOURCE, URI, Hit
from ui import objects_view, resources, search_view, state
from ui.crops import point_thumbnail
from ui.objects import CLASS, MATCH_COLOURS, class_column
from ui.page import PageContext
from ui.text import md
from ui.widgets.grid import caption

POINTS_KEY = "search.points"  # the switch's widget key
_SEEN = "search._points_seen"  # the positive examples the switch last followed
IMAGES, OBJECTS = "images", "objects"
MATCH_KEY, CLASS_KEY, SOURCE_KEY, SCORE_KEY = ("search.obj.match", "search.obj.class", "search.obj.source",
                                               "search.obj.score")
CARD_FIELDS: tuple[str, ...] = ("score", CLASS, SOURCE, MATCH, "confidence")
TABLE_COLUMNS: tuple[str, ...] = ("score", search_view.NEAREST_POSITIVE, search_view.NEAREST_NEGATIVE, "dataset",
                                  "key", SOURCE, LABEL, PREDICTION, "confidence", MATCH, "iou", "tags")


def points_switch(ctx: PageContext, container: Any = None) -> bool:
    """"Search: images | objects", shown only when the datasets have detection objects in the
    space; True when objects are searched. A space of objects only searches its objects."""
    assert ctx.project is not None and ctx.space is not None
    count = resources.object_count(ctx.project, ctx.space, ctx.datasets)
    box = container if container is not None else st
    if count == 0:
        return False
    if resources.item_count(ctx.project, ctx.space, ctx.datasets) == 0:
        box.caption(f"Searching {count:,} detection objects (this space holds no image points)")
        return True
    _follow_examples(ctx)
    st.session_state.setdefault(POINTS_KEY, IMAGES)
    chosen = box.segmented_control(
        "Search", [IMAGES, OBJECTS], key=POINTS_KEY,
        help=f"Images: whole scenes. Objects: the {count:,} label and prediction boxes (their crops), "
             "never mixed with images in one result list.")
    return chosen == OBJECTS


def _follow_examples(ctx: PageContext) -> None:
    """New positive examples that are all objects ("Find similar" on an object in Explore, a
    collection of boxes) switch to objects; all images switch to images; a mix leaves the switch."""
    assert ctx.project is not None and ctx.space is not None
    positive = tuple(state.get_search_positive())
    if st.session_state.get(_SEEN) == positive:
        return
    st.session_state[_SEEN] = positive
    if not positive:
        return
    try:
        found = ctx.store.count(ctx.project, ctx.space, objects_only(Filter.ids(positive)))
    except ValueError:  # not point ids (a hand-edited URL): leave the switch as it is
        return
    if found == len(positive):
        st.session_state[POINTS_KEY] = OBJECTS
    elif found == 0:
        st.session_state[POINTS_KEY] = IMAGES


def filter_widgets(ctx: PageContext, container: Any = None) -> search.ObjectChoice:
    """The object filters (match status, class, source, prediction score) as an ObjectChoice."""
    assert ctx.project is not None and ctx.space is not None
    box = container if container is not None else st
    frame = resources.cached_payloads(ctx.project, ctx.space, ctx.datasets, fields=(SOURCE, LABEL, PREDICTION, MATCH),
                                      flt=objects_only())
    found = set(frame[MATCH].dropna()) if MATCH in frame.columns else set()
    statuses = [s for s in MATCH_COLOURS if s in found]
    classes = class_column(frame) if len(frame) else None
    names = sorted({str(c) for c in classes.dropna()}) if classes is not None else []
    chosen_status = box.multiselect("Match status", statuses, key=MATCH_KEY,
                                    help="tp: label and prediction agree; missed: a label no prediction found; "
                                         "spurious: a prediction with no label; ...")
    chosen_class = box.multiselect("Class", names, key=CLASS_KEY,
                                   help="A label box's label, a prediction's predicted class")
    sources = box.multiselect("Source", list(OBJECT_SOURCES), key=SOURCE_KEY,
                              help="Label boxes, prediction boxes, or both (none chosen)")
    low, high = box.slider("Prediction score", 0.0, 1.0, (0.0, 1.0), step=0.05, key=SCORE_KEY,
                           help="Narrowed: predictions scored in the range only (label boxes have no score)")
    score = (None, None) if (low, high) == (0.0, 1.0) else (float(low), float(high))
    return search.ObjectChoice(statuses=tuple(chosen_status), classes=tuple(chosen_class),
                               sources=tuple(sources), score=score)


def search_filter(datasets: Sequence[str], flt: Filter | None) -> Filter:
    """Detection objects of the sidebar's datasets, narrowed by the filter widgets."""
    return objects_only(Filter.datasets(datasets).and_(flt))


def run_query(ctx: PageContext, query: search_view.Query, flt: Filter, choice: search.ObjectChoice, *,
              limit: int, exact: bool) -> tuple[list[Hit], float]:
    """(object hits best first, milliseconds in Qdrant): one query per filter of the choice, merged."""
    lists, total = [], 0.0
    for part in search.object_filters(choice, flt):
        hits, elapsed = search_view.run_query(ctx, query, part, limit=limit, exact=exact, kind=OBJECT_KIND)
        lists.append(hits)
        total += elapsed
    return search.merged(lists, limit), total


def open_image(parent: str) -> None:
    """Explore's images view with this object's image selected and opened, then go there."""
    st.session_state[objects_view.POINTS_KEY] = objects_view.IMAGES
    st.session_state[objects_view.RESET_COLOUR] = True
    state.set_selection([parent])
    state.set_detail_id(parent)
    search_view.go_to(search_view.EXPLORE_PAGE)


def show_on_map(ids: Sequence[str]) -> None:
    """Highlight these objects on Explore's objects map and go there."""
    st.session_state[objects_view.POINTS_KEY] = objects_view.OBJECTS
    st.session_state[objects_view.RESET_COLOUR] = True
    search_view.show_on_map(ids)


def _card(point_id: str, row: pd.Series, key: str, fields: Sequence[str]) -> None:
    data = point_thumbnail(point_id, row.get(URI), row.get(BOX), 160, resources.get_settings())
    if data is not None:
        st.image(data, width="stretch")
    else:
        st.caption(f"(no crop) {md(point_id[:8])}")
    line = caption(row, fields)
    if line:
        st.caption(line)
    st.button("+ more like this", key=f"{key}.more.{point_id}", width="stretch",
              on_click=search_view.add_example, args=(point_id, True))
    st.button("− less like this", key=f"{key}.less.{point_id}", width="stretch",
              on_click=search_view.add_example, args=(point_id, False))
    parent = row.get(PARENT)
    if isinstance(parent, str) and parent and st.button(
            "Open the image", key=f"{key}.open.{point_id}", icon=":material/image:", width="stretch",
            help="The whole scene with its boxes, in Explore"):
        open_image(parent)


def object_cards(rows: pd.DataFrame, *, key: str = search_view.RESULT_KEY, columns: int = 6,
                 fields: Sequence[str] = CARD_FIELDS) -> None:
    """Crop cards (crop, caption, "+ more like this" / "− less like this", "Open the image") for
    object rows indexed by point id."""
    if rows.empty:
        st.caption("Nothing found. Widen the filters or change the query.")
        return
    classes = class_column(rows)
    rows = rows.assign(**{CLASS: classes}) if classes is not None else rows
    for start in range(0, len(rows), columns):
        cells = st.columns(columns)
        for cell, (point_id, row) in zip(cells, rows.iloc[start:start + columns].iterrows(), strict=False):
            with cell:
                _card(str(point_id), row, key, fields)


def card_fields(query: search_view.Query) -> tuple[str, ...]:
    """The caption fields of object cards (the nearest-positive cosine too when several examples rank)."""
    return (CARD_FIELDS[0], search_view.NEAREST_POSITIVE, *CARD_FIELDS[1:]) if search_view.several_examples(query) \
        else CARD_FIELDS


def table_columns(rows: pd.DataFrame) -> list[str]:
    """The results table's columns for object hits."""
    return [c for c in TABLE_COLUMNS if c in rows.columns]
