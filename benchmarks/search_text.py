"""End-to-end latency of a text query (text embedding + store query) on a 10k-point embedded store.

The model is shaped like CLIP ViT-B/32's text tower (12 layers, 512 hidden, 8 heads, 77
positions, 512-d projection) with random weights: timing does not depend on the weights, and
nothing is downloaded. Its vision tower is tiny (never used here). The tokenizer is the tiny
byte-level BPE of tests/tiny_models.py, which splits words into more tokens than CLIP's real
vocabulary does, so the embedding time measured here is, if anything, pessimistic.

Target: p50 <= 100 ms on 2 cores. Run:

    . .venv/bin/activate && python benchmarks/search_text.py            # 10k points, 2 cores
    python benchmarks/search_text.py --points 10000 --queries 60 --cores 2 --store edge
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import search
from core.filters import parse_filter
from core.ids import point_id
from core.types import Item

QUERIES = [
    "a dog on a snowy street", "a photo of a cat", "a red car parked at night",
    "two people riding bicycles in the rain", "a white fluffy dog", "a plane in a blue sky",
    "a bowl of fruit on a wooden table", "a blurry photo", "a ship in a harbour at sunset",
    "a green frog on a leaf", "a truck on a highway", "a horse in a field",
]


def build_clip_text_tower(directory: Path) -> Path:
    """Save a CLIP whose text tower has ViT-B/32's shape (random weights) with a local tokenizer."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    from tests.tiny_models import _clip_vocab

    vocab, merges = _clip_vocab()
    # ViT-B/32's text tower: vocab 49408, 12 layers of width 512 (8 heads, MLP 2048), 77 positions.
    text_cfg = {
        "vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
        "num_attention_heads": 8, "max_position_embeddings": 77,
        "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": vocab["<|endoftext|>"],
    }
    vision_cfg = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                  "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text_cfg, vision_config=vision_cfg, projection_dim=512)).eval()
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77),
    )
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def open_bench_store(kind: str, path: Path):  # type: ignore[no-untyped-def]
    from core.store import EdgeStore, ServerStore

    if kind == "edge":
        return EdgeStore(path)
    return ServerStore(path=str(path))  # qdrant-client local mode, for comparison


def fill(store, project: str, space, n: int, seed: int = 0) -> None:  # type: ignore[no-untyped-def]
    """n random unit vectors with realistic payloads (a third unlabeled), then build the index."""
    rng = np.random.default_rng(seed)
    store.ensure_space(project, space)
    for start in range(0, n, 2000):
        stop = min(n, start + 2000)
        vecs = rng.normal(size=(stop - start, space.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        items = [Item(key=f"img/{i:06d}.jpg", uri=f"/data/img/{i:06d}.jpg",
                      label=None if i % 3 == 0 else f"class{i % 10}", split="train" if i % 4 else "production")
                 for i in range(start, stop)]
        store.upsert(project, space.name, [point_id(project, "bench", it.key) for it in items], vecs,
                     [it.payload("bench") for it in items])
    store.optimize(project, space.name)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(args: argparse.Namespace) -> None:
    import torch

    from core.embedders import load_embedder

    torch.set_num_threads(args.cores)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_clip_text_tower(Path(tmp) / "clip-b32-text")
        embedder = load_embedder(str(model_dir), "image", device="cpu")
        space = embedder.space_info()
        store = open_bench_store(args.store, Path(tmp) / "qdrant")
        t0 = time.perf_counter()
        fill(store, "bench", space, args.points)
        print(f"store: {store.describe()}; {args.points} points of {space.dim}-d filled + indexed "
              f"in {time.perf_counter() - t0:.1f} s")
        tokens = embedder_tokens(model_dir, QUERIES[0])
        print(f"model: CLIP text tower 12x512, 77 positions; '{QUERIES[0]}' -> {tokens} tokens; "
              f"torch threads {torch.get_num_threads()}, cpus {len(os.sched_getaffinity(0))}, "
              f"load average {os.getloadavg()[0]:.1f}")
        for label, clauses, exact in (("unfiltered", [], False), ("filter: label is missing", ["label is missing"], False),
                                      ("unfiltered, exact", [], True)):
            measure(store, embedder, space.name, label, parse_filter(clauses), exact, args.queries)
        store.close()


def embedder_tokens(model_dir: Path, text: str) -> int:
    from transformers import CLIPTokenizer

    return len(CLIPTokenizer.from_pretrained(model_dir)(text)["input_ids"])


def measure(store, embedder, space: str, label: str, flt, exact: bool, n: int) -> None:  # type: ignore[no-untyped-def]
    """Time n text queries end to end; print p50/p95 of total, embedding and store parts.

    Wall time, and the process's CPU time (all threads): on a machine shared with other work the
    wall time grows with the load while the CPU time does not, and on an idle 2-core machine the
    wall time lies between CPU/2 (both cores busy) and CPU.
    """
    wall: dict[str, list[float]] = {"embed": [], "store": [], "total": []}
    cpu: dict[str, list[float]] = {"embed": [], "store": [], "total": []}
    for i in range(n + 3):
        text = QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}")
        t0, c0 = time.perf_counter(), time.process_time()
        vec = search.text_query_vector(store, "bench", space, text, embedder=embedder)
        t1, c1 = time.perf_counter(), time.process_time()
        hits = search.by_vector(store, "bench", space, vec, flt=flt, limit=20, exact=exact)
        t2, c2 = time.perf_counter(), time.process_time()
        assert len(hits) == 20
        if i >= 3:  # warm-up
            for part, (a, b, x, y) in {"embed": (t0, t1, c0, c1), "store": (t1, t2, c1, c2),
                                       "total": (t0, t2, c0, c2)}.items():
                wall[part].append((b - a) * 1e3)
                cpu[part].append((y - x) * 1e3)
    share = 100 * sum(wall["embed"]) / sum(wall["total"])
    print(f"{label:26s} wall: total p50 {pct(wall['total'], 50):6.1f} ms p95 {pct(wall['total'], 95):6.1f} | "
          f"embed p50 {pct(wall['embed'], 50):6.1f} p95 {pct(wall['embed'], 95):6.1f} | "
          f"store p50 {pct(wall['store'], 50):5.2f} p95 {pct(wall['store'], 95):5.2f} | embedding share {share:4.1f}%")
    print(f"{'':26s} cpu:  total p50 {pct(cpu['total'], 50):6.1f} ms p95 {pct(cpu['total'], 95):6.1f} | "
          f"embed p50 {pct(cpu['embed'], 50):6.1f} p95 {pct(cpu['embed'], 95):6.1f} | "
          f"store p50 {pct(cpu['store'], 50):5.2f} p95 {pct(cpu['store'], 95):5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--cores", type=int, default=2, help="pin the process to this many CPUs")
    parser.add_argument("--store", choices=("edge", "local"), default="edge")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[: args.cores]
        os.sched_setaffinity(0, cpus)  # Qdrant Edge's threads and torch's both stay on these
    run(args)


if __name__ == "__main__":
    main()
