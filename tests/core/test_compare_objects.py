"""Compare at object level: B (production) holds a kind of object A (train) lacks -> an "only in B" region of
that class, from the detection objects of both sides (not their images), persisted apart from the image
comparison; `embedscope compare --objects` prints it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from core.ids import object_id, point_id
from core.linalg import l2_normalise
from core.store.base import VectorStore
from core.types import ITEM_KIND, OBJECT_KIND, Item, SpaceInfo
from tests.actors import ADMIN

P, S = "det", "own"
NEW_CLASS = 9  # production only
PER_IMAGE = 3


def _add(store: VectorStore, dataset: str, digits: np.ndarray, classes: np.ndarray, source: str,
         rng: np.random.Generator) -> None:
    """Images of PER_IMAGE digit objects each (label boxes, or predictions with a score): an image point with a
    vector of its own (the mean of its crops, as a scene looks like its objects) and one object point per digit."""
    n_images = len(digits) // PER_IMAGE
    ids, vectors, payloads = [], [], []
    for i in range(n_images):
        key = f"{dataset}_{i:03d}.png"
        crops = digits[i * PER_IMAGE:(i + 1) * PER_IMAGE]
        ids.append(point_id(P, dataset, key))
        vectors.append(crops.mean(axis=0))
        payloads.append(Item(key=key, uri=f"/data/{key}").payload(dataset))
        for j, (crop, cls) in enumerate(zip(crops, classes[i * PER_IMAGE:(i + 1) * PER_IMAGE], strict=True)):
            box = [40.0 * j, 0.0, 40.0 * j + 30.0, 30.0]
            ids.append(object_id(P, dataset, key, source, j))
            vectors.append(crop + rng.normal(0, 0.3, crop.shape))
            is_label = source == "label"
            payloads.append({
                "dataset": dataset, "key": f"{key}#{source}/{j}", "uri": f"/data/{key}", "kind": OBJECT_KIND,
                "parent": point_id(P, dataset, key), "box": box, "source": source,
                "label": str(cls) if is_label else None, "prediction": None if is_label else str(cls),
                "confidence": None if is_label else 0.9, "split": None, "match": "tp" if is_label else "spurious",
                "iou": None, "match_id": None, "box_area": 900.0, "meta": {}})
    store.upsert(P, S, ids, l2_normalise(np.stack(vectors).astype(np.float32)), payloads)


def seed(store: VectorStore) -> None:
    """train: label boxes of digits 0-4; prod: predicted boxes of digits 0-4 and, in a quarter of them, 9."""
    digits = load_digits()
    rng = np.random.default_rng(0)
    x, y = digits.data.astype(np.float32), digits.target
    old = rng.permutation(np.flatnonzero(y < 5))
    new = rng.permutation(np.flatnonzero(y == NEW_CLASS))[:60]
    train, prod = old[:360], np.concatenate([old[360:540], new])
    prod = prod[rng.permutation(prod.size)]
    store.ensure_space(P, SpaceInfo(S, x.shape[1], "vector"))
    _add(store, "train", x[train], y[train], "label", rng)
    _add(store, "prod", x[prod], y[prod], "prediction", rng)


def _region_classes(store: VectorStore, ids: list[str]) -> set[str]:
    frame = store.payloads(P, S, fields=["label", "prediction", "kind"]).loc[ids]
    assert (frame["kind"] == OBJECT_KIND).all()
    return {str(lab if isinstance(lab, str) else pred) for lab, pred in zip(frame["label"], frame["prediction"],
                                                                           strict=True)}


def test_only_in_b_region_holds_the_new_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.__main__ import main
    from core.pipeline.compare import load_compare, run_compare
    from core.store import EdgeStore

    path = tmp_path / "store"
    store = EdgeStore(path)
    try:
        seed(store)
        result = run_compare(store, P, S, "train", "prod", kind=OBJECT_KIND, actor=ADMIN)
        assert result.kind == OBJECT_KIND and not result.reused
        assert result.summary["n_a"] == 360 and result.summary["n_b"] == 240  # the boxes, not the 200 images
        assert (result.novelty["key"].str.contains("#prediction/")).all()
        only_b = result.regions[result.regions["status"] == "only in B"]
        assert len(only_b), result.regions
        assert any(_region_classes(store, list(reps)) == {str(NEW_CLASS)} for reps in only_b["representatives"])
        # most of the novel boxes at the top are the new class
        top = result.novelty.head(40)
        assert (top["prediction"] == str(NEW_CLASS)).mean() >= 0.8
        # the image comparison is a result of its own (keyed apart), and both are reused / loaded
        images = run_compare(store, P, S, "train", "prod", actor=ADMIN)
        assert images.kind == ITEM_KIND and images.summary["n_a"] == 120 and not images.reused
        again = run_compare(store, P, S, "train", "prod", kind=OBJECT_KIND, actor=ADMIN)
        assert again.reused and again.fingerprint == result.fingerprint != images.fingerprint
        loaded = load_compare(store, P, S, "train", "prod", kind=OBJECT_KIND)
        assert loaded is not None and loaded.kind == OBJECT_KIND
        assert list(loaded.novelty.index) == list(result.novelty.index)
        loaded_images = load_compare(store, P, S, "train", "prod")
        assert loaded_images is not None and loaded_images.summary["n_b"] == 80
    finally:
        store.close()
    argv = ["--store", str(path), "compare", "train", "prod", "--project", P, "--space", S, "--progress", "none"]
    assert main([*argv, "--objects"]) == 0
    out = capsys.readouterr().out
    assert "prod (240 objects) compared with train (360 objects) - reused" in out
    assert "only in B" in out and "Most novel objects of prod" in out
    assert main(argv) == 0 and "prod (80 items) compared with train (120 items) - reused" in capsys.readouterr().out


def test_objects_compare_without_objects_says_so(tmp_path: Path) -> None:
    from core.errors import NotEnoughDataError
    from core.pipeline.compare import run_compare
    from core.store import EdgeStore

    store = EdgeStore(tmp_path / "store")
    try:
        store.ensure_space(P, SpaceInfo(S, 4, "vector"))
        for dataset in ("train", "prod"):
            keys = [f"{dataset}{i}" for i in range(20)]
            store.upsert(P, S, [point_id(P, dataset, k) for k in keys],
                         l2_normalise(np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32)),
                         [Item(key=k).payload(dataset) for k in keys])
        assert run_compare(store, P, S, "train", "prod", actor=ADMIN).summary["n_b"] == 20
        with pytest.raises(NotEnoughDataError, match="kind = 'object'"):
            run_compare(store, P, S, "train", "prod", kind=OBJECT_KIND, actor=ADMIN)
    finally:
        store.close()
