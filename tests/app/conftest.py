"""Fixtures for the AppTest tier: an isolated data dir, clean Streamlit caches, a seeded store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import Settings, load_settings
from core.ids import point_id
from core.types import SpaceInfo

ROOT = Path(__file__).resolve().parents[2]

SEED_PROJECT = "seeded"
SEED_SPACE = "pixels"
SEED_LABELS = ("cat", "dog", "bird")
# dataset -> (number of items, split, labeled?)
SEED_DATASETS = {"train": (24, "train", True), "test": (12, "test", True), "prod": (12, None, False)}
THUMB = 16  # images are THUMB x THUMB; the "pixels" space is the flattened grey image


def _clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()  # releases (closes) the cached store


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings of a fresh data dir (tests/conftest.py already points EMBEDSCOPE_DATA_DIR at
    tmp_path); Streamlit caches cleared before and after, so each test opens its own store."""
    import ui.page

    monkeypatch.setattr(ui.page, "warmup_started", True)  # no background numba compile in tests
    # A page waits for the background jobs it starts (core.jobs) until they end, so one AppTest run
    # shows their result as before; tests of the polling path set 0.
    monkeypatch.setenv("EMBEDSCOPE_JOB_WAIT_S", "600")
    _clear_caches()
    yield load_settings()
    _clear_caches()


def with_images(frame: pd.DataFrame, root: Path, size: tuple[int, int] = (80, 60)) -> pd.DataFrame:
    """frame with a `uri` column: one small PNG per row (colours vary by row) written under root."""
    root.mkdir(parents=True, exist_ok=True)
    uris = []
    for i in range(len(frame)):
        path = root / f"img{i}.png"
        Image.new("RGB", size, (i % 255, 90, 160)).save(path)
        uris.append(str(path))
    return frame.assign(uri=uris)


def run_page(path: str | Path, timeout: float = 60) -> AppTest:
    """An AppTest for Home.py or pages/<name>.py (relative to the repository root), not yet run."""
    full = Path(path) if Path(path).is_absolute() else ROOT / path
    return AppTest.from_file(str(full), default_timeout=timeout)


@dataclass
class Seeded:
    """What seeded_store wrote: project, space, datasets -> ids, id -> label / uri."""

    settings: Settings
    project: str
    space: str
    ids: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str | None] = field(default_factory=dict)
    uris: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.ids.values())


def _image(label_index: int, rng: np.random.Generator) -> Image.Image:
    """A THUMB x THUMB picture whose brightness pattern depends on the class (so classes cluster)."""
    base = np.zeros((THUMB, THUMB), dtype=np.float32)
    base[:, label_index * THUMB // 3:(label_index + 1) * THUMB // 3] = 200.0
    noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy, mode="L").convert("RGB")


@pytest.fixture
def seeded_store(app_env: Settings) -> Seeded:
    """A small project "seeded" (train 24 / test 12 labeled, prod 12 unlabeled) in a "pixels"
    space, its images under the demo root so thumbnails work. The store is closed again before the
    test runs so the pages open it themselves."""
    from core.store import open_store

    settings = app_env
    rng = np.random.default_rng(0)
    seeded = Seeded(settings, SEED_PROJECT, SEED_SPACE)
    store = open_store(settings)
    try:
        store.ensure_space(SEED_PROJECT, SpaceInfo(SEED_SPACE, THUMB * THUMB, "vector",
                                                   description="grey pixels (test seed)"))
        for dataset, (n, split, labeled) in SEED_DATASETS.items():
            folder = settings.demo_dir / SEED_PROJECT / dataset
            folder.mkdir(parents=True, exist_ok=True)
            ids, vectors, payloads = [], [], []
            for i in range(n):
                cls = i % len(SEED_LABELS)
                image = _image(cls, rng)
                path = folder / f"{dataset}_{i:03d}.png"
                image.save(path)
                pid = point_id(SEED_PROJECT, dataset, path.name)
                vec = np.asarray(image.convert("L"), dtype=np.float32).ravel()
                vectors.append(vec / np.linalg.norm(vec))
                label = SEED_LABELS[cls] if labeled else None
                prediction = SEED_LABELS[(cls + (i % 5 == 0)) % len(SEED_LABELS)]
                payloads.append({"dataset": dataset, "key": path.name, "uri": str(path),
                                 "text": None, "label": label, "prediction": prediction,
                                 "confidence": round(float(rng.uniform(0.4, 1.0)), 3),
                                 "split": split, "meta": {"camera": f"cam{i % 2}"},
                                 "kind": "item"})
                ids.append(pid)
                seeded.labels[pid] = label
                seeded.uris[pid] = str(path)
            store.upsert(SEED_PROJECT, SEED_SPACE, ids, np.stack(vectors).astype(np.float32),
                         payloads)
            seeded.ids[dataset] = ids
    finally:
        store.close()
    return seeded
