"""The Ingest page's form (source, model, names) and its run: the CLI's code path, with progress."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import streamlit as st

from core.config import Settings
from core.errors import BadInputError
from core.types import Item, SpaceInfo
from ui import resources, state, uploads
from ui.page import PageContext
from ui.widgets.progress import ProgressBar

log = logging.getLogger(__name__)

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "zip"]
MANIFEST_TYPES = ["csv", "parquet", "jsonl"]
SOURCES = {"upload": "Upload images (files or a .zip)", "folder": "A folder under a data root",
           "manifest": "A manifest (CSV / Parquet / JSONL)"}
MODEL_KINDS = {"preset": "Preset model", "offline": "Offline model (installed package)",
               "hub": "Hugging Face hub name", "local": "Local model directory",
               "own": "My own embeddings (Parquet, or .npy + ids)"}


@dataclass
class Source:
    """Where the items come from; `images` are uploads, `folder` a data-root folder name."""

    kind: Literal["upload", "folder", "manifest"]
    images: list[Any] = field(default_factory=list)  # st UploadedFile
    folder: str = ""
    manifest: Any = None  # st UploadedFile


@dataclass
class ModelChoice:
    """A model name / directory to embed with, or the user's own vector files."""

    kind: str
    model: str = ""
    vectors: Any = None  # UploadedFile: .parquet or .npy
    ids: Any = None  # UploadedFile: ids for a .npy (one per line, or a CSV / Parquet)
    space: str = "own"


def names_section(ctx: PageContext) -> tuple[str, str]:
    """Project and dataset name inputs -> (project, dataset)."""
    left, right = st.columns(2)
    project = left.text_input("Project", value=ctx.project or "myproject", key="ing.project",
                              help="Datasets compared with each other live in one project.")
    dataset = right.text_input("Dataset", value="train", key="ing.dataset",
                               help="e.g. train, test, production, run-2024-06")
    return project.strip(), dataset.strip()


def _image_uploader(settings: Settings, key: str, label: str) -> list[Any]:
    files = st.file_uploader(label, type=IMAGE_TYPES, accept_multiple_files=True, key=key,
                             max_upload_size=settings.max_upload_mb)
    return list(files or [])


def _folder_input(settings: Settings, key: str, label: str) -> str:
    roots = ", ".join(f"`{r}`" for r in settings.allowed_roots)
    return st.text_input(label, key=key, help=f"Relative to, or inside, one of: {roots}. "
                         "Set EMBEDSCOPE_DATA_ROOTS to add folders.").strip()


def source_section(settings: Settings) -> Source:
    """The "what to ingest" widgets."""
    kind = st.radio("Data", list(SOURCES), format_func=SOURCES.__getitem__, key="ing.source",
                    horizontal=True)
    if kind == "upload":
        st.caption("Sub-folders inside a zip become labels (`cats/1.jpg` -> label `cats`).")
        return Source("upload", images=_image_uploader(settings, "ing.images", "Images or zip"))
    if kind == "folder":
        return Source("folder", folder=_folder_input(settings, "ing.folder", "Folder"))
    manifest = st.file_uploader("Manifest", type=MANIFEST_TYPES, key="ing.manifest",
                                max_upload_size=settings.max_upload_mb,
                                help="One row per item: a path / uri (or text) column, and "
                                "optional label, prediction, confidence, split and metadata.")
    st.caption("Relative paths in the manifest are resolved against this folder, or against "
               "uploaded images:")
    folder = _folder_input(settings, "ing.manifest_folder", "Image folder (optional)")
    images = _image_uploader(settings, "ing.manifest_images", "…or upload the images (optional)")
    return Source("manifest", images=images, folder=folder, manifest=manifest)


def _offline_models() -> list[str]:
    from core.embedders import available_offline_models

    return sorted(available_offline_models())  # model id -> path of the packaged weights


def model_section(settings: Settings) -> ModelChoice:
    """The "how to embed" widgets."""
    from core.embedders import PRESETS

    kind = st.radio("Embeddings", list(MODEL_KINDS), format_func=MODEL_KINDS.__getitem__,
                    key="ing.model_kind", horizontal=True)
    if kind == "preset":
        label = st.selectbox("Model", list(PRESETS), key="ing.preset",
                             format_func=lambda k: f"{k} ({PRESETS[k]})")
        return ModelChoice("preset", model=PRESETS[label] if label else "")
    if kind == "offline":
        offline = _offline_models()
        if not offline:
            st.info("No offline model packages are installed.")
        return ModelChoice("offline", model=st.selectbox("Model", offline, key="ing.offline") or "")
    if kind == "hub":
        st.caption("Needs internet access the first time (then the Hugging Face cache).")
        return ModelChoice("hub", model=st.text_input("Hub name", key="ing.hub",
                                                      placeholder="facebook/dinov2-small").strip())
    if kind == "local":
        return ModelChoice("local", model=_folder_input(settings, "ing.local_model",
                                                        "Model directory (save_pretrained)"))
    vectors = st.file_uploader("Vectors (.parquet with an id column and a vector column, or .npy)",
                               type=["parquet", "npy"], key="ing.vectors",
                               max_upload_size=settings.max_upload_mb)
    ids = st.file_uploader("Ids for the .npy (one per line, or CSV / Parquet)",
                           type=["txt", "csv", "parquet"], key="ing.ids",
                           max_upload_size=settings.max_upload_mb)
    space = st.text_input("Space name", value="own", key="ing.space").strip()
    return ModelChoice("own", vectors=vectors, ids=ids, space=space)


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


def _own_space(ctx: PageContext, project: str, name: str, dim: int, source: str) -> SpaceInfo:
    """The SpaceInfo for uploaded vectors; an existing space of that name must be compatible."""
    from core.errors import DimensionMismatchError
    from core.store import validate_name

    validate_name(name, "space name")
    existing = {s.name: s for s in ctx.store.list_spaces(project)}.get(name)
    if existing is not None and existing.modality != "vector":
        raise BadInputError(f"Space {name!r} of project {project!r} holds vectors of the model "
                            f"{existing.model}; choose another space name")
    if existing is not None and existing.dim != dim:
        raise DimensionMismatchError(f"{source}: vectors have {dim} dims but space {name!r} of "
                                     f"project {project!r} holds {existing.dim}-d vectors")
    return SpaceInfo(name, dim, "vector", description=f"own vectors from {source}")


def _ingest_own(ctx: PageContext, project: str, dataset: str, items: list[Item],
                choice: ModelChoice, bar: ProgressBar) -> Any:
    from core.datasets import load_own_embeddings
    from core.pipeline.ingest import ingest_vectors, rejects_folder

    if choice.vectors is None:
        raise BadInputError("Upload a vectors file (.parquet or .npy) first")
    vectors_path = _side_file(choice.vectors, ctx.settings, dataset)
    ids_path = _side_file(choice.ids, ctx.settings, dataset) if choice.ids is not None else None
    keys, vectors = load_own_embeddings(vectors_path, ids_path)
    space = _own_space(ctx, project, choice.space, int(vectors.shape[1]), choice.vectors.name)
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
