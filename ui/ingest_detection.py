"""The Ingest page's "Detection dataset" source: COCO / box manifest / YOLO inputs, object options (a model's
crops / ROI vectors, or the user's own object vectors), and the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.config import Settings
from core.datasets.detections import DetectionSet
from core.errors import BadInputError
from ui import uploads
from ui.ingest_form import ModelChoice
from ui.page import PageContext
from ui.text import md

if TYPE_CHECKING:
    from core.datasets.object_vectors import ObjectVectorsFile
    from core.pipeline.ingest_job import DetectionSource, ObjectVectorsSource

FORMATS = {"coco": "COCO (instances JSON + optional results JSON)", "boxes": "Box manifest (JSONL / Parquet)",
           "yolo": "YOLO folder (images/ + labels/ txt)"}
MODES = {"crop": "crop: embed each box's crop (same space as the images; text search works on objects)",
         "roi": "roi: ROI pooling of one forward pass per image (faster with many boxes; space <model>-roi)",
         "own": "own: your own object vectors (Parquet with an id column, or .npy + ids), no model"}
OWN = "own"
BOX_FORMATS = {"xywh": "[x, y, w, h]", "xyxy": "[x1, y1, x2, y2]"}


@dataclass
class DetectionInput:
    """What the detection form names: files (uploads or server paths under a data root) and options."""

    format: str = "coco"
    labels: Any = None  # UploadedFile: COCO instances JSON or box manifest
    labels_path: str = ""  # the same, as a file under a data root
    results: Any = None  # UploadedFile: COCO results JSON
    results_path: str = ""  # COCO results JSON, or (YOLO) the predictions folder, under a data root
    images: str = ""  # images folder under a data root (YOLO: the images folder or the dataset folder)
    box_format: str = "xywh"
    mode: str = "crop"
    iou: float = 0.5
    margin: float = 0.1
    vectors: Any = None  # mode "own": UploadedFile, .parquet or .npy
    vectors_path: str = ""  # the same, as a file under a data root
    ids: Any = None  # UploadedFile: the .npy's ids (one per line, or CSV / Parquet)
    ids_path: str = ""
    space: str = OWN  # the own space the vectors go to


def detection_section(settings: Settings) -> DetectionInput:
    """The widgets of a detection dataset source (files, images folder, object mode, IoU, margin)."""
    roots = ", ".join(md(str(r)) for r in settings.allowed_roots)
    where = f"A path relative to, or inside, one of: {roots}."
    fmt = st.radio("Format", list(FORMATS), format_func=FORMATS.__getitem__, key="ing.det.format", horizontal=True)
    inp = DetectionInput(str(fmt))
    if fmt == "yolo":
        inp.images = st.text_input("YOLO folder (images/ + labels/, or the images folder)", key="ing.det.images",
                                   help=f"{where} Class names from classes.txt or data.yaml.").strip()
        inp.results_path = st.text_input("Predictions folder (optional: class cx cy w h score per line)",
                                         key="ing.det.results_path", help=where).strip()
    else:
        coco = fmt == "coco"
        left, right = st.columns(2)
        inp.labels = left.file_uploader("COCO instances JSON" if coco else "Box manifest",
                                        type=["json"] if coco else ["jsonl", "parquet"], key="ing.det.labels",
                                        max_upload_size=settings.max_upload_mb)
        inp.labels_path = right.text_input("…or its path on the server", key="ing.det.labels_path",
                                           help=where).strip()
        if coco:
            inp.results = left.file_uploader("COCO results JSON (optional predictions)", type=["json"],
                                             key="ing.det.results", max_upload_size=settings.max_upload_mb)
            inp.results_path = right.text_input("…or its path on the server", key="ing.det.results_path",
                                                help=where).strip()
        else:
            inp.box_format = str(st.radio("Boxes as", list(BOX_FORMATS), format_func=BOX_FORMATS.__getitem__,
                                          key="ing.det.box_format", horizontal=True))
        inp.images = st.text_input("Images folder" + ("" if coco else " (optional: default the manifest's)"),
                                   key="ing.det.images", help=f"{where} The files' paths start from it.").strip()
    inp.mode = str(st.radio("Objects", list(MODES), format_func=MODES.__getitem__, key="ing.det.mode"))
    if inp.mode == OWN:
        _own_vectors_inputs(inp, settings, where)
    left, right = st.columns(2)
    inp.iou = float(left.number_input("IoU to match a prediction to a label", 0.05, 1.0, 0.5, 0.05,
                                      key="ing.det.iou"))
    if inp.mode != OWN:  # own vectors are made already: no crops
        inp.margin = float(right.number_input("Crop margin (fraction of the box on each side)", 0.0, 2.0, 0.1,
                                              0.05, key="ing.det.margin"))
    return inp


def _own_vectors_inputs(inp: DetectionInput, settings: Settings, where: str) -> None:
    """The own-object-vectors widgets: the vectors file (+ ids for a .npy), upload or server path, and the space."""
    st.caption("One row per object, keyed by its id: a COCO label's annotation id or a manifest box's \"id\", "
               "else its object key (`<image key>#label/<n>` or `#prediction/<n>`); a row keyed by an image key "
               "is that image's own point. The Embeddings choice below is not used.")
    left, right = st.columns(2)
    inp.vectors = left.file_uploader("Object vectors (.parquet: id + vector column, or .npy)",
                                     type=["parquet", "npy"], key="ing.det.vectors",
                                     max_upload_size=settings.max_upload_mb)
    inp.vectors_path = right.text_input("…or its path on the server", key="ing.det.vectors_path",
                                        help=where).strip()
    inp.ids = left.file_uploader("Ids for the .npy (one per line, or CSV / Parquet)", type=["txt", "csv", "parquet"],
                                 key="ing.det.ids", max_upload_size=settings.max_upload_mb)
    inp.ids_path = right.text_input("…or its path on the server", key="ing.det.ids_path", help=where).strip()
    inp.space = st.text_input("Space name", value=OWN, key="ing.det.space").strip()


def server_file(text: str, settings: Settings, what: str) -> Path:
    """The existing file `text` names under a data root (relative names are tried in each root);
    BadInputError naming it otherwise (outside the roots, missing)."""
    if "\x00" in text:
        raise BadInputError(f"{what} {text!r} contains a NUL byte")
    raw = Path(text).expanduser()
    roots = settings.allowed_roots
    allowed = ", ".join(str(r) for r in roots)
    for candidate in [raw] if raw.is_absolute() else [root / raw for root in roots]:
        resolved = candidate.resolve()  # symlinks followed: the target must lie under a root too
        if not any(resolved.is_relative_to(r) for r in roots):
            raise BadInputError(f"{what} {text!r} is outside the data roots ({allowed})")
        if resolved.is_file():
            return resolved
    raise BadInputError(f"{what} {text!r} is not a file under the data roots ({allowed})")


def _file(upload: Any, path: str, settings: Settings, dataset: str, what: str) -> Path | None:
    """An uploaded file (kept under uploads/.files/<dataset>/, its name unchanged so errors name it) or a
    server path; None when neither is given."""
    from ui.ingest_run import _side_file

    if upload is not None and path:
        raise BadInputError(f"{what}: upload it or name its path, not both")
    if upload is not None:
        return _side_file(upload, settings, dataset)
    return server_file(path, settings, what) if path else None


def read_detections(inp: DetectionInput, settings: Settings, dataset: str) -> DetectionSet:
    """The DetectionSet the form names, read by the CLI's readers (CoreError naming the bad file / box)."""
    from core.datasets.detections import read_box_manifest, read_coco, read_yolo, yolo_images

    if inp.format == "yolo":
        if not inp.images:
            raise BadInputError("Name the YOLO folder (under a data root)")
        folder = yolo_images(uploads.resolve_data_folder(inp.images, settings))
        predictions = uploads.resolve_data_folder(inp.results_path, settings) if inp.results_path else None
        return read_yolo(folder, predictions_dir=predictions, settings=settings)
    what = "COCO instances JSON" if inp.format == "coco" else "Box manifest"
    labels = _file(inp.labels, inp.labels_path, settings, dataset, what)
    if labels is None:
        raise BadInputError(f"Upload the {what} or name its path first")
    images = uploads.resolve_data_folder(inp.images, settings) if inp.images else None
    if inp.format == "boxes":
        return read_box_manifest(labels, images, box_format=inp.box_format, settings=settings)
    if images is None:
        raise BadInputError("Name the images folder (under a data root) the COCO file_name paths start from")
    results = _file(inp.results, inp.results_path, settings, dataset, "COCO results JSON")
    return read_coco(labels, images, predictions=results, settings=settings)


def own_vectors(ctx: PageContext, project: str, dataset: str, inp: DetectionInput) -> ObjectVectorsFile:
    """The own object vectors the form names (an upload or a file under a data root; a .npy with its ids),
    checked against the size of an existing space of that name (BadInputError / DimensionMismatchError)."""
    from core.datasets.object_vectors import open_object_vectors
    from core.store.names import validate_name

    space = validate_name(inp.space or OWN, "space name")
    vectors = _file(inp.vectors, inp.vectors_path, ctx.settings, dataset, "Object vectors file")
    if vectors is None:
        raise BadInputError("Upload the object vectors (.parquet, or .npy + ids) or name their path first")
    ids = _file(inp.ids, inp.ids_path, ctx.settings, dataset, "Ids file")
    existing = {s.name: s for s in ctx.store.list_spaces(project)}.get(space) \
        if project in ctx.store.list_projects() else None
    return open_object_vectors(vectors, ids, dim=existing.dim if existing else None)


def _source(ctx: PageContext, project: str, dataset: str, inp: DetectionInput, choice: ModelChoice,
            det: DetectionSet) -> DetectionSource | ObjectVectorsSource:
    """What stores the objects: the user's own vectors (mode "own"), else the chosen model."""
    from core.pipeline.ingest_job import DetectionSource, ObjectVectorsSource
    from ui import resources
    from ui.ingest_run import _model_name

    if inp.mode == OWN:
        vectors = own_vectors(ctx, project, dataset, inp)
        st.write(f"{vectors.rows:,} vector rows of {vectors.dim} values in {md(vectors.path.name)}.")
        return ObjectVectorsSource(det, vectors, inp.space or OWN, inp.iou)
    return DetectionSource(det, resources.get_model(_model_name(choice, ctx.settings)), inp.mode, inp.margin,
                           inp.iou)


def run_detection(ctx: PageContext, project: str, dataset: str, inp: DetectionInput,
                  choice: ModelChoice) -> dict[str, Any] | None:
    """Read the boxes, embed images and objects with the chosen model (run_ingest(DetectionSource)) or store
    the user's own object vectors (run_ingest(ObjectVectorsSource)) as a background job, keep the summary
    (+ DetectionReport.summary(), the counts line) in session state; CoreError propagates.
    None while the ingest still runs in the background (ui.ingest_run.follow_ingest finishes it)."""
    from ui.ingest_run import check_layers, finish_ingest, ingest, ingest_status, settle_status

    if inp.mode != OWN and choice.kind == "own":
        raise BadInputError("A detection dataset is embedded with a model (its boxes are cut from the images): "
                            "choose a model, or Objects: own for your own object vectors")
    if inp.mode != OWN and check_layers(choice):
        raise BadInputError("Layers: a detection dataset is embedded with one layer (clear the Layers field)")
    with ingest_status(project, dataset) as status:
        st.write("Reading the boxes…")
        det = read_detections(inp, ctx.settings, dataset)
        counts = det.counts()
        st.write(f"{counts['images']:,} images, {counts['label']:,} labels, {counts['prediction']:,} "
                 f"predictions, {counts['rejects']:,} rejected while reading.")
        job = _source(ctx, project, dataset, inp, choice, det)
        outcome = ingest(ctx, project, dataset, det.images, job, status)
        settle_status(status, project, dataset, outcome)
    return None if outcome is None else finish_ingest(outcome, dataset)
