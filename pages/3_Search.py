"""Search: by text (CLIP spaces), by uploaded image, by examples (more like these, unlike those)."""

from __future__ import annotations

import streamlit as st

from core import export, search
from core.types import DATASET, KEY, Hit
from ui import collections_view, resources, search_actions, search_objects, search_view
from ui.errors import show_errors
from ui.page import require_datasets, setup_page
from ui.text import md
from ui.widgets.filters import payload_filter_widgets

ctx = setup_page("Search", ":material/search:")
st.title(":material/search: Search")
require_datasets(ctx, "Nothing to search yet: load the demo on the home page or ingest a dataset.")
assert ctx.project is not None and ctx.space is not None

with show_errors(stop=True):
    objects = search_objects.points_switch(ctx)  # "Search: images | objects" when the space has objects
search_view.text_box(ctx)
with show_errors(stop=True):
    payloads = resources.cached_payloads(ctx.project, ctx.space, ctx.datasets)
    every = resources.cached_payloads(ctx.project, ctx.space, [], fields=(DATASET, KEY, "uri", "box"))

st.sidebar.subheader("Filter the results")
flt = payload_filter_widgets(payloads, key="search.flt", container=st.sidebar)
exact = st.sidebar.toggle("Exact search (full scan)", key="search.exact",
                          help="Off: Qdrant's approximate index (HNSW), fast on millions of "
                               "points. On: compare with every point (exact, slower).")
limit = st.sidebar.slider("Results", 6, 240, 24, step=6, key="search.limit")
choice = None
if objects:
    st.sidebar.subheader("Objects")
    with show_errors(stop=True):
        choice = search_objects.filter_widgets(ctx, st.sidebar)
kind_filter = search_objects.search_filter if objects else search_view.search_filter

assert ctx.space_info is not None
if search_view.can_embed_images(ctx.space_info):
    examples_col, image_col = st.columns([3, 2], gap="large")
    with image_col, st.container(border=True):
        search_view.image_box(ctx)
else:
    examples_col = st.container()
with examples_col, st.container(border=True):
    st.markdown("**By examples** — more like these, unlike those")
    search_view.examples_box(ctx, every)
    if not search_view.can_embed_images(ctx.space_info):
        search_view.image_box(ctx)  # says why there is no image upload here

query = search_view.current_query(ctx.space_info)
full_filter = kind_filter(ctx.datasets, flt)
if query is None:
    st.subheader("Pick examples")
    head, shuffle = st.columns([5, 1], vertical_alignment="bottom")
    head.caption("A random sample of the chosen datasets (filters applied): press **+ more like "
                 "this** on an item to find more like it.")
    if shuffle.button("Shuffle", key="search.shuffle", icon=":material/shuffle:", width="stretch"):
        search_view.reshuffle()
    with show_errors(stop=True):
        pool = resources.cached_payloads(ctx.project, ctx.space, ctx.datasets,
                                         flt=kind_filter([], flt))
    if objects:
        search_objects.object_cards(search_view.sample_rows(pool), key="search.sample")
    else:
        search_view.result_cards(search_view.sample_rows(pool), key="search.sample",
                                 fields=("label", "prediction", "dataset"))
    st.stop()

if query.mode == "image" and query.image:
    st.image(query.image, width=120, caption=f"Query image: {md(query.image_name)}")
hits: list[Hit] = []
elapsed = 0.0
with show_errors(stop=True):
    if choice is not None:
        hits, elapsed = search_objects.run_query(ctx, query, full_filter, choice, limit=limit, exact=exact)
    else:
        hits, elapsed = search_view.run_query(ctx, query, full_filter, limit=limit, exact=exact)
ids = [h.id for h in hits]
st.subheader(f"{len(hits):,} results" + (" (objects)" if objects else ""))
st.caption(f"{md(query.describe(), limit=200)} · space {md(ctx.space)} · "
           + ", ".join(md(d) for d in ctx.datasets)
           + (" · filtered" if flt or choice else "") + (" · exact" if exact else " · approximate")
           + f" · {elapsed:.0f} ms")
st.caption(search_view.score_note(query))
if not objects:  # the calibration is over images: an object's neighbours are on another scale
    with show_errors():
        search_view.match_note(ctx, query, hits, every.index)

actions = st.columns([1, 1, 1.4], vertical_alignment="bottom")
if actions[0].button("Show on map", key="search.show_map", icon=":material/map:", width="stretch",
                     disabled=not hits, help="Highlight these results on the Explore map"):
    (search_objects.show_on_map if objects else search_view.show_on_map)(ids)
with actions[1]:
    collections_view.export_buttons(export.hits_frame(hits, search.OBJECT_COLUMNS if objects else ()),
                                    key="search.export",
                                    stem="search-results")
with actions[2].popover("Save as collection", icon=":material/save:", width="stretch", disabled=not hits):
    collections_view.save_form(ctx, ids, key="search.save", scores=[h.score for h in hits],
                               refs=[(h.payload.get(DATASET), h.payload.get(KEY)) for h in hits],
                               query=query.to_doc(full_filter, exact))

search_actions.hit_actions(ctx, ids)

rows = search_view.result_rows(hits)
if objects:
    search_objects.object_cards(rows, fields=search_objects.card_fields(query))
else:
    search_view.result_cards(rows, fields=search_view.card_fields(query))
with st.expander("Results as a table (tick rows to tag or label only those)"):
    shown = search_objects.table_columns(rows) if objects else [
        c for c in ("score", search_view.NEAREST_POSITIVE, search_view.NEAREST_NEGATIVE, "dataset",
                    "key", "label", "prediction", "confidence", "split", "tags") if c in rows.columns]
    search_actions.results_table(rows[shown] if len(rows) else rows, ids)
