"""embedscope home: what is in the store (projects, datasets, spaces, labels), and "Load demo"."""

from __future__ import annotations

import streamlit as st

from ui import demo_detection, jobs_view, overview
from ui.errors import show_errors
from ui.page import PAGES, nav_link, setup_page
from ui.text import md, md_frame

ctx = setup_page("Home")
st.title(":material/travel_explore: embedscope")
st.caption("Understand and fix datasets through their embeddings: explore the map, find outliers "
           "and likely mislabels, compare splits, search by example or text.")

projects = ctx.store.list_projects()
if not projects:
    st.info("The store is empty. Load the offline demo (a small labeled image dataset with "
            "train / test / production splits) or ingest your own data.")
    if st.button("Load demo", type="primary", icon=":material/rocket_launch:", key="load_demo"):
        with show_errors(stop=True):
            overview.load_demo_with_progress(ctx.store, ctx.settings)
        st.rerun()
    if st.button("Load detection demo", icon=":material/center_focus_strong:", key="load_detection_demo",
                 help=demo_detection.BUTTON_HELP):
        with show_errors(stop=True):
            demo_detection.load_detection_demo_with_progress(ctx.store, ctx.settings)
        st.rerun()
    st.markdown("**Your own data** — upload on the Ingest page, or from the command line:")
    st.code("python -m core ingest ./images/train --project myproj --dataset train "
            "--data-root ./images\n"
            "python -m core ingest --manifest prod.csv --project myproj --dataset prod "
            "--data-root ./images", "bash")
    nav_link("pages/1_Ingest.py")
    st.stop()

st.markdown(f"**Store:** {md(ctx.store.describe(), limit=None)} · **projects:** "
            f"{', '.join(md(p) for p in projects)}")
jobs_view.jobs_section()  # everyone's background jobs: who started them, how far, cancel
# Just loaded: the demo's pretrained space filling in the background, and the way to its map.
if "demo" in projects and overview.demo_job_status(ctx.store):
    nav_link("pages/2_Explore.py", "Open the demo's map on Explore", ":material/map:")
if "demo-detection" in projects:
    demo_detection.detection_job_status(ctx.store)

for project in projects:
    spaces = ctx.store.list_spaces(project)
    infos = ctx.store.list_datasets(project)
    with st.container(border=True):
        st.subheader(f"Project {md(project)}")
        left, right = st.columns([3, 2])
        with left:
            st.markdown("**Datasets** (points per embedding space)")
            # Small static summaries: st.table renders as HTML (no canvas, printable, readable).
            st.table(md_frame(overview.datasets_table(infos, spaces)))
            st.markdown("**Embedding spaces**")
            st.table(md_frame(overview.spaces_table(spaces, overview.index_states(ctx.store, project, spaces))),
                     hide_index=True)
        with right:
            st.markdown("**Top labels**")
            if spaces:
                with show_errors():
                    labels = overview.top_labels(project, (ctx.space if project == ctx.project
                                                           else None) or spaces[0].name,
                                                 [d.name for d in infos])
                    if labels.empty:
                        st.caption("No labels.")
                    else:
                        st.table(md_frame(labels))

if "demo" not in projects:
    with st.expander("Load the demo project too"):
        if st.button("Load demo", key="load_demo_more"):
            with show_errors(stop=True):
                overview.load_demo_with_progress(ctx.store, ctx.settings)
            st.rerun()
if "demo-detection" not in projects:
    with st.expander("Load the detection demo too"):
        if st.button("Load detection demo", key="load_detection_demo_more", help=demo_detection.BUTTON_HELP):
            with show_errors(stop=True):
                demo_detection.load_detection_demo_with_progress(ctx.store, ctx.settings)
            st.rerun()

st.divider()
columns = st.columns(len(PAGES) - 1)
for column, (path, label, icon) in zip(columns, PAGES[1:], strict=True):
    with column:
        nav_link(path, label, icon)
