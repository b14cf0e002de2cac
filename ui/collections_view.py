"""Collections in the UI: save a result as a named collection, list / open / export / delete them.

Collections live in the store (core.collections), so they survive a dashboard restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core import collections, export
from core.auth import Permission
from core.collections import Collection
from ui import state
from ui.actor import current_actor
from ui.errors import show_errors
from ui.page import PageContext
from ui.text import md
from ui.widgets.detail import item_detail
from ui.widgets.grid import image_grid

log = logging.getLogger(__name__)

PICK = "coll.pick"  # selectbox: the collection opened on the Collections page
OPENED = "coll.opened"  # the item of the open collection shown large (its detail view)
_CONFIRM = "coll._confirm_delete"  # name of the collection awaiting a delete confirmation


def export_buttons(frame: pd.DataFrame, *, key: str, stem: str) -> None:
    """CSV and JSONL download buttons of an export frame (core.export columns: id, uri, label,
    prediction, score, dataset, ...)."""
    left, right = st.columns(2)
    left.download_button("CSV", export.to_csv(frame), file_name=f"{stem}.csv", mime="text/csv",
                         key=f"{key}.csv", icon=":material/download:", width="stretch", on_click="ignore")
    right.download_button("JSONL", export.to_jsonl(frame), file_name=f"{stem}.jsonl",
                          mime="application/x-ndjson", key=f"{key}.jsonl", icon=":material/download:",
                          width="stretch", on_click="ignore")


def save_form(ctx: PageContext, ids: Sequence[str], *, key: str,
              scores: Sequence[float | None] | None = None,
              refs: Sequence[tuple[str | None, str | None]] | None = None,
              query: dict[str, Any] | None = None, description: str = "") -> Collection | None:
    """Name + description + Save: stores ids (of ctx.space) as a collection of ctx.project.

    An existing name is refused with a message unless "Replace" is ticked (never silently).
    Returns the saved Collection in the run where Save was pressed, else None.
    """
    assert ctx.project is not None and ctx.space is not None
    # A form: the name typed is committed by the Save click itself (no blur rerun first).
    with st.form(f"{key}.form", border=False):
        name = st.text_input("Collection name", key=f"{key}.name", max_chars=64,
                             placeholder="e.g. snowy-dogs-to-label")
        note = st.text_input("Description (optional)", key=f"{key}.description",
                             value=description)
        overwrite = st.checkbox("Replace a collection of the same name", key=f"{key}.overwrite")
        pressed = st.form_submit_button("Save", key=f"{key}.save", type="primary", icon=":material/save:")
    if not pressed:
        return None
    if not name.strip():
        st.warning("Give the collection a name.")
        return None
    with show_errors():
        if not overwrite and collections.exists(ctx.store, ctx.project, name):
            st.error(f"A collection named “{md(name.strip())}” already exists in project "
                     f"{md(ctx.project)}: choose another name, or tick “Replace a collection of "
                     "the same name”.", icon=":material/warning:")
            return None
        saved = collections.save(ctx.store, ctx.project, name, list(ids), actor=current_actor(), space=ctx.space,
                                 scores=scores, refs=refs, description=note, query=query,
                                 overwrite=overwrite)
        st.success(f"Saved {len(saved):,} items as collection “{md(saved.name)}” (see the "
                   "Collections page).", icon=":material/check_circle:")
        return saved
    return None


def collections_table(colls: Sequence[Collection]) -> pd.DataFrame:
    """One row per collection: name, size, space, created, description, what made it."""
    return pd.DataFrame({
        "name": [c.name for c in colls],
        "size": [len(c) for c in colls],
        "space": [c.space for c in colls],
        "created": [created_text(c.created) for c in colls],
        "description": [c.description for c in colls],
        "made by": [query_summary(c.query) for c in colls],
    })


def created_text(created: str) -> str:
    """'2026-01-02 10:11:12 UTC' from the stored ISO timestamp."""
    return created.replace("T", " ").replace("+00:00", " UTC")


def query_summary(query: dict[str, Any] | None) -> str:
    """'text “a dog”', 'image cat.png', '3 examples' or '' from a saved query description."""
    if not query:
        return ""
    kind = query.get("type")
    if kind == "text":
        return f"text “{query.get('text', '')}”"
    if kind == "image":
        return f"image {query.get('image', '')}"
    if kind == "examples":
        return f"{len(query.get('positive') or [])} example(s)"
    if kind == "novelty":
        return f"novelty of {query.get('b', '?')} vs {query.get('a', '?')}"
    return str(kind or "")


def delete_trigger(name: str) -> None:
    """The "Delete…" button: asks for a confirmation (delete_confirmation) instead of deleting.
    Not shown to a viewer (core refuses them anyway)."""
    if not current_actor().can(Permission.COLLECTIONS):
        return
    if st.button("Delete…", key="coll.delete", icon=":material/delete:", width="stretch",
                 disabled=st.session_state.get(_CONFIRM) == name):
        st.session_state[_CONFIRM] = name
        st.rerun()


def delete_confirmation(ctx: PageContext, name: str) -> bool:
    """"Yes, delete" / "Cancel" once "Delete…" was pressed for `name`; True once deleted."""
    assert ctx.project is not None
    if st.session_state.get(_CONFIRM) != name:
        return False
    with st.container(border=True):
        st.warning(f"Delete the collection “{md(name)}”? The points themselves stay in the store.")
        yes, no, _ = st.columns([1, 1, 3])
        if no.button("Cancel", key="coll.delete.cancel", width="stretch"):
            st.session_state.pop(_CONFIRM, None)
            st.rerun()
        if yes.button("Yes, delete", key="coll.delete.confirm", type="primary", width="stretch"):
            st.session_state.pop(_CONFIRM, None)
            with show_errors():
                collections.delete(ctx.store, ctx.project, name, actor=current_actor())
                return True
    return False


def open_collection(ctx: PageContext, name: str) -> Collection | None:
    """The collection with its current payloads (items), or None after an error message."""
    assert ctx.project is not None
    with show_errors():
        return collections.get(ctx.store, ctx.project, name)
    return None


def export_frame(coll: Collection) -> pd.DataFrame:
    """The collection's rows for a labeling queue (ids no longer stored are left out)."""
    assert coll.items is not None
    present = coll.items.drop(index=[i for i in coll.missing if i in coll.items.index])
    return export.export_frame(present)


def collection_grid(ctx: PageContext, space: str, items: pd.DataFrame) -> None:
    """The collection's items as a grid; "Open" shows an item large with its neighbours (when
    the collection's space is the sidebar's). The detail view's "Close" clears DETAIL_ID."""
    opened = st.session_state.get(OPENED)
    if opened is not None and opened == state.get_detail_id() and space == ctx.space:
        with st.container(border=True):
            neighbour = item_detail(ctx, opened, key="coll.detail", columns=6)
            if neighbour is not None:
                st.session_state[OPENED] = neighbour
                state.set_detail_id(neighbour)
                st.rerun()
    clicked = image_grid(items, key="coll.grid", columns=6,
                         fields=("score", "label", "prediction", "dataset"), max_items=60)
    if clicked is not None:
        st.session_state[OPENED] = clicked
        state.set_detail_id(clicked)
        st.rerun()
