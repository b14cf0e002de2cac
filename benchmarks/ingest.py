"""Ingest throughput: JPEG decode -> preprocess -> embed -> upsert, against model-only and matmul rates.

Builds a CLIP ViT-B/32-shaped model from its config (random weights, same cost as the real
openai/clip-vit-base-patch32), writes N generated JPEGs, then prints:
  * the fp32 matmul rate of this machine (torch.mm of large matrices), the ceiling;
  * model-only img/s and GFLOP/s for each variant (memory format x precision x threads) and its
    worst cosine to the fp32 reference (a variant is acceptable at >= 0.99);
  * end-to-end img/s of the fastest acceptable variant through core.pipeline.ingest.ingest_items
    when it exists, else through an overlapped thread-pool loop written here (said in the output);
  * the ratios end-to-end / model-only (target >= 0.9) and model / matmul (target >= 0.6).

    python benchmarks/ingest.py --n 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.embedders import ModelEmbedder, configure_threads, load_embedder  # noqa: E402
from core.types import Item  # noqa: E402
from tests.tiny_models import make_clip_b32_shaped  # noqa: E402

TOLERANCE = 0.99  # minimum cosine to the fp32 reference for a variant to be acceptable
PROJECT, DATASET = "bench", "jpegs"


def make_jpegs(folder: Path, n: int, size: tuple[int, int] = (500, 375)) -> list[Path]:
    """n photo-like JPEGs (smooth gradients + a few shapes + noise, quality 90), ImageNet-sized."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    paths = []
    for i in range(n):
        base = rng.uniform(0, 255, 3) + rng.uniform(-0.3, 0.3, 3) * xx[..., None] + rng.uniform(-0.3, 0.3, 3) * yy[..., None]
        cx, cy, r = rng.uniform(0, size[0]), rng.uniform(0, size[1]), rng.uniform(20, 120)
        base[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 torch.mm rate in GFLOP/s (2 n^3 flops per product)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def model_gflop_per_image(embedder: ModelEmbedder, pixels: np.ndarray) -> float:
    """FLOPs of one image's forward pass, counted by torch's FlopCounterMode (matmuls + convs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        embedder.backend.model.get_image_features(pixel_values=torch.from_numpy(pixels[:1]))  # type: ignore[attr-defined]
    return counter.get_total_flops() / 1e9


def set_channels_last(embedder: ModelEmbedder, on: bool) -> None:
    """Benchmark-only switch of the memory format the loader chose (channels_last for conv nets)."""
    import torch

    backend: Any = embedder.backend
    backend.channels_last = on
    backend.model.to(memory_format=torch.channels_last if on else torch.contiguous_format)


def model_only(embedder: ModelEmbedder, pixels: np.ndarray) -> tuple[float, np.ndarray]:
    """(img/s, vectors) for preprocessed tensors already in memory; one warm-up batch first."""
    embedder.embed_preprocessed(pixels[: embedder.batch_size])
    start = time.perf_counter()
    vectors = embedder.embed_preprocessed(pixels)
    return len(pixels) / (time.perf_counter() - start), vectors


def _decode_and_preprocess(embedder: ModelEmbedder, paths: list[Path]) -> np.ndarray:
    images = []
    for path in paths:
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    return embedder.preprocess(images)


def end_to_end_own(embedder: ModelEmbedder, paths: list[Path], store: Any, workers: int) -> float:
    """Decode + preprocess in `workers` threads, `workers + 1` batches ahead of the model."""
    from core.ids import point_id

    info = store.ensure_space(PROJECT, embedder.space_info())
    batches = [paths[i : i + embedder.batch_size] for i in range(0, len(paths), embedder.batch_size)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[Future[np.ndarray]] = [pool.submit(_decode_and_preprocess, embedder, b) for b in batches[: workers + 1]]
        for i, batch in enumerate(batches):
            pixels = pending.pop(0).result()
            if i + workers + 1 < len(batches):
                pending.append(pool.submit(_decode_and_preprocess, embedder, batches[i + workers + 1]))
            vectors = embedder.embed_preprocessed(pixels)
            items = [Item(key=p.name, uri=str(p)) for p in batch]
            store.upsert(PROJECT, info.name, [point_id(PROJECT, DATASET, it.key) for it in items], vectors,
                         [it.payload(DATASET) for it in items])
    return len(paths) / (time.perf_counter() - start)


def end_to_end_pipeline(embedder: ModelEmbedder, paths: list[Path], store: Any, data_dir: Path) -> float:
    """Through the real core.pipeline.ingest.ingest_items (its own decoding / threading)."""
    from core.config import Settings
    from core.pipeline.ingest import ingest_items

    settings = Settings(data_dir=data_dir, data_roots=(paths[0].parent,), batch_size=embedder.batch_size)
    items = [Item(key=p.name, uri=str(p)) for p in paths]
    start = time.perf_counter()
    report = ingest_items(store, PROJECT, DATASET, items, embedder, settings=settings)
    elapsed = time.perf_counter() - start
    if report.stored != len(paths):
        raise RuntimeError(f"pipeline stored {report.stored} of {len(paths)}: {report.rejects[:3]}")
    return len(paths) / elapsed


def _pipeline_available() -> bool:
    try:
        from core.pipeline.ingest import ingest_items  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="number of JPEGs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="decode / preprocess threads (own loop)")
    parser.add_argument("--threads", default="", help="comma-separated torch thread counts to try (default: all CPUs)")
    args = parser.parse_args(argv)

    from core.embedders.runtime import cpu_count
    from core.store import EdgeStore

    thread_counts = [int(t) for t in args.threads.split(",") if t] or [cpu_count()]
    with tempfile.TemporaryDirectory(prefix="embedscope-bench-") as tmp:
        root = Path(tmp)
        model_dir = make_clip_b32_shaped(root / "clip-b32-shaped")
        paths = make_jpegs(root / "images", args.n)
        configure_threads(thread_counts[-1])
        matmul = matmul_gflops()
        fp32 = load_embedder(str(model_dir), device=args.device, batch_size=args.batch_size)
        pixels = fp32.preprocess([Image.open(p).convert("RGB") for p in paths])
        gflop = model_gflop_per_image(fp32, pixels)
        print(f"device {fp32.device}, {cpu_count()} CPUs, {args.n} JPEGs 500x375, batch {args.batch_size}")
        print(f"model: CLIP ViT-B/32-shaped image tower, {gflop:.2f} GFLOP/image (FlopCounterMode)")
        print(f"matmul fp32 (torch.mm 2048^2, {thread_counts[-1]} threads): {matmul:.1f} GFLOP/s")

        variants: list[tuple[str, str, bool]] = [("fp32", "fp32", False), ("fp32+channels_last", "fp32", True)]
        if fp32.device == "cpu":
            variants += [("int8", "int8", False), ("int8+channels_last", "int8", True)]
        reference: np.ndarray | None = None
        results = []
        print(f"\n{'variant':<22}{'threads':>8}{'img/s':>9}{'GFLOP/s':>10}{'min cos':>10}")
        for threads in thread_counts:
            configure_threads(threads)
            for label, precision, channels_last in variants:
                emb = load_embedder(str(model_dir), device=args.device, batch_size=args.batch_size, precision=precision)  # type: ignore[arg-type]
                set_channels_last(emb, channels_last)
                rate, vectors = model_only(emb, pixels)
                reference = vectors if reference is None else reference
                cos = float(np.sum(vectors * reference, axis=1).min())
                results.append((rate, label, threads, precision, channels_last, cos))
                print(f"{label:<22}{threads:>8}{rate:>9.2f}{rate * gflop:>10.1f}{cos:>10.4f}")

        ok = [r for r in results if r[5] >= TOLERANCE]
        rate, label, threads, precision, channels_last, _ = max(ok)
        print(f"\nfastest within cosine >= {TOLERANCE}: {label}, {threads} threads")
        configure_threads(threads)
        best = load_embedder(str(model_dir), device=args.device, batch_size=args.batch_size, precision=precision)  # type: ignore[arg-type]
        set_channels_last(best, channels_last)
        store = EdgeStore(root / "store")
        try:
            if _pipeline_available():
                how = "core.pipeline.ingest.ingest_items"
                e2e = end_to_end_pipeline(best, paths, store, root / "data")
            else:
                how = f"own loop: {args.workers} decode+preprocess threads overlapping the model (no core.pipeline yet)"
                e2e = end_to_end_own(best, paths, store, args.workers)
            stored = store.count(PROJECT, best.name)
        finally:
            store.close()
        print(f"end-to-end via {how}; {stored} points stored")
        print(f"\nimg/s end-to-end      {e2e:8.2f}")
        print(f"img/s model-only      {rate:8.2f}")
        print(f"model GFLOP/s         {rate * gflop:8.1f}")
        print(f"matmul GFLOP/s        {matmul:8.1f}")
        print(f"end-to-end/model-only {e2e / rate:8.2f}   (target >= 0.9)")
        print(f"model/matmul          {rate * gflop / matmul:8.2f}   (target >= 0.6)")


if __name__ == "__main__":
    main()
