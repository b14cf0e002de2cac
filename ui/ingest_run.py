"""Run an ingest from the Ingest page's form: the CLI's use case (core.pipeline.ingest_job, index
build included), with a progress bar, and the result summary kept in session state across reruns."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.config import Settings
from core.errors import BadInputError
from core.pipeline.ingest_job import (
    PHASE_INDEX,
    DetectionSource,
    IngestOutcome,
    LayersSource,
    ModelSource,
    ObjectVectorsSource,
    VectorSource,
)
from core.pipeline.objects_plan import DetectionReport
from core.types import Item
from ui import jobs_view, resources, state, uploads
from ui.actor import current_actor
from ui.ingest_form import ModelChoice, Source
from ui.page import PageContext
from ui.text import md

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


def collect_items(source: Source, settings: Settings, dataset: str, *, own_vectors: bool = False) -> list[Item]:
    """The items to ingest, read by core.datasets (the CLI's readers). With own_vectors a manifest
    may hold ids, labels and metadata only (the vectors are the content), as in the CLI."""
    from core.datasets import from_image_folder, from_manifest
    from core.datasets.manifest import require_reachable

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
    items = from_manifest(manifest, settings, base_dir=root, require_content=not own_vectors)
    if not own_vectors:
        require_reachable(items, settings, source.manifest.name)  # before any model loads
    return items


def _model_name(choice: ModelChoice, settings: Settings) -> str:
    if not choice.model:
        raise BadInputError("Choose a model first")
    if choice.kind == "local":
        # Only model folders under the data roots: a shared dashboard must not load arbitrary paths.
        return str(uploads.resolve_data_folder(choice.model, settings))
    return choice.model


def check_layers(choice: ModelChoice) -> list[str]:
    """The Layers field as layer specs ([] when empty: the pooled output); BadInputError naming the
    bad part (the CLI's `--layers` parser)."""
    from core.embedders.layers import parse_layers

    if choice.kind == "own" or not choice.layers.strip():
        return []
    try:
        return parse_layers(choice.layers)
    except BadInputError as e:
        raise BadInputError(f"Layers: {e}") from e


def _layers(model: str, layers: list[str], settings: Settings) -> LayersSource:
    """Several layers of one model, embedded in one forward pass (loaded for this ingest: a layer
    sweep is a one-off, unlike the single model resources.get_model keeps)."""
    from core.embedders.layers import load_layers

    return LayersSource(load_layers(model, layers, device=settings.device, batch_size=settings.batch_size,
                                    allowed_roots=settings.allowed_roots,
                                    allow_pickled=settings.allow_pickled_models))


def _source(ctx: PageContext, dataset: str, choice: ModelChoice) -> ModelSource | LayersSource | VectorSource:
    """The model (loaded once per process), several of its layers, or the uploaded vectors to ingest with."""
    from core.datasets import open_own_embeddings

    if choice.kind != "own":
        layers = check_layers(choice)
        if layers:
            return _layers(_model_name(choice, ctx.settings), layers, ctx.settings)
        return ModelSource(resources.get_model(_model_name(choice, ctx.settings)))
    if choice.vectors is None:
        raise BadInputError("Upload a vectors file (.parquet or .npy) first")
    vectors_path = _side_file(choice.vectors, ctx.settings, dataset)
    ids_path = _side_file(choice.ids, ctx.settings, dataset) if choice.ids is not None else None
    own = open_own_embeddings(vectors_path, ids_path)  # checked now, read block by block by the ingest
    # Joined by key: vectors without an item get a bare payload, items without a vector are rejects.
    return VectorSource(choice.space, own, own.keys, choice.vectors.name)


INGEST_JOB = "ingest.run"  # the key under which the Ingest page follows its ingest job (ui.jobs_view)


def ingest(ctx: PageContext, project: str, dataset: str, items: list[Item],
           source: ModelSource | LayersSource | VectorSource | DetectionSource | ObjectVectorsSource,
           status: Any) -> IngestOutcome | None:
    """The CLI's ingest use case (core.pipeline.ingest_job.run_ingest) as a background job (core.jobs.work.ingest:
    listed for everyone, cancellable); then, for a large space, the search index is built in the background
    (core.pipeline.indexing: a child process on a copy), so search works (exact) meanwhile. The outcome when
    it ended within settings.job_wait_s, else None: its progress shows, and follow_ingest finishes it."""
    from core.jobs.work import ingest as ingest_job

    spec = ingest_job(ctx.store, project, dataset, items, source, actor=current_actor(), settings=ctx.settings)
    job = jobs_view.track(INGEST_JOB, spec.title, jobs_view.start(INGEST_JOB, spec))
    if job is None:
        return None
    outcome: IngestOutcome = job.result
    for report in outcome.all_reports():  # one line per space made (several for a Layers list)
        st.write(space_line(report))
    if outcome.index_building:
        st.write(f"{PHASE_INDEX[:1].upper()}{PHASE_INDEX[1:]} (search works meanwhile, exact)")
    return outcome


def follow_ingest() -> None:
    """The ingest this session started on an earlier run, still in the background: its progress; once it
    has ended, its summary (kept in session state) and a rerun, so the sidebar shows the new dataset."""
    job = jobs_view.track(INGEST_JOB, "Ingesting")
    if job is not None:
        outcome: IngestOutcome = job.result
        finish_ingest(outcome, outcome.report.dataset)
        st.rerun()


def finish_ingest(outcome: IngestOutcome, dataset: str) -> dict[str, Any]:
    """Open what was ingested in the sidebar and keep the summary (shown by show_summary) in session state."""
    report = outcome.report
    # No cache to clear: every cached read is keyed on the space's revision, which this changed.
    state.set_project(report.project)
    state.set_space(report.space)
    state.set_datasets([dataset])
    summary = summarize(report, index_built=outcome.index_built)
    summary["index_building"] = outcome.index_building
    summary["spaces"] = [space_line(r) for r in outcome.all_reports()]
    summary["status"] = worst_status(outcome)
    if isinstance(report, DetectionReport):  # images, objects, rejects and match statuses
        summary["detection"] = report.summary()
    st.session_state[state.LAST_INGEST] = summary
    return summary


def space_line(report: Any) -> str:
    """"Space tiny-vit-hidden-4: 6 stored, 0 already there (ok)" for one space's IngestReport."""
    return (f"Space {md(report.space)}: {report.stored:,} stored, {report.skipped:,} already there "
            f"({md(report.status)})")


def run_ingest(ctx: PageContext, project: str, dataset: str, source: Source,
               choice: ModelChoice) -> dict[str, Any] | None:
    """Read, embed and store one dataset exactly like `python -m core ingest`; return a summary (None
    while it still runs in the background: follow_ingest finishes it).

    CoreError (bad names, files, models, store) propagates for show_errors() to display.
    """
    from core.store import validate_name
    from ui.ingest_form import missing_names

    ask = missing_names(project, dataset)
    if ask is not None:
        raise BadInputError(ask)
    validate_name(project, "project")
    validate_name(dataset, "dataset")
    if source.kind == "detection":  # images + one point per box (ui.ingest_detection)
        from ui.ingest_detection import run_detection

        return run_detection(ctx, project, dataset, source.detection, choice)
    check_layers(choice)  # a bad Layers entry is named before any file is read or model loaded
    with ingest_status(project, dataset) as status:
        st.write("Reading the items…")
        own = choice.kind == "own"
        items = [] if own and source.kind == "upload" and not source.images else \
            collect_items(source, ctx.settings, dataset, own_vectors=own)
        st.write(f"{len(items):,} items found.")
        outcome = ingest(ctx, project, dataset, items, _source(ctx, dataset, choice), status)
        settle_status(status, project, dataset, outcome)
    return None if outcome is None else finish_ingest(outcome, dataset)


@contextmanager
def ingest_status(project: str, dataset: str) -> Iterator[Any]:
    """The status box of one dashboard ingest (items or detections). When the block raises, the box must not
    keep saying "Ingesting…": it says it failed, and why (show_errors() shows the full message and logs the
    traceback)."""
    with st.status(f"Ingesting {md(project)}/{md(dataset)}…", expanded=True) as status:
        try:
            yield status
        except Exception as e:
            status.update(label=f"Ingest of {md(project)}/{md(dataset)} failed: {md(failure(e), limit=200)}",
                          state="error", expanded=True)
            raise


def settle_status(status: Any, project: str, dataset: str, outcome: IngestOutcome | None) -> None:
    """The status box's last word: still running in the background (outcome None), or how it ended."""
    if outcome is None:
        status.update(label=f"Ingesting {md(project)}/{md(dataset)} in the background…", state="running")
    else:
        status.update(label=status_label(outcome), state="error" if worst_status(outcome) == "failed" else "complete")


def worst_status(outcome: IngestOutcome) -> str:
    """The ingest's status over every space it wrote: failed, else partial, else the first's."""
    reports = outcome.all_reports()
    return next((s for s in ("failed", "partial") if any(r.status == s for r in reports)), outcome.report.status)


def status_label(outcome: IngestOutcome) -> str:
    """The status box's last label, e.g. "Ingest ok: 6 stored in each of 3 spaces"."""
    reports = outcome.all_reports()
    stored = f"{outcome.report.stored:,} stored"
    if len(reports) > 1:  # a Layers list: the counts differ only when a space was partly there
        stored += (f" in each of {len(reports)} spaces" if len({r.stored for r in reports}) == 1
                   else f" in the first of {len(reports)} spaces")
    indexed = " · building the search index…" if outcome.index_building else ""
    return f"Ingest {worst_status(outcome)}: {stored}{indexed}"


def failure(error: BaseException) -> str:
    """The one-line reason an ingest failed, for its status box: a CoreError's message, else the
    exception's type and text."""
    from core.errors import CoreError

    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if isinstance(error, CoreError) and text else f"{type(error).__name__}: {text}".rstrip(": ")


def summarize(report: Any, *, index_built: bool = False) -> dict[str, Any]:
    """A plain dict of an IngestReport (kept in session state across reruns); index_built: the
    ingest built the space's search index."""
    rejects = pd.DataFrame([{"key": r.item.key, "uri": r.item.uri, "reason": r.reason}
                            for r in report.rejects], columns=["key", "uri", "reason"])
    return {"project": report.project, "dataset": report.dataset, "space": report.space,
            "status": report.status,
            "total": report.total, "stored": report.stored, "skipped": report.skipped,
            "rejects": rejects, "index_built": index_built,
            "rejects_path": str(report.rejects_path) if report.rejects_path else None}


def show_summary(summary: dict[str, Any]) -> None:
    """The result of the last ingest: counts, status, rejects table, link to Explore."""
    from ui.page import nav_link

    st.subheader(f"Last ingest: {md(summary['project'])} / {md(summary['dataset'])} "
                 f"({md(summary['space'])})")
    cols = st.columns(4)
    cols[0].metric("Items", f"{summary['total']:,}")
    cols[1].metric("Stored", f"{summary['stored']:,}")
    cols[2].metric("Already there (skipped)", f"{summary['skipped']:,}")
    cols[3].metric("Rejected", f"{len(summary['rejects']):,}")
    message = {"ok": st.success, "partial": st.warning}.get(summary["status"], st.error)
    message(f"Status: {summary['status']}")
    if summary.get("detection"):  # images, objects, rejects and match statuses (DetectionReport.summary())
        st.info(md(summary["detection"], limit=600), icon=":material/select_all:")
    if len(summary.get("spaces") or []) > 1:
        st.markdown("**Spaces made** (one forward pass)  \n" + "  \n".join(summary["spaces"]))
    if summary.get("index_building"):
        _show_index_state(summary)
    if summary.get("index_built"):
        st.caption("The space is large: its search index was built, so searches use it "
                   "(approximate, fast) instead of scanning every point.")
    if len(summary["rejects"]):
        st.markdown("**Rejected items**")
        st.dataframe(summary["rejects"], width="stretch", hide_index=True)
        if summary["rejects_path"]:
            st.caption(f"Also written to `{summary['rejects_path']}`")
    nav_link("pages/2_Explore.py", "Explore this dataset", ":material/map:")


def _show_index_state(summary: dict[str, Any]) -> None:
    """The background index build of the last ingest's space: running, done or failed."""
    from core.pipeline.indexing import index_build

    build = index_build(resources.get_store(), summary["project"], summary["space"])
    if build is None:
        return
    if build.running:
        st.info(f"Building the search index… {build.elapsed_s:.0f} s (search works meanwhile, exact; "
                "the Home page shows when it is built)")
    elif build.error is not None:
        st.error(f"Building the search index failed: {build.error}")
    elif build.discarded:
        st.warning("The space changed while its search index was built: run the ingest again to index it")
    else:
        st.success(f"Search index built in {build.elapsed_s:.0f} s")
