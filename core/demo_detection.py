"""The offline detection demo project "demo-detection": composed scenes, COCO labels and predictions with
planted errors, ingested as image and object points.

Real: the photographs (skimage.data) and the handwritten digits (scikit-learn), both bundled with
the packages. Simulated: the scenes (digits placed on the photos by core.demo_detection_scenes,
drawn by core.demo_detection_render), the label errors and the detector's predictions. The files
go to <data_dir>/demo/detection (an allowed data root): images/scene-NNNN.png, instances.json
(COCO labels), results.json (COCO results: predictions with scores) and planted.json (what was
planted, by object key, so tests and benchmarks can score the finders).
Spaces: "pixels" (raw gray pixels of each crop, no model: seconds) always, and
"efficientnet-lite0" (crops embedded by the offline weights) when installed and wanted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.auth import system_actor  # the demo is an internal job: its callers check the user may ingest
from core.config import Settings
from core.demo import pretrained_available, pretrained_embedder
from core.demo_detection_boxes import SIZE
from core.demo_detection_render import BACKGROUNDS, background_shapes, digits, render
from core.demo_detection_scenes import CLASSES, RATES, Annotation, Scene, layout_scenes, planted_counts
from core.embedders.base import Embedder
from core.embedders.pixels import PixelEmbedder
from core.pipeline.rejects import IngestReport
from core.store.base import VectorStore
from core.types import LABEL_SOURCE, PREDICTION_SOURCE, Progress

if TYPE_CHECKING:
    from core.datasets.detections import DetectionSet

log = logging.getLogger(__name__)

DETECTION_PROJECT = "demo-detection"
DETECTION_DATASET = "scenes"
N_SCENES = 240
FORMAT_VERSION = 1  # of planted.json; a different version or seed rewrites the images


@dataclass(frozen=True)
class DemoFiles:
    """Where the demo's files are: the images folder and the three JSON files."""

    folder: Path
    images: Path
    instances: Path
    predictions: Path
    planted: Path


def detection_folder(settings: Settings) -> Path:
    """<data_dir>/demo/detection: under settings.demo_dir, so an allowed data root."""
    return settings.demo_dir / "detection"


def demo_files(folder: Path) -> DemoFiles:
    return DemoFiles(folder, folder / "images", folder / "instances.json", folder / "results.json",
                     folder / "planted.json")


def build_scenes(n_scenes: int = N_SCENES, seed: int = 0) -> list[Scene]:
    """The demo's scenes (layout and planted errors, no pixels); deterministic for (n_scenes, seed)."""
    return layout_scenes(n_scenes, digits().target, background_shapes(), seed)


def write_demo(folder: Path, n_scenes: int = N_SCENES, seed: int = 0) -> DemoFiles:
    """Write the scenes' PNGs and the COCO / planted JSON files under folder; returns their paths.
    Images already written for the same (n_scenes, seed, version) are kept (a re-run is quick)."""
    files = demo_files(folder)
    scenes = build_scenes(n_scenes, seed)
    stamp = {"version": FORMAT_VERSION, "seed": seed, "scenes": n_scenes}
    fresh = _stamp(files.planted) != stamp
    files.images.mkdir(parents=True, exist_ok=True)
    for scene in scenes:
        path = files.images / scene.name
        if fresh or not path.is_file():
            # Fast zlib level: the default spends ~30 ms per photo-like scene for 10 % smaller files.
            render(scene, seed).save(path, compress_level=1)
    _write_json(files.instances, coco_instances(scenes))
    _write_json(files.predictions, coco_results(scenes))
    _write_json(files.planted, {**stamp, **planted_truth(scenes)})
    return files


def _stamp(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: doc.get(k) for k in ("version", "seed", "scenes")} if isinstance(doc, dict) else None


def _write_json(path: Path, doc: Any) -> None:
    # Write then rename: a reader never sees half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)


def _xywh(box: tuple[float, float, float, float]) -> list[float]:
    return [box[0], box[1], round(box[2] - box[0], 1), round(box[3] - box[1], 1)]


def coco_instances(scenes: list[Scene]) -> dict[str, Any]:
    """The label boxes as a COCO instances document (image ids from 1, category id = digit + 1)."""
    annotations: list[dict[str, Any]] = []
    for image_id, scene in enumerate(scenes, start=1):
        for label in scene.labels:
            xywh = _xywh(label.box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label.cls + 1,
                                "bbox": xywh, "area": round(xywh[2] * xywh[3], 2), "iscrowd": 0})
    return {
        "info": {"description": "embedscope detection demo: sklearn digits on skimage photos, simulated "
                 "scenes with planted label errors", "version": str(FORMAT_VERSION)},
        "images": [{"id": i, "file_name": s.name, "width": SIZE, "height": SIZE,
                    "background": BACKGROUNDS[s.background]} for i, s in enumerate(scenes, start=1)],
        "annotations": annotations,
        "categories": [{"id": c + 1, "name": name, "supercategory": "digit"} for c, name in enumerate(CLASSES)],
    }


def coco_results(scenes: list[Scene]) -> list[dict[str, Any]]:
    """The predictions as a COCO results list (what detectors write): image_id, category_id, bbox, score."""
    return [{"image_id": image_id, "category_id": p.cls + 1, "bbox": _xywh(p.box), "score": p.score}
            for image_id, scene in enumerate(scenes, start=1) for p in scene.predictions]


def planted_truth(scenes: list[Scene]) -> dict[str, Any]:
    """{"planted": {object key: kind}, "boxes": [one row per planted box], "counts", "rates", "objects"}.

    Object keys are the object points' keys, "<file_name>#<source>/<index>" (index: the box's rank
    among its image's labels / predictions, as core.datasets.detections.read_coco numbers them)."""
    planted: dict[str, str] = {}
    boxes: list[dict[str, Any]] = []
    for scene in scenes:
        for source, found in ((LABEL_SOURCE, scene.labels), (PREDICTION_SOURCE, scene.predictions)):
            for index, a in enumerate(found):
                if a.kind:
                    key = f"{scene.name}#{source}/{index}"
                    planted[key] = a.kind
                    boxes.append(_box_row(scene, source, index, a))
    return {"planted": planted, "boxes": boxes, "counts": planted_counts(scenes), "rates": RATES,
            "objects": sum(len(s.objects) for s in scenes)}


def _box_row(scene: Scene, source: str, index: int, a: Annotation) -> dict[str, Any]:
    truth = scene.objects[a.truth] if a.truth is not None else None
    return {"image": scene.name, "source": source, "index": index, "kind": a.kind, "class": CLASSES[a.cls],
            "box": list(a.box), "true_class": CLASSES[truth.cls] if truth else None,
            "true_box": list(truth.box) if truth else None}


def read_planted(folder: Path) -> dict[str, str]:
    """{object key: planted kind} from a written demo's planted.json."""
    return dict(json.loads(demo_files(folder).planted.read_text(encoding="utf-8"))["planted"])


def load_detection_demo(store: VectorStore, settings: Settings, progress: Progress | None = None, *,
                        with_pretrained: bool | None = None, n_scenes: int | None = None, seed: int = 0,
                        embedder: Callable[[], Embedder] | None = None) -> list[IngestReport]:
    """Create (or refresh) the "demo-detection" project: write the files, read them back as COCO,
    store the "pixels" space and, when with_pretrained (None: settings.demo_pretrained) and the
    offline EfficientNet-Lite0 weights are installed (or `embedder` makes a model, as tests do),
    a pretrained space of the crops (minutes on 2 CPU cores). One report per space.
    progress(done, total): images stored over all spaces. n_scenes: None = N_SCENES (240 scenes,
    about 1,000 true objects). Idempotent: deterministic ids, a re-run stores nothing twice."""
    start = time.perf_counter()
    det = prepare_detection_demo(settings, n_scenes, seed)
    if with_pretrained is None:
        with_pretrained = settings.demo_pretrained
    makers: list[Callable[[], Embedder]] = [PixelEmbedder]
    if with_pretrained and (embedder is not None or pretrained_available()):
        makers.append(embedder or (lambda: pretrained_embedder(settings)))
    elif with_pretrained:
        log.info("detection demo: EfficientNet-Lite0 weights not installed; only the pixels space")
    total = len(det.images) * len(makers)
    reports = [ingest_detection_space(store, settings, det, make(), _shifted(progress, n * len(det.images), total))
               for n, make in enumerate(makers)]
    log.info("detection demo loaded: %d images, %d boxes, %d spaces in %.1f s", len(det.images),
             len(det.objects), len(reports), time.perf_counter() - start)
    return reports


def prepare_detection_demo(settings: Settings, n_scenes: int | None = None, seed: int = 0) -> DetectionSet:
    """Write the demo's files under detection_folder(settings) and read them back as a DetectionSet."""
    from core.datasets.detections import read_coco

    files = write_demo(detection_folder(settings), N_SCENES if n_scenes is None else n_scenes, seed)
    return read_coco(files.instances, files.images, predictions=files.predictions, settings=settings)


def ingest_detection_space(store: VectorStore, settings: Settings, det: DetectionSet, embedder: Embedder,
                           progress: Progress | None = None) -> IngestReport:
    """The demo's images and boxes in embedder's space (crop mode); progress(done, images)."""
    from core.pipeline.objects_ingest import ingest_detections

    return ingest_detections(store, DETECTION_PROJECT, DETECTION_DATASET, det, embedder, actor=system_actor(),
                             mode="crop", settings=settings, progress=progress)


def _shifted(progress: Progress | None, offset: int, total: int) -> Progress | None:
    if progress is None:
        return None
    return lambda done, _total: progress(offset + done, total)
