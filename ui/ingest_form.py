"""The Ingest page's form: names, what to ingest (uploads / folder / manifest), how to embed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import streamlit as st

from core.config import Settings
from ui.page import PageContext
from ui.text import md

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "zip"]
MANIFEST_TYPES = ["csv", "parquet", "jsonl"]
SOURCES = {"upload": "Upload images (files or a .zip)", "folder": "A folder under a data root",
           "manifest": "A manifest (CSV / Parquet / JSONL)",
           "detection": "Detection dataset (COCO / box manifest / YOLO)"}
MODEL_KINDS = {"preset": "Preset model", "offline": "Offline model (installed package)",
               "hub": "Hugging Face hub name", "local": "Local model directory",
               "own": "My own embeddings (Parquet, or .npy + ids)"}


@dataclass
class Source:
    """Where the items come from; `images` are uploads, `folder` a data-root folder name."""

    kind: Literal["upload", "folder", "manifest", "detection"]
    images: list[Any] = field(default_factory=list)  # st UploadedFile
    folder: str = ""
    manifest: Any = None  # st UploadedFile
    detection: Any = None  # ui.ingest_detection.DetectionInput


@dataclass
class ModelChoice:
    """A model name / directory to embed with, or the user's own vector files."""

    kind: str
    model: str = ""
    vectors: Any = None  # UploadedFile: .parquet or .npy
    ids: Any = None  # UploadedFile: ids for a .npy (one per line, or a CSV / Parquet)
    space: str = "own"
    layers: str = ""  # "" = the model's pooled output; "hidden:4, hidden:8, pooled" = one space each


def names_section(ctx: PageContext) -> tuple[str, str]:
    """Project and dataset name inputs -> (project, dataset), both empty until the user types them:
    a default (the sidebar's project, "train") let an upload land silently in an existing training set."""
    left, right = st.columns(2)
    existing = f" (the sidebar's is {md(ctx.project)})" if ctx.project else ""
    project = left.text_input("Project", value="", key="ing.project", placeholder="e.g. pets",
                              help=f"An existing project{existing} or a new one. Datasets compared "
                                   "with each other live in one project.")
    dataset = right.text_input("Dataset", value="", key="ing.dataset", placeholder="e.g. train-2024-06",
                               help="A new name adds a dataset; an existing one adds to it (items "
                                    "already stored are skipped). e.g. train, test, production")
    return project.strip(), dataset.strip()


def missing_names(project: str, dataset: str) -> str | None:
    """What to ask for before an ingest can start ("Name the project and the dataset…"), or None."""
    missing = [what for what, value in (("project", project), ("dataset", dataset)) if not value]
    if not missing:
        return None
    return (f"Name the {' and the '.join(missing)} to ingest into: an existing "
            f"{'one' if len(missing) == 1 else 'project'} adds to it, a new name creates it.")


def _image_uploader(settings: Settings, key: str, label: str) -> list[Any]:
    files = st.file_uploader(label, type=IMAGE_TYPES, accept_multiple_files=True, key=key,
                             max_upload_size=settings.max_upload_mb)
    return list(files or [])


def _folder_input(settings: Settings, key: str, label: str) -> str:
    roots = ", ".join(md(str(r)) for r in settings.allowed_roots)
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
    if kind == "detection":
        from ui.ingest_detection import detection_section

        st.caption("One point per image and one per box; labels matched to predictions.")
        return Source("detection", detection=detection_section(settings))
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


def offline_note() -> str:
    """Which models work without internet on this install (cheap: no folder scan, no network)."""
    from core.embedders.catalog import package_options

    installed = [f"`{o.name}` ({o.modality})" for o in package_options() if o.offline]
    packages = f"the installed packages {', '.join(installed)}" if installed else "no offline package (none installed)"
    return (f"Without internet: {packages}, or a local model folder under the data roots "
            "(*Local model directory*); hub models only when already in the Hugging Face cache. "
            "`embedscope models` lists them all.")


LAYERS_HELP = ("Empty: one space from the model's pooled output. Several layers, comma-separated (e.g. "
               "`hidden:4, hidden:8, pooled`), make one space each from a single forward pass: a layer "
               "sweep for the Evaluate page's scorecard at the cost of one ingest. `hidden:-2` counts from "
               "the last layer.")


def layers_problem(text: str) -> str | None:
    """Why a Layers entry cannot be used (naming the bad part; core.embedders.layers.parse_layers,
    the CLI's `--layers` parser), or None when it can."""
    from core.embedders.layers import parse_layers
    from core.errors import BadInputError

    try:
        parse_layers(text)
    except BadInputError as e:
        return f"Layers: {e}"
    return None


def layers_input() -> str:
    """The optional Layers field of a model choice, with the parser's message under it when it is bad."""
    text = st.text_input("Layers (optional)", key="ing.layers", help=LAYERS_HELP,
                         placeholder="the pooled output; or e.g. hidden:4, hidden:8, pooled").strip()
    problem = layers_problem(text) if text else None
    if problem:
        st.error(md(problem, limit=300), icon=":material/error:")
    return text


def model_section(settings: Settings) -> ModelChoice:
    """The "how to embed" widgets: a model (and optionally several of its layers), or own vectors."""
    choice = _model_choice(settings)
    if choice.kind != "own":
        choice.layers = layers_input()
    return choice


def _model_choice(settings: Settings) -> ModelChoice:
    from core.embedders import PRESETS

    kind = st.radio("Embeddings", list(MODEL_KINDS), format_func=MODEL_KINDS.__getitem__,
                    key="ing.model_kind", horizontal=True)
    st.caption(offline_note())
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
        st.caption("Needs internet access the first time (then the Hugging Face cache). A folder "
                   "typed here must lie under the data roots, like a local model directory.")
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
