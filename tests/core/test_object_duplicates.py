"""Near-duplicate boxes and leakage on detection objects: a box labelled twice and one crop pasted in another
dataset are grouped (labels and their matched predictions are not), persisted, printed and exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from core.analysis.box_matching import match_set
from core.analysis.object_duplicates import object_duplicates
from core.datasets.detections import Box, DetObject
from core.ids import object_id, point_id
from core.linalg import l2_normalise
from core.store.base import VectorStore
from core.types import DATASET, KEY, SOURCE, SPLIT, Item, SpaceInfo
from tests.actors import ADMIN

N = 120  # digits, one label box and its prediction each, 4 per image


def _objects(rng: np.random.Generator, images: str, pick: np.ndarray) -> tuple[list[DetObject], np.ndarray]:
    digits = load_digits()
    objects, vectors = [], []
    for j, i in enumerate(pick):
        box = Box(40.0 * (j % 4), 0.0, 40.0 * (j % 4) + 30.0, 30.0)
        x = digits.data[i].astype(np.float32)
        for source, score in (("label", None), ("prediction", 0.9)):
            objects.append(DetObject(f"{images}{j // 4:03d}.png", source, j % 4, box, str(digits.target[i]), score))
            vectors.append(x + rng.normal(0, 0.3, x.shape).astype(np.float32))
    return objects, np.stack(vectors)


def _frame(project: str, dataset: str, objects: list[DetObject], split: str | None) -> pd.DataFrame:
    from tests.core.test_object_findings import (
        Scene,
        frame_of,  # the ingest's payload rule for these objects
    )
    scene = Scene(objects, {(o.image_key, o.source, o.index): np.zeros(2, np.float32) for o in objects},
                  set(), set(), set(), set())
    _, frame = frame_of(scene, match_set(objects))
    ids = [object_id(project, dataset, o.image_key, o.source, o.index) for o in objects]
    return frame.set_index(pd.Index(ids, name="id")).assign(**{DATASET: dataset, SPLIT: split})


def planted(project: str = "det") -> tuple[np.ndarray, pd.DataFrame, set[str], set[str]]:
    """Two datasets ("train", "prod") of digits; planted: label box 5 of train boxed twice (an extra label on
    the same pixels), and the crops of train labels 10 and 11 pasted into prod (label and prediction).
    Returns (unit vectors, payloads, the twice-labelled pair's ids, the leaking ids)."""
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(load_digits().target))  # distinct digit pictures in the two datasets
    train, xt = _objects(rng, "t", pick[:N])
    prod, xp = _objects(rng, "p", pick[N:2 * N])
    twice = DetObject(train[10].image_key, "label", 9, train[10].box, train[10].cls)  # train[10] = label of digit 5
    train.append(twice)
    xt = np.vstack([xt, xt[10:11]])
    for s, t in ((20, 0), (21, 1), (22, 2), (23, 3)):  # digits 10, 11 of train (label, prediction) into prod 0, 1
        xp[t] = xt[s]
    ft, fp = _frame(project, "train", train, "train"), _frame(project, "prod", prod, None)
    frame = pd.concat([ft, fp])
    x = l2_normalise(np.vstack([xt, xp]).astype(np.float32))
    pair = {ft.index[10], ft.index[-1]}
    leaking = {ft.index[20], ft.index[22], fp.index[0], fp.index[2],  # labels
               ft.index[21], ft.index[23], fp.index[1], fp.index[3]}  # predictions
    return x, frame, pair, leaking


def test_planted_duplicates_and_leakage_are_grouped() -> None:
    x, frame, pair, leaking = planted()
    per_object, groups = object_duplicates(x, frame)
    members = {g: set(ids) for g, ids in zip(groups["group"], groups["ids"], strict=True)}
    assert pair in members.values() or any(pair <= m and len(m) == 2 for m in members.values())
    assert set(per_object.index[per_object["leakage"]]) == leaking
    # a label and its own prediction are one object, never a duplicate group
    for ids in groups["ids"]:
        assert frame.loc[ids, SOURCE].nunique() == 1
    assert len(groups) == 5 and groups["size"].is_monotonic_decreasing  # the pair + 4 pasted crops
    assert sorted(per_object["duplicate_group"].unique().tolist()) == [-1, 0, 1, 2, 3, 4]
    # the same groups in one dataset without splits: nothing leaks
    same = frame.assign(**{DATASET: "one", SPLIT: None})
    assert not object_duplicates(x, same)[0]["leakage"].any()


def seed(store: VectorStore, project: str, space: str) -> tuple[set[str], set[str]]:
    x, frame, pair, leaking = planted(project)
    store.ensure_space(project, SpaceInfo(space, x.shape[1], "vector"))
    payloads = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()} | {"meta": {}}
                for _, row in frame.iterrows()]
    for dataset, part in frame.groupby(DATASET):  # the image items register the datasets, as the ingest does
        keys = sorted({str(k).split("#")[0] for k in part[KEY]})
        store.upsert(project, space, [point_id(project, str(dataset), k) for k in keys],
                     l2_normalise(np.ones((len(keys), x.shape[1]), np.float32)),
                     [Item(key=k, uri=f"/data/{k}").payload(str(dataset)) for k in keys])
    store.upsert(project, space, list(frame.index), x, payloads)
    return pair, leaking


def test_object_analysis_persists_prints_and_exports_duplicates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.__main__ import main
    from core.pipeline.analyse_objects import DOC_KIND, findings_frame, load_object_analysis, run_object_analysis
    from core.pipeline.analysis_io import doc_key
    from core.store import EdgeStore
    from core.store.documents import FORMAT

    path = tmp_path / "store"
    store = EdgeStore(path)
    try:
        pair, leaking = seed(store, "det", "own")
        result = run_object_analysis(store, "det", "own", actor=ADMIN)
        assert result.summary["duplicate_groups"] == 5 and result.summary["leakage_objects"] == len(leaking)
        assert set(result.duplicate_boxes.index[result.duplicate_boxes["leakage"]]) == leaking
        assert pair <= set(result.duplicate_boxes.index)
        loaded = load_object_analysis(store, "det", "own")
        assert loaded is not None
        pd.testing.assert_frame_equal(loaded.duplicates, result.duplicates)
        assert list(loaded.duplicate_boxes.index) == list(result.duplicate_boxes.index)
        found = findings_frame(result)
        assert set(found.loc[found["finder"] == "leakage", "id"]) == leaking
        assert set(found.loc[found["finder"] == "duplicate", "id"]) == set(result.duplicate_boxes.index)
        keys = result.objects.loc[sorted(pair), KEY].tolist()
        # a format-1 document (before duplicates) is recomputed, never read as if it had them
        doc_key_ = doc_key("own", "prod", "train")
        stored = store.get_document("det", DOC_KIND, doc_key_)
        assert stored is not None
        old = {**stored, FORMAT: 1}
        store.put_document("det", DOC_KIND, doc_key_, old)
        assert load_object_analysis(store, "det", "own") is None
        again = run_object_analysis(store, "det", "own", actor=ADMIN)
        assert not again.reused and again.summary["duplicate_groups"] == 5
    finally:
        store.close()
    csv = tmp_path / "found.csv"
    assert main(["--store", str(path), "analyse", "--objects", "--project", "det", "--space", "own",
                 "--progress", "none", "--out", str(csv)]) == 0
    out = capsys.readouterr().out
    assert f"Near-duplicate boxes: 5 group(s), {len(leaking)} box(es) leaking" in out
    assert any(keys[0] in line and "label" in line for line in out.splitlines())
    assert set(pd.read_csv(csv).query("finder == 'leakage'")["id"]) == leaking
