"""The offline demo project "demo": digits as PNG files in three datasets, in two or three spaces.

Datasets "train" / "test" / "production" (the split names), built by core.demo_model with
planted drift (all 9s only in production), label noise and model errors. Spaces:
  * "demo-mlp": the user's-own-model case: penultimate activations of a small MLP trained on
    the spot on train (64-d, modality "vector");
  * "pixels": the raw 8x8 pixels (64-d), a cheap baseline space;
  * "efficientnet-lite0": pretrained image embeddings, where the offline weights package is
    installed and with_pretrained is True.
Idempotent: point ids are deterministic, so a second run overwrites instead of duplicating.
load_demo does it all in the caller's thread (the CLI); core.demo_job.load_demo_quick stores
the two cheap spaces and the first map, and leaves the pretrained space to a background job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image

from core.auth import system_actor  # the demo is an internal job: its callers check the user may ingest
from core.config import Settings
from core.demo_model import HIDDEN, SPLITS, DemoData, build_demo_data
from core.embedders.base import Embedder
from core.pipeline.ingest import ingest_items
from core.pipeline.ingest_vectors import ingest_vectors
from core.pipeline.rejects import IngestReport
from core.store.base import VectorStore
from core.types import Item, Progress, SpaceInfo

log = logging.getLogger(__name__)

DEMO_PROJECT = "demo"
IMAGE_SIZE = 64  # the 8x8 digits are upscaled (nearest neighbour) so thumbnails are legible
MLP_SPACE = SpaceInfo(
    "demo-mlp", HIDDEN, "vector",
    description="Penultimate layer (64 ReLU units) of a small MLP digit classifier trained on "
    "the demo's train split, which has no 9s",
)
PIXELS_SPACE = SpaceInfo("pixels", 64, "vector", description="Raw 8x8 pixel intensities of each digit")

def image_folder(settings: Settings) -> Path:
    """Where the demo's PNG files go: <data_dir>/demo/digits (an allowed data root)."""
    return settings.demo_dir / "digits"


def write_images(images: np.ndarray, folder: Path) -> list[Path]:
    """Write images (n, 8, 8) in [0, 16] as IMAGE_SIZE x IMAGE_SIZE RGB PNGs named
    digit-<row>.png; files already there are kept (a re-run writes nothing). Returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for row, image in enumerate(images):
        path = folder / f"digit-{row:04d}.png"
        if not path.is_file():
            # Digits are dark strokes on white paper in the original scans: invert for display.
            gray = (255 - np.clip(image / 16.0 * 255.0, 0, 255)).astype(np.uint8)
            big = Image.fromarray(gray, mode="L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.NEAREST)
            big.convert("RGB").save(path)
        paths.append(path)
    return paths


def demo_items(data: DemoData, paths: list[Path]) -> list[Item]:
    """One Item per digit with label / prediction / confidence / split and the planted truth in meta."""
    return [
        Item(
            key=f"digit-{row:04d}",
            uri=str(paths[row].resolve()),
            label=data.label[row],
            prediction=str(data.prediction[row]),
            confidence=round(float(data.confidence[row]), 4),
            split=str(data.split[row]),
            meta={"true_label": str(data.truth[row]), "noisy_label": bool(data.noisy[row]), "index": row},
        )
        for row in range(len(paths))
    ]


def _shifted(progress: Progress | None, offset: int, total: int) -> Progress | None:
    if progress is None:
        return None
    return lambda done, _total: progress(offset + done, total)


def pretrained_available() -> bool:
    from core.embedders import EFFICIENTNET_LITE0, available_offline_models

    return EFFICIENTNET_LITE0 in available_offline_models()


def load_demo(
    store: VectorStore,
    settings: Settings,
    progress: Progress | None = None,
    *,
    with_pretrained: bool | None = None,
    seed: int = 0,
) -> list[IngestReport]:
    """Create (or refresh) the "demo" project; returns one IngestReport per (space, dataset).

    Spaces "demo-mlp" and "pixels" always; "efficientnet-lite0" too when with_pretrained (None:
    settings.demo_pretrained, i.e. EMBEDSCOPE_DEMO_PRETRAINED, default yes) and the
    offline weights are installed (about a minute on 2 CPU cores; resumable). Images are written
    under settings.demo_dir. Deterministic for a seed; running it again keeps the counts.
    progress(done, total): points stored so far over all spaces and datasets.
    """
    start = time.perf_counter()
    if with_pretrained is None:
        with_pretrained = settings.demo_pretrained
    data, items = prepare_demo(settings, seed)
    pretrained = with_pretrained and pretrained_available()
    total = len(items) * (3 if pretrained else 2)
    reports = ingest_own_spaces(store, data, items, progress, total)
    if pretrained:
        reports.extend(ingest_pretrained(store, settings, data, items, _shifted(progress, 2 * len(items), total)))
    elif with_pretrained:
        log.info("demo: EfficientNet-Lite0 weights not installed; skipping the pretrained image space")
    log.info("demo project loaded: %d items, %d spaces in %.1f s",
             len(items), len({r.space for r in reports}), time.perf_counter() - start)
    return reports


def prepare_demo(settings: Settings, seed: int = 0) -> tuple[DemoData, list[Item]]:
    """The demo's data (core.demo_model) and one Item per digit, its PNG written under demo_dir."""
    data = build_demo_data(seed)
    return data, demo_items(data, write_images(data.images, image_folder(settings)))


def ingest_own_spaces(store: VectorStore, data: DemoData, items: list[Item], progress: Progress | None = None,
                      total: int | None = None) -> list[IngestReport]:
    """Store the "demo-mlp" and "pixels" spaces (3 datasets each): six IngestReports.
    progress(done, total): points stored, of total (default: both spaces' points)."""
    total = 2 * len(items) if total is None else total
    reports: list[IngestReport] = []
    for space, vectors in ((MLP_SPACE, data.embedding), (PIXELS_SPACE, data.pixels)):
        for split in SPLITS:
            rows = np.flatnonzero(data.split == split)
            reports.append(ingest_vectors(
                store, DEMO_PROJECT, split, space, [items[r] for r in rows], vectors[rows], actor=system_actor(),
                progress=_shifted(progress, len(reports) // 3 * len(items) + _before(data, split), total)))
    return reports


def _before(data: DemoData, split: str) -> int:
    """Items of the splits ingested before `split` (progress offset inside one space)."""
    return int(sum((data.split == s).sum() for s in SPLITS[: SPLITS.index(split)]))


def pretrained_embedder(settings: Settings) -> Embedder:
    """The EfficientNet-Lite0 image embedder of the "efficientnet-lite0" space (offline weights)."""
    from core.embedders import EFFICIENTNET_LITE0, load_embedder

    # ModelEmbedder narrows `modality` to a Literal, which the Embedder protocol declares as str.
    return cast(Embedder, load_embedder(EFFICIENTNET_LITE0, "image", device=settings.device,
                                        batch_size=settings.batch_size))


def ingest_pretrained(store: VectorStore, settings: Settings, data: DemoData, items: list[Item],
                      progress: Progress | None = None,
                      embedder: Callable[[], Embedder] | None = None) -> list[IngestReport]:
    """The pretrained image space, embedded from the PNG files (skips what is stored): one
    IngestReport per dataset. progress(done, len(items)); embedder: what makes the model
    (default pretrained_embedder; tests pass a tiny one)."""
    model = (embedder or (lambda: pretrained_embedder(settings)))()
    reports = []
    for split in SPLITS:
        rows = np.flatnonzero(data.split == split)
        reports.append(ingest_items(
            store, DEMO_PROJECT, split, [items[r] for r in rows], model, actor=system_actor(), settings=settings,
            progress=_shifted(progress, _before(data, split), len(items))))
    return reports
