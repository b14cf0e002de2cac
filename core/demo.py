"""The offline demo project "demo": digits as PNG files in three datasets, in two or three spaces.

Datasets "train" / "test" / "production" (the split names), built by core.demo_model with
planted drift (all 9s only in production), label noise and model errors. Spaces:
  * "demo-mlp": the user's-own-model case: penultimate activations of a small MLP trained on
    the spot on train (64-d, modality "vector");
  * "pixels": the raw 8x8 pixels (64-d), a cheap baseline space;
  * "efficientnet-lite0": pretrained image embeddings, where the offline weights package is
    installed and with_pretrained is True.
Idempotent: point ids are deterministic, so a second run overwrites instead of duplicating.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image

from core.config import Settings
from core.demo_model import HIDDEN, SPLITS, DemoData, build_demo_data
from core.embedders.base import Embedder
from core.pipeline.ingest import ingest_items, ingest_vectors
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


def _pretrained_available() -> bool:
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
    data = build_demo_data(seed)
    items = demo_items(data, write_images(data.images, image_folder(settings)))
    pretrained = with_pretrained and _pretrained_available()
    total = len(items) * (3 if pretrained else 2)
    reports: list[IngestReport] = []
    for space, vectors in ((MLP_SPACE, data.embedding), (PIXELS_SPACE, data.pixels)):
        for split in SPLITS:
            rows = np.flatnonzero(data.split == split)
            reports.append(ingest_vectors(
                store, DEMO_PROJECT, split, space, [items[r] for r in rows], vectors[rows],
                progress=_shifted(progress, len(reports) // 3 * len(items) + _before(data, split), total)))
    if pretrained:
        reports.extend(_ingest_pretrained(store, settings, data, items, progress, total))
    elif with_pretrained:
        log.info("demo: EfficientNet-Lite0 weights not installed; skipping the pretrained image space")
    log.info("demo project loaded: %d items, %d spaces in %.1f s",
             len(items), len({r.space for r in reports}), time.perf_counter() - start)
    return reports


def _before(data: DemoData, split: str) -> int:
    """Items of the splits ingested before `split` (progress offset inside one space)."""
    return int(sum((data.split == s).sum() for s in SPLITS[: SPLITS.index(split)]))


def _ingest_pretrained(store: VectorStore, settings: Settings, data: DemoData, items: list[Item],
                       progress: Progress | None, total: int) -> list[IngestReport]:
    """The "efficientnet-lite0" space, embedded from the PNG files (skips what is stored)."""
    from core.embedders import EFFICIENTNET_LITE0, load_embedder

    # ModelEmbedder narrows `modality` to a Literal, which the Embedder protocol declares as str.
    embedder = cast(Embedder, load_embedder(EFFICIENTNET_LITE0, "image", device=settings.device,
                                            batch_size=settings.batch_size))
    reports = []
    for split in SPLITS:
        rows = np.flatnonzero(data.split == split)
        reports.append(ingest_items(
            store, DEMO_PROJECT, split, [items[r] for r in rows], embedder, settings=settings,
            progress=_shifted(progress, 2 * len(items) + _before(data, split), total)))
    return reports
