"""The labeling-tool round trip on the Collections page: Label Studio / COCO downloads and the label import."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import streamlit as st

from core.collections import Collection
from core.interop import exporting, selection
from core.interop.label_import import ImportPreview, apply_import, preview_import, read_labels
from ui import resources
from ui.actor import current_actor
from ui.errors import show_errors
from ui.page import PageContext
from ui.text import md

log = logging.getLogger(__name__)

ROOT = "coll.ls_root"  # text input: Label Studio's LOCAL_FILES_DOCUMENT_ROOT
UPLOAD = "coll.import.file"  # file uploader: the corrected labels
APPLY = "coll.import.apply"  # button: write the previewed changes
_DONE = "coll.import._done"  # message of the last applied import, shown after the rerun
MAX_UPLOAD_MB = 50


@st.cache_data(show_spinner="Preparing the export…", max_entries=8)
def _files(project: str, name: str, fmt: str, root: str, created: str, revision: str) -> exporting.ExportFiles:
    """The export files of a collection; cached per space revision (a label change makes new ones)
    and per collection version (created)."""
    store = resources.get_store()
    space, items = selection.from_collection(store, project, name)
    urls = exporting.UrlOptions(root=Path(root) if root.strip() else None)
    return exporting.build(store, resources.get_settings(), project, space, items, fmt,
                           stem=name.replace(" ", "_"), urls=urls)


def export_buttons(ctx: PageContext, coll: Collection) -> None:
    """"Label Studio" and "COCO" downloads of the collection, the labeling config to paste, and
    the local-files root the image URLs are relative to."""
    assert ctx.project is not None
    root = st.text_input("Label Studio document root", value="/", key=ROOT,
                         help="The folder Label Studio serves images from (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT); "
                              "image URLs are /data/local-files/?d=<path relative to it>.")
    revision = resources.space_revision(ctx.project, coll.space)
    left, right = st.columns(2)
    ls = coco = None
    with show_errors():  # each format on its own: a text collection has no COCO file, yet a task file
        ls = _files(ctx.project, coll.name, "labelstudio", root, coll.created, revision)
    with show_errors():
        coco = _files(ctx.project, coll.name, "coco", root, coll.created, revision)
    if ls is not None:
        (name, data), (_, config) = ls.files
        left.download_button("Label Studio", data, file_name=name, mime="application/json", key="coll.export.ls",
                             icon=":material/download:", width="stretch", on_click="ignore",
                             help="Tasks with the current label as a pre-annotation")
    if coco is not None:
        name, data = coco.files[0]
        right.download_button("COCO", data, file_name=name, mime="application/json", key="coll.export.coco",
                              icon=":material/download:", width="stretch", on_click="ignore",
                              help="Images, categories and one image-level label per image (CVAT imports it)")
    for note in (ls.notes if ls else []) + (coco.notes[1:] if coco else []):
        st.caption(md(note, limit=500))
    if ls is not None:
        st.caption("Labeling config to paste in Label Studio (Settings > Labeling Interface > Code):")
        st.code(config.decode("utf-8"), language="xml")


def import_labels(ctx: PageContext) -> None:
    """Upload a Label Studio export, a COCO file or a CSV; preview the changes; Apply writes them
    (one history entry, undoable from the History page)."""
    assert ctx.project is not None
    done = st.session_state.pop(_DONE, None)
    if done:
        st.success(done, icon=":material/check_circle:")
    upload = st.file_uploader("Import labels", type=["json", "csv"], key=UPLOAD,
                              help="A Label Studio JSON / JSON-MIN export, a COCO file or a CSV with a label "
                                   "column, matched by embedscope_id or by dataset and key")
    if upload is None:
        return
    if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
        st.error(f"{md(upload.name)} is larger than {MAX_UPLOAD_MB} MB.", icon=":material/warning:")
        return
    names = [d.name for d in ctx.store.list_datasets(ctx.project)]
    dataset = st.selectbox("Dataset of rows that give only a key", names, index=None, key="coll.import.dataset",
                           placeholder="(rows carry their dataset)")
    preview: ImportPreview | None = None
    with show_errors():
        labels = read_labels(upload.getvalue(), upload.name)
        preview = preview_import(ctx.store, ctx.project, labels, dataset=dataset, source=upload.name)
    if preview is None:
        return
    st.markdown(md(preview.summary()))
    if preview.unknown:
        st.warning("Unknown items (not in the project): " + md(", ".join(u.name for u in preview.unknown[:10]))
                   + (" …" if len(preview.unknown) > 10 else ""), icon=":material/help:")
    st.dataframe(_shown(preview.frame()), hide_index=True, width="stretch")
    if st.button(f"Apply {len(preview.changed):,} change(s)", key=APPLY, type="primary", icon=":material/done_all:",
                 disabled=not preview.changed):
        with show_errors():
            entry = apply_import(ctx.store, ctx.project, preview, actor=current_actor())
            count = len(entry.rows) if entry is not None else 0
            st.session_state[_DONE] = (f"Set {count:,} label(s) from {upload.name}: one history entry, "
                                       "undoable on the History page.")
            st.rerun()


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    # Changes first (the frame's order); long lists stay scrollable in the dataframe widget.
    return frame.rename(columns={"old": "current label", "new": "label in the file"})
