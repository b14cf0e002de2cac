"""Ingest: upload images or a zip, name a data-root folder or a manifest; embed and store."""

from __future__ import annotations

import streamlit as st

from core.auth import Permission
from ui import ingest_form, ingest_run, state
from ui.actor import current_actor
from ui.errors import show_errors
from ui.page import setup_page

ctx = setup_page("Ingest", ":material/upload_file:")
st.title(":material/upload_file: Ingest a dataset")
st.caption("The same code path as `python -m core ingest`: re-running skips items already stored, "
           "so an interrupted ingest resumes.")

project, dataset = ingest_form.names_section(ctx)
with st.container(border=True):
    source = ingest_form.source_section(ctx.settings)
with st.container(border=True):
    choice = ingest_form.model_section(ctx.settings)

can_ingest = current_actor().can(Permission.INGEST)  # core refuses a viewer too: no button that would fail
if not can_ingest:
    st.info("View only: ingesting needs the editor role.", icon=":material/visibility:")
if st.button("Ingest", type="primary", icon=":material/rocket_launch:", key="ing.run", disabled=not can_ingest):
    with show_errors():
        ingest_run.run_ingest(ctx, project, dataset, source, choice)
        st.rerun()  # the sidebar picks up the new dataset (or the next run follows the ingest still running)
with show_errors():
    ingest_run.follow_ingest()  # an ingest running in the background: its progress, then its summary

summary = st.session_state.get(state.LAST_INGEST)
if summary:
    ingest_run.show_summary(summary)
