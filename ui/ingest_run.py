"""Run an ingest from the Ingest page's form: the CLI's code path (core.pipeline.ingest), with a
progress bar, and the result summary (counts, rejects) kept in session state across reruns."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.config import Settings
from core.errors import BadInputError
from core.types import Item
from ui import resources, state, uploads
from ui.ingest_form import ModelChoice, Source
from ui.page import PageContext
from ui.widgets.progress import ProgressBar

log = logging.getLogger(__name__)


def _stage_images(files: list[Any], settings: Settings, dataset: str) -> Path:
    """Write uploaded images / zips under settings.uploads_dir/<dataset>/ and return that folder."""
    dest = uploads.upload_dir(settings, dataset)
    for f in files:
        if f.name.lower().endswith(".zip"):
            uploads.unpack_zip(io.BytesIO(f.getvalue()), dest, settings)
        else:
            uploads.save_file(f.name, f.getvalue(), dest, settings)
    return dest


def _side_file(upload: Any, settings: Settings, dataset: str) -> Path:
    """Keep an uploaded manifest / vectors file under uploads/.files/<dataset>/ (outside the
    image folders, so it is never read as an image)."""
    dest = settings.uploads_dir / ".files" / uploads.folder_for(dataset)
    return uploads.save_file(upload.name, upload.getvalue(), dest, settings)


def collect_items(source: Source, settings: Settings, dataset: str) -> list[Item]:
    """The items to ingest, read by core.datasets (the CLI's readers)."""
    from core.datasets import from_image_folder, from_manifest

    if source.kind == "upload":
        if not source.images:
            raise BadInputError("Upload some images or a zip first")
        return from_image_folder(_stage_images(source.images, settings, dataset), settings)
    if source.kind == "folder":
        return from_image_folder(uploads.resolve_data_folder(source.folder, settings), settings)
    if source.manifest is None:
        raise BadInputError("Upload a manifest first")
    root = (uploads.resolve_data_folder(source.folder, settings) if source.folder
            else _stage_images(source.images, settings, dataset) if source.images else None)
    manifest = _side_file(source.manifest, settings, dataset)
    return from_manifest(manifest, settings, base_dir=root)


def _model_name(choice: ModelChoice, settings: Settings) -> str:
    if not choice.model:
        raise BadInputError("Choose a model first")
    if choice.kind == "local":
        # Only model folders under the data roots: a shared dashboard must not load arbitrary paths.
        return str(uploads.resolve_data_folder(choice.model, settings))
    return choice.model


def _ingest_own(ctx: PageContext, project: str, dataset: str, items: list[Item],
                choice: ModelChoice, bar: ProgressBar) -> Any:
    from core.datasets import load_own_embeddings
    from core.pipeline.ingest import ingest_vectors, own_space, rejects_folder

    if choice.vectors is None:
        raise BadInputError("Upload a vectors file (.parquet or .npy) first")
    vectors_path = _side_file(choice.vectors, ctx.settings, dataset)
    ids_path = _side_file(choice.ids, ctx.settings, dataset) if choice.ids is not None else None
    keys, vectors = load_own_embeddings(vectors_path, ids_path)
    space = own_space(ctx.store, project, choice.space, int(vectors.shape[1]), choice.vectors.name)
    # Joined by key: vectors without an item get a bare payload, items without a vector are rejects.
    return ingest_vectors(ctx.store, project, dataset, space, items, vectors, keys=keys,
                          progress=bar, rejects_dir=rejects_folder(ctx.settings))


def run_ingest(ctx: PageContext, project: str, dataset: str, source: Source,
               choice: ModelChoice) -> dict[str, Any]:
    """Read, embed and store one dataset exactly like `python -m core ingest`; return a summary.

    CoreError (bad names, files, models, store) propagates for show_errors() to display.
    """
    from core.pipeline.ingest import ingest_items

    from core.store import validate_name

    validate_name(project, "project")
    validate_name(dataset, "dataset")
    with st.status(f"Ingesting {project}/{dataset}…", expanded=True) as status:
        st.write("Reading the items…")
        own = choice.kind == "own"
        items = [] if own and source.kind == "upload" and not source.images else \
            collect_items(source, ctx.settings, dataset)
        st.write(f"{len(items):,} items found.")
        bar = ProgressBar("Embedding and storing")
        if own:
            report = _ingest_own(ctx, project, dataset, items, choice, bar)
        else:
            embedder = resources.get_model(_model_name(choice, ctx.settings))
            report = ingest_items(ctx.store, project, dataset, items, embedder,
                                  settings=ctx.settings, progress=bar)
        bar.finish()
        status.update(label=f"Ingest {report.status}: {report.stored:,} stored",
                      state="error" if report.status == "failed" else "complete")
    resources.invalidate_data()
    state.set_project(project)
    state.set_space(report.space)
    state.set_datasets([dataset])
    summary = summarize(report)
    st.session_state[state.LAST_INGEST] = summary
    return summary


def summarize(report: Any) -> dict[str, Any]:
    """A plain dict of an IngestReport (kept in session state across reruns)."""
    rejects = pd.DataFrame([{"key": r.item.key, "uri": r.item.uri, "reason": r.reason}
                            for r in report.rejects], columns=["key", "uri", "reason"])
    return {"project": report.project, "dataset": report.dataset, "space": report.space,
            "status": report.status,
            "total": report.total, "stored": report.stored, "skipped": report.skipped,
            "rejects": rejects,
            "rejects_path": str(report.rejects_path) if report.rejects_path else None}


def show_summary(summary: dict[str, Any]) -> None:
    """The result of the last ingest: counts, status, rejects table, link to Explore."""
    from ui.page import nav_link

    st.subheader(f"Last ingest: {summary['project']} / {summary['dataset']} "
                 f"({summary['space']})")
    cols = st.columns(4)
    cols[0].metric("Items", f"{summary['total']:,}")
    cols[1].metric("Stored", f"{summary['stored']:,}")
    cols[2].metric("Already there (skipped)", f"{summary['skipped']:,}")
    cols[3].metric("Rejected", f"{len(summary['rejects']):,}")
    message = {"ok": st.success, "partial": st.warning}.get(summary["status"], st.error)
    message(f"Status: {summary['status']}")
    if len(summary["rejects"]):
        st.markdown("**Rejected items**")
        st.dataframe(summary["rejects"], width="stretch", hide_index=True)
        if summary["rejects_path"]:
            st.caption(f"Also written to `{summary['rejects_path']}`")
    nav_link("pages/2_Explore.py", "Explore this dataset", "🗺️")
