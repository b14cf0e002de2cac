"""History: every curation change of the project (labels, tags, reviewed), newest first, with undo."""

from __future__ import annotations

import streamlit as st

from ui.history_view import history_section
from ui.page import nav_link, setup_page
from ui.text import md
from ui.widgets.curation import scope

ctx = setup_page("History", ":material/history:")
st.title(":material/history: History")
st.caption("Every change made to labels, tags and the reviewed flag, from this dashboard, the CLI or an "
           "import: who, when, why and the rows it touched. Undo restores the old values and is itself "
           "recorded; the original labels stay recoverable.")
sc = scope(ctx)
if sc is None:
    st.info("The store is empty: load the demo on the home page or ingest a dataset.")
    nav_link("Home.py")
    st.stop()
st.caption(f"Project {md(sc.project)}")
history_section(sc)
