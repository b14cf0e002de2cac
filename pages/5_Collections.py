"""Collections: the saved sets of points (search results, selections) — open, export, delete, send to a labeling tool."""

from __future__ import annotations

import streamlit as st

from core import collections
from ui import collections_view, labeling_view, search_view, state
from ui.errors import show_errors
from ui.page import nav_link, setup_page
from ui.text import md

ctx = setup_page("Collections", ":material/folder_special:")
st.title(":material/folder_special: Collections")
st.caption("Named sets of points saved from Search, Explore or Compare. They live in the store, "
           "next to the data, so they survive a restart and are shared by everyone using it.")
if ctx.project is None:
    st.info("The store is empty: load the demo on the home page or ingest a dataset.")
    nav_link("Home.py")
    st.stop()

with show_errors(stop=True):
    saved = collections.list_collections(ctx.store, ctx.project)
if not saved:
    st.info(f"Project {md(ctx.project)} has no collections yet. Save one from the Search page "
            "(**Save as collection** above the results) or from a selection on the map.")
    nav_link("pages/3_Search.py")
    st.stop()

st.dataframe(collections_view.collections_table(saved), hide_index=True, width="stretch")
names = [c.name for c in saved]
name = st.selectbox("Open a collection", names, key=collections_view.PICK)
coll = collections_view.open_collection(ctx, name) if name else None
if coll is None or coll.items is None:
    st.stop()

st.subheader(f"{md(coll.name)} · {len(coll):,} items")
made_by = collections_view.query_summary(coll.query)
st.caption(f"Space {md(coll.space)} · created {md(collections_view.created_text(coll.created))}"
           + (f" · made by {md(made_by, limit=200)}" if made_by else "")
           + (f" · {md(coll.description, limit=500)}" if coll.description else ""))
if coll.missing:
    st.warning(f"{len(coll.missing):,} of its points are no longer in the store (their dataset "
               "was deleted or re-ingested under other keys); they are left out below.")

actions = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
present = [i for i in coll.ids if i not in set(coll.missing)]
if actions[0].button("Show on map", key="coll.map", icon=":material/map:", width="stretch",
                     disabled=not present):
    search_view.show_on_map(present, space=coll.space)
if actions[1].button("Search like these", key="coll.search", icon=":material/search:", width="stretch",
                     disabled=not present, help="Use the first 20 items as search examples"):
    state.set_space(coll.space)
    state.set_search_positive(present[:20])
    state.set_search_negative([])
    search_view.go_to("pages/3_Search.py")
with actions[2]:
    collections_view.export_buttons(collections_view.export_frame(coll), key="coll.export",
                                    stem=coll.name.replace(" ", "_"))
with actions[3]:
    collections_view.delete_trigger(coll.name)
if collections_view.delete_confirmation(ctx, coll.name):
    st.rerun()

with st.expander("Labeling tool round trip: Label Studio, COCO, import corrected labels",
                 icon=":material/sync_alt:"):
    labeling_view.export_buttons(ctx, coll)
    st.divider()
    labeling_view.import_labels(ctx)

items = coll.items.drop(index=[i for i in coll.missing if i in coll.items.index])
collections_view.collection_grid(ctx, coll.space, items)
with st.expander("As a table"):
    shown = [c for c in ("score", "dataset", "key", "label", "prediction", "split", "uri")
             if c in items.columns]
    st.dataframe(items[shown], width="stretch")
