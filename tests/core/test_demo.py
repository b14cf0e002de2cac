"""The offline demo: three datasets with the planted drift, model errors, images; idempotent; CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.__main__ import main
from core.config import load_settings
from core.demo import DEMO_PROJECT, MLP_SPACE, PIXELS_SPACE, load_demo
from core.demo_model import HELD_OUT, assign_splits, plant_labels
from core.pipeline.compare import run_compare
from core.store import open_store
from tests.actors import ADMIN

EXPECTED = {"train": 1078, "test": 359, "production": 360}  # 60 / 20 / 20 % of 1,797 digits


def counts() -> dict[str, dict[str, int]]:
    store = open_store(load_settings())
    try:
        return {d.name: dict(d.counts) for d in store.list_datasets(DEMO_PROJECT)}
    finally:
        store.close()


def test_splits_hold_the_planted_class_out_of_training() -> None:
    truth = np.arange(1797) % 10
    split = assign_splits(truth, seed=0)
    assert not np.any((split != "production") & (truth == HELD_OUT))
    assert {s: int((split == s).sum()) for s in EXPECTED} == {"train": 1078, "test": 359, "production": 360}
    labels, noisy = plant_labels(truth, split, seed=0)
    assert noisy.sum() > 0 and not noisy[split != "train"].any()
    assert all(labels[noisy] != truth[noisy].astype(str))
    unlabeled = np.array([v is None for v in labels])
    assert unlabeled.any() and not unlabeled[split != "production"].any()
    again = assign_splits(truth, seed=0)
    assert np.array_equal(split, again)  # deterministic


def test_demo_loads_three_datasets_with_drift_and_errors_and_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings()
    store = open_store(settings)
    seen: list[tuple[int, int]] = []
    try:
        reports = load_demo(store, settings, lambda done, total: seen.append((done, total)), with_pretrained=False)
        assert {r.status for r in reports} == {"ok"} and len(reports) == 6
        assert seen[-1] == (2 * 1797, 2 * 1797)
        frame = store.payloads(DEMO_PROJECT, MLP_SPACE.name)
        compared = run_compare(store, DEMO_PROJECT, MLP_SPACE.name, "train", "production", actor=ADMIN)
    finally:
        store.close()
    # Compare points at the planted drift: a region only in production, shown by production 9s
    top = compared.regions.iloc[0]
    assert top["status"] == "only in B", compared.regions[["region", "status", "n_a", "n_b"]]
    shown = frame.loc[list(top["representatives"])]
    assert (shown["dataset"] == "production").all() and (shown["meta.true_label"] == str(HELD_OUT)).all()
    more_b = compared.regions[compared.regions["status"].isin(["only in B", "more B"])]
    assert all(set(frame.loc[list(reps), "dataset"]) == {"production"} for reps in more_b["representatives"])
    assert counts() == {name: {MLP_SPACE.name: n, PIXELS_SPACE.name: n} for name, n in EXPECTED.items()}
    # planted drift: every 9 is in production and nowhere else
    nines = frame["meta.true_label"] == str(HELD_OUT)
    assert nines.sum() == 180 and set(frame.loc[nines, "dataset"]) == {"production"}
    assert (frame["dataset"] == frame["split"]).all()
    # the classifier never predicts the class it never saw, and makes mistakes elsewhere too
    assert str(HELD_OUT) not in set(frame["prediction"])
    labeled = frame["label"].notna()
    wrong = labeled & (frame["label"] != frame["prediction"])
    assert wrong[frame["dataset"] == "test"].sum() > 0
    assert (wrong & nines).sum() > 100
    assert frame.loc[frame["dataset"] == "production", "label"].isna().any()
    assert frame["confidence"].between(0, 1).all()
    # thumbnails: real PNG files under the demo folder (an allowed data root)
    uri = Path(frame["uri"].iloc[0])
    assert uri.is_relative_to(settings.demo_dir.resolve()) and uri.is_file()
    with Image.open(uri) as image:
        assert image.size == (64, 64) and image.mode == "RGB"
    # running it again, through the CLI, keeps the counts (no duplicates) and exits 0
    assert main(["demo", "--no-pretrained", "--progress", "none"]) == 0
    assert "demo/production [pixels]: 360 items" in capsys.readouterr().out
    assert counts() == {name: {MLP_SPACE.name: n, PIXELS_SPACE.name: n} for name, n in EXPECTED.items()}


def test_quick_demo_stores_the_first_map_then_fills_the_pretrained_space_in_the_background(
        tiny_vit_dir: Path) -> None:
    """load_demo_quick returns with the two cheap spaces and the Explore page's UMAP map stored;
    the image-model space fills in a low-priority background thread and then appears."""
    import os
    import sys
    import threading

    from core.demo_job import demo_job, load_demo_quick
    from core.embedders import load_embedder
    from core.pipeline.maps import has_map

    priority: list[int] = []

    def tiny_model():  # made inside the job's thread: records that thread's nice value
        priority.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return load_embedder(str(tiny_vit_dir), "image", device="cpu")

    settings = load_settings()
    store = open_store(settings)
    map_steps: list[tuple[int, int]] = []
    try:
        started = load_demo_quick(store, settings, map_progress=lambda d, t: map_steps.append((d, t)),
                                  with_pretrained=True, embedder=tiny_model)
        assert {r.space for r in started.reports} == {MLP_SPACE.name, PIXELS_SPACE.name}
        assert has_map(store, DEMO_PROJECT, MLP_SPACE.name, None, method="umap")  # Explore opens drawn
        assert map_steps[-1] == (100, 100)
        job = started.job
        assert job is not None and demo_job(store) is job
        assert job.finished.wait(120), "the background space did not finish"
        assert job.error is None and job.done == job.total == sum(EXPECTED.values())
        assert job.eta_s() is None and not job.running
        space = job.reports[0].space
        assert {r.status for r in job.reports} == {"ok"} and space not in {MLP_SPACE.name, PIXELS_SPACE.name}
        assert space in {s.name for s in store.list_spaces(DEMO_PROJECT)}
        if sys.platform.startswith("linux"):
            assert priority == [19]  # the lowest CPU priority: it never starves the first map
    finally:
        store.close()
    assert {name: c[space] for name, c in counts().items()} == EXPECTED
