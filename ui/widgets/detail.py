"""One item's detail view: the image large, its payload, its nearest neighbours in the full space."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.display import shorten
from core.filters import Filter
from core.types import KEY, TEXT, URI, Hit
from ui import images, state
from ui.errors import show_errors
from ui.explore import display_fields
from ui.page import PageContext
from ui.text import md
from ui.widgets.curation import item_actions
from ui.widgets.grid import image_grid

log = logging.getLogger(__name__)

SEARCH_PAGE = "pages/3_Search.py"
NEIGHBOURS = 12
TEXT_SHOWN = 2_000  # characters of a text item shown in its detail view (the store keeps all)
# Session key: where the current SELECTION came from ("map" when drawn on the map itself).
SELECTION_SOURCE = "es.selection_source"


def nearest_neighbours(ctx: PageContext, point_id: str, k: int = NEIGHBOURS,
                       all_datasets: bool = False,
                       among: Filter | None = None) -> tuple[dict[str, Any] | None, list[Hit]]:
    """(payload of the point or None, its k nearest neighbours without itself), searched in the
    full embedding space in Qdrant with the point's own vector (not in the 2-D map).

    Neighbours come from the datasets chosen in the sidebar unless all_datasets, narrowed by
    `among` (e.g. core.filters.objects_only(): an object's neighbours are objects).
    Raises NotFoundError (a CoreError) via the store when the space is gone.
    """
    assert ctx.project is not None and ctx.space is not None
    ids, vectors = ctx.store.vectors(ctx.project, ctx.space, ids=[point_id])
    if not ids:
        return None, []
    flt = (Filter() if all_datasets else Filter.datasets(ctx.datasets)).and_(among) or None
    hits = ctx.store.query(ctx.project, ctx.space, vectors[0], limit=k + 1, flt=flt)
    own = next((h.payload for h in hits if h.id == point_id), None)
    return own, [h for h in hits if h.id != point_id][:k]


def hits_frame(hits: list[Hit]) -> pd.DataFrame:
    """Hits as a grid frame indexed by id: payload columns (meta flattened) + "score"."""
    rows = []
    for hit in hits:
        payload = dict(hit.payload)
        meta = payload.pop("meta", None) or {}
        row = {**payload, **{f"meta.{k}": v for k, v in meta.items()}, "score": hit.score}
        rows.append({"id": hit.id, **row})
    return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()


def select_on_map(ids: list[str]) -> None:
    """Make `ids` the selection shown (ringed) on the Explore map."""
    state.set_selection(ids)
    st.session_state[SELECTION_SOURCE] = "external"


def find_similar(point_ids: list[str]) -> None:
    """Use the points as the examples of a similarity search and open the Search page."""
    state.set_search_positive(point_ids)
    state.set_search_negative([])
    try:
        st.switch_page(SEARCH_PAGE)
    except StreamlitAPIException as e:  # the Search page is not part of this app run
        log.info("cannot switch to %s: %s", SEARCH_PAGE, e)
        st.info("Example set. Open the Search page from the sidebar.")


def _show_item(payload: Mapping[str, Any], settings: Any) -> None:
    uri = payload.get(URI)
    image = images.open_image(uri, settings) if isinstance(uri, str) and uri else None
    if image is not None:
        st.image(image, width="stretch", caption=md(payload.get(KEY) or ""))  # captions are Markdown
    elif payload.get(TEXT):
        st.text(shorten(payload.get(TEXT), TEXT_SHOWN))  # st.text: never Markdown
    else:
        st.caption("No image available (outside the data roots, or not found).")


def item_detail(ctx: PageContext, point_id: str, *, payload: Mapping[str, Any] | None = None,
                k: int = NEIGHBOURS, key: str = "detail", columns: int = 6,
                picture: Callable[[Mapping[str, Any]], None] | None = None,
                among: Filter | None = None) -> str | None:
    """Render the detail of one point; returns the id of a neighbour the user opened, or None.

    payload: the point's payload if the caller has it (else taken from the neighbour query).
    columns: columns of the neighbours' grid (3 in a side panel).
    picture: draws the point instead of its image (ui.objects_view: a detection object's boxes);
    among: narrows the neighbours (nearest_neighbours).
    Buttons: "Find similar" (Search page with this point as the example), "Select on map" (this
    point and its neighbours become the map selection), "Close".
    """
    if not ctx.ready:
        return None
    # Read before the toggle is drawn (it sits next to the neighbours, below).
    all_ds = bool(st.session_state.get(f"{key}.all", False))
    own: dict[str, Any] | None = None
    hits: list[Hit] = []
    with show_errors():
        own, hits = nearest_neighbours(ctx, point_id, k, all_datasets=all_ds, among=among)
    shown = dict(payload) if payload is not None else own
    if shown is None:
        st.warning(f"Point {md(point_id)} is not in the space {md(ctx.space)}.")
        return None
    if picture is not None:  # the whole scene: full width, the fields below it
        picture(shown)
        right = st.container()
    else:
        left, right = st.columns([2, 3])
        with left:
            _show_item(shown, ctx.settings)
    with right:
        flat = {**{f: v for f, v in shown.items() if f != "meta"},
                **{f"meta.{m}": v for m, v in (shown.get("meta") or {}).items()}}
        fields = display_fields(flat)
        st.dataframe(pd.DataFrame({"field": list(fields),
                                   "value": [str(v) for v in fields.values()]}),
                     hide_index=True, width="stretch")
    with st.container(horizontal=True, gap="small"):  # wraps in a narrow side panel
        if st.button("Find similar", key=f"{key}.similar", icon=":material/search:"):
            find_similar([point_id])
        if st.button("Select on map", key=f"{key}.select", icon=":material/my_location:",
                     help="Select this item and its nearest neighbours on the map"):
            select_on_map([point_id, *[h.id for h in hits]])
            st.rerun()
        if st.button("Close", key=f"{key}.close"):
            state.set_detail_id(None)
            st.rerun()
    item_actions(ctx, point_id, shown, key=f"{key}.cur")  # tags, reviewed, accept the suggested label
    st.markdown(f"**Nearest neighbours** in the full {md(ctx.space)} space (cosine similarity)")
    st.toggle("From every dataset of the project", key=f"{key}.all")
    return image_grid(hits_frame(hits), key=f"{key}.nn", columns=columns,
                      fields=("label", "prediction", "score"))
