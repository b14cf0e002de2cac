"""Object finders on planted detection data (sklearn digits as the "crops"): wrong-class labels, missing labels,
background boxes and a failing kind of object rank at the top; the object analysis persists in a real store and
`embedscope analyse --objects` prints the hand-counted matching table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from core.analysis import object_findings as of
from core.analysis.box_matching import Match, class_table, match_set
from core.datasets.detections import Box, DetObject
from core.ids import object_id, point_id
from core.linalg import l2_normalise
from core.store.base import VectorStore
from core.types import (
    BOX,
    BOX_AREA,
    CONFIDENCE,
    DATASET,
    IOU,
    KEY,
    KIND,
    LABEL,
    MATCH,
    MATCH_ID,
    META,
    OBJECT_KIND,
    PARENT,
    PREDICTION,
    SOURCE,
    URI,
    Item,
    SpaceInfo,
)
from tests.actors import ADMIN, user

P, S, D = "det", "own", "scenes"
N_IMAGES = 100  # three digits per image
PLANT = 12  # planted wrong-class labels, missing labels and background boxes (each)
FAILING_CLASS = 8  # most boxes of this digit go undetected: a failure cluster


@dataclass
class Scene:
    objects: list[DetObject]
    vectors: dict[tuple[str, str, int], np.ndarray]  # by (image, source, index)
    wrong: set[tuple[str, str, int]]  # planted wrong-class label boxes
    missing: set[tuple[str, str, int]]  # predictions of objects whose label was removed
    background: set[tuple[str, str, int]]  # predictions on no object
    undetected: set[tuple[str, str, int]]  # label boxes with no prediction


def planted_scene(seed: int = 0) -> Scene:
    """Digit i sits in slot i % 3 of image i // 3, with a label box and a slightly shifted prediction of its true
    class; planted: wrong classes on PLANT labels (their prediction is right), PLANT labels removed (their
    prediction stays: a missing label), PLANT predictions on blank patches (noise vectors), and 70% of the
    FAILING_CLASS digits left undetected."""
    digits = load_digits()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(digits.target), 3 * N_IMAGES, replace=False)
    x, y = digits.data[pick].astype(np.float32), digits.target[pick]
    order = rng.permutation(x.shape[0])
    eligible = [i for i in order if y[i] != FAILING_CLASS]
    wrong_i, missing_i = set(eligible[:PLANT]), set(eligible[PLANT:2 * PLANT])
    undetected = {i for i in np.flatnonzero(y == FAILING_CLASS) if rng.random() < 0.7}
    scene = Scene([], {}, set(), set(), set(), set())

    def add(obj: DetObject, vector: np.ndarray) -> tuple[str, str, int]:
        scene.objects.append(obj)
        key = (obj.image_key, obj.source, obj.index)
        scene.vectors[key] = vector + rng.normal(0, 0.5, vector.shape).astype(np.float32)
        return key

    for i in range(x.shape[0]):
        image, slot = f"img{i // 3:03d}.png", i % 3
        box = Box(slot * 40.0, 0.0, slot * 40.0 + 30.0, 30.0)
        if i not in missing_i:
            cls = str((y[i] + 1 + rng.integers(9)) % 10) if i in wrong_i else str(y[i])
            key = add(DetObject(image, "label", slot, box, cls), x[i])
            if i in wrong_i:
                scene.wrong.add(key)
            if i in undetected:
                scene.undetected.add(key)
        if i not in undetected:
            shifted = Box(box.x0 + 2, box.y0 + 1, box.x1 + 2, box.y1 + 1)
            key = add(DetObject(image, "prediction", slot, shifted, str(y[i]), float(rng.uniform(0.6, 0.99))), x[i])
            if i in missing_i:
                scene.missing.add(key)
    for j in range(PLANT):
        image = f"img{j * 7 % N_IMAGES:03d}.png"
        blank = rng.uniform(0, 16, 64).astype(np.float32) * (rng.random(64) < 0.5)
        key = add(DetObject(image, "prediction", 10 + j, Box(150.0, 40.0, 190.0, 80.0), str(rng.integers(10)),
                            float(rng.uniform(0.6, 0.99))), blank)
        scene.background.add(key)
    return scene


def frame_of(scene: Scene, matches: dict[tuple[str, str, int], Match]) -> tuple[np.ndarray, pd.DataFrame]:
    """(vectors (n, 64) unit rows, the objects' payload frame indexed by point id) as the ingest stores them."""
    ids, rows = [], []
    for o in scene.objects:
        m = matches[(o.image_key, o.source, o.index)]
        other = "prediction" if o.source == "label" else "label"
        ids.append(object_id(P, D, o.image_key, o.source, o.index))
        rows.append({
            DATASET: D, KEY: f"{o.image_key}#{o.source}/{o.index}", URI: f"/data/{o.image_key}", KIND: OBJECT_KIND,
            PARENT: point_id(P, D, o.image_key), BOX: o.box.to_list(), SOURCE: o.source,
            LABEL: o.cls if o.source == "label" else None, PREDICTION: o.cls if o.source == "prediction" else None,
            CONFIDENCE: o.score, MATCH: m.status, IOU: m.iou, BOX_AREA: o.box.area,
            MATCH_ID: None if m.partner is None else object_id(P, D, o.image_key, other, m.partner),
            META: {"slot": o.index % 10},
        })
    vectors = l2_normalise(np.stack([scene.vectors[(o.image_key, o.source, o.index)] for o in scene.objects]))
    frame = pd.DataFrame(rows, index=pd.Index(ids, name="id")).drop(columns=[META])
    return vectors, frame


def precision_at(ranked_ids: list[str], planted: set[str], k: int) -> float:
    return len(set(ranked_ids[:k]) & planted) / k


@pytest.fixture(scope="module")
def scene() -> Scene:
    return planted_scene()


def _ids(keys: set[tuple[str, str, int]]) -> set[str]:
    return {object_id(P, D, img, src, idx) for img, src, idx in keys}


def test_planted_errors_rank_at_the_top(scene: Scene) -> None:
    matches = match_set(scene.objects)
    assert {matches[k].status for k in scene.wrong} == {"misclassified"}
    assert {matches[k].status for k in scene.missing | scene.background} == {"spurious"}
    x, frame = frame_of(scene, matches)
    mislabels = of.likely_mislabeled_boxes(x, frame)
    assert (mislabels[SOURCE] == "label").all() and mislabels["mislabel"].is_monotonic_decreasing
    assert precision_at(list(mislabels.index), _ids(scene.wrong), PLANT) >= 0.8
    flagged = set(mislabels.index[mislabels["likely_mislabel"]])
    # the confident-learning cut-off is strict: what it flags is right, and it flags most of them
    assert len(flagged & _ids(scene.wrong)) >= 0.9 * len(flagged) and len(flagged) >= PLANT // 2
    spurious = of.spurious_scores(x, frame)
    assert len(spurious) == 2 * PLANT  # the planted spurious boxes are the only ones
    missing = of.likely_missing_labels(spurious)
    assert precision_at(list(missing.index), _ids(scene.missing), PLANT) >= 0.8
    background = of.background_predictions(spurious)
    assert precision_at(list(background.index), _ids(scene.background), PLANT) >= 0.8
    assert missing["likely_missing"].sum() >= 0.7 * PLANT
    assert not (spurious["likely_missing"] & spurious["likely_background"]).any()


def test_failure_clusters_find_the_undetected_class(scene: Scene) -> None:
    x, frame = frame_of(scene, match_set(scene.objects))
    clusters = of.failure_clusters(x, frame)
    assert list(clusters.columns) == of.FAILURE_COLUMNS and len(clusters)
    assert clusters["lift"].is_monotonic_decreasing and (clusters["lift"] > 1).all()
    eights = clusters[clusters["dominant_class"] == str(FAILING_CLASS)]
    assert len(eights) == 1 and eights.index[0] <= 1  # the top cluster, or second after the blank patches
    row = eights.iloc[0]
    assert row["top_failure"].startswith("missed") and f"class {FAILING_CLASS}" in row["description"]
    assert "median box 30 px" in row["description"]
    examples = frame.loc[row["examples"]]
    assert 0 < len(examples) <= 8 and of.failed(examples).all()


def test_finders_on_degenerate_input() -> None:
    one_class = [DetObject("a", "label", i, Box(0, 0, 5, 5), "cat") for i in range(6)]
    scene = Scene(one_class, {(o.image_key, o.source, o.index): np.eye(8, dtype=np.float32)[o.index]
                              for o in one_class}, set(), set(), set(), set())
    x, frame = frame_of(scene, match_set(one_class))
    assert of.likely_mislabeled_boxes(x, frame).empty  # one class: nothing to disagree with
    assert of.spurious_scores(x, frame).empty  # no spurious prediction
    assert of.failure_clusters(x, frame).empty  # six objects: no cluster
    assert of.failed(frame).all()  # every label missed


def test_class_table_of_the_scene_matches_a_hand_count(scene: Scene) -> None:
    table = class_table(scene.objects, match_set(scene.objects)).set_index("class")
    labels = pd.Series([o.cls for o in scene.objects if o.source == "label"]).value_counts()
    assert table["labels"].to_dict() == labels.to_dict()
    assert int(table["misclassified"].sum()) == PLANT == int(table["misclassified_predictions"].sum())
    assert int(table["spurious"].sum()) == 2 * PLANT


def hand_count(scene: Scene) -> pd.DataFrame:
    """The matching table from how the scene was built, without the matcher: a wrong label's class counts as
    misclassified and its prediction's (the true) class as misclassified_predictions; removed labels and blank
    patches are spurious; undetected labels missed; every other prediction a true positive."""
    preds = {(o.image_key, o.index): o.cls for o in scene.objects if o.source == "prediction"}
    rows = []
    for o in scene.objects:
        key = (o.image_key, o.source, o.index)
        if o.source == "label":
            status = "misclassified" if key in scene.wrong else "missed" if key in scene.undetected else "tp"
            rows.append((o.cls, "labels", status))
        else:
            lab = (o.image_key, "label", o.index)
            status = ("spurious" if key in scene.missing | scene.background else
                      "misclassified_predictions" if lab in scene.wrong else "tp_p")
            rows.append((o.cls, "predictions", status))
    assert len(preds) == sum(r[1] == "predictions" for r in rows)
    frame = pd.DataFrame(rows, columns=["class", "side", "status"])
    counts = pd.crosstab(frame["class"], frame["status"]).join(pd.crosstab(frame["class"], frame["side"]))
    return counts.rename(columns={"tp": "tp_l"})


def seed_store(store: VectorStore, scene: Scene) -> None:
    """The scene as the object ingest stores it: image items and object points in one space."""
    matches = match_set(scene.objects)
    x, frame = frame_of(scene, matches)
    store.ensure_space(P, SpaceInfo(S, x.shape[1], "vector"))
    images = sorted({o.image_key for o in scene.objects})
    rng = np.random.default_rng(1)
    store.upsert(P, S, [point_id(P, D, k) for k in images], rng.standard_normal((len(images), x.shape[1])).astype(
        np.float32), [Item(key=k, uri=f"/data/{k}").payload(D) for k in images])
    payloads = []
    for (_, row), o in zip(frame.iterrows(), scene.objects, strict=True):
        payload = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        payloads.append({**payload, META: {"slot": o.index % 10}})
    store.upsert(P, S, list(frame.index), x, payloads)


def _printed_table(out: str) -> pd.DataFrame:
    """The per-class table as printed: the rows under the "Matching per class" title, up to the blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Matching per class"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    header, *rows = [line.split() for line in lines[start + 1:end]]
    return pd.DataFrame([r[:10] for r in rows], columns=header[:10]).set_index("class").astype(int)


def test_analyse_objects_persists_and_the_cli_prints_the_hand_count(
        scene: Scene, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.__main__ import main
    from core.curation.tags import set_reviewed
    from core.pipeline.analyse_objects import DOC_KIND, load_object_analysis, run_object_analysis
    from core.pipeline.delete import delete_dataset
    from core.store import EdgeStore

    path = tmp_path / "store"
    store = EdgeStore(path)
    try:
        seed_store(store, scene)
        result = run_object_analysis(store, P, S, actor=ADMIN)
        assert not result.reused and len(result.objects) == len(scene.objects)
        assert precision_at(list(result.mislabels.index), _ids(scene.wrong), PLANT) >= 0.8
        assert precision_at(list(result.missing.index), _ids(scene.missing), PLANT) >= 0.8
        assert precision_at(list(result.background.index), _ids(scene.background), PLANT) >= 0.8
        assert str(FAILING_CLASS) in set(result.clusters["dominant_class"])
        assert "meta.slot" in result.objects.columns  # metadata comes along for the descriptions
        again = run_object_analysis(store, P, S, actor=ADMIN)
        assert again.reused and again.fingerprint == result.fingerprint
        pd.testing.assert_frame_equal(again.mislabels, result.mislabels)
        loaded = load_object_analysis(store, P, S)
        assert loaded is not None and not loaded.stale and list(loaded.missing.index) == list(result.missing.index)
        assert run_object_analysis(store, P, S, params={"k": 8}, actor=ADMIN).fingerprint != result.fingerprint
    finally:
        store.close()
    csv = tmp_path / "findings.csv"
    argv = ["--store", str(path), "analyse", "--objects", "--project", P, "--space", S, "--top", "5",
            "--progress", "none", "--out", str(csv)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    printed, hand = _printed_table(out), hand_count(scene)
    for cls, row in printed.drop(index="(all)").iterrows():
        h = hand.loc[cls]
        assert row["labels"] == h["labels"] and row["predictions"] == h["predictions"], cls
        assert row["tp"] == h.get("tp_l", 0) == h.get("tp_p", 0), cls
        assert row["misclassified"] == h.get("misclassified", 0), cls
        assert row["misclassified_predictions"] == h.get("misclassified_predictions", 0), cls
        assert row["missed"] == h.get("missed", 0) and row["spurious"] == h.get("spurious", 0), cls
        assert row["poor_localisation"] == 0 and row["duplicate"] == 0, cls
    assert printed.loc["(all)", "labels"] == int(hand["labels"].sum()) and len(printed) == len(hand) + 1
    assert "Likely mislabeled boxes" in out and "Likely missing labels" in out and "Failure clusters" in out
    findings = pd.read_csv(csv)
    assert set(findings["finder"]) >= {"mislabel", "missing", "background", "failure_cluster"}
    top = findings[findings["finder"] == "mislabel"].sort_values("rank").head(PLANT)
    assert len(set(top["id"]) & _ids(scene.wrong)) >= 0.8 * PLANT
    assert main(argv) == 0 and "reused" in capsys.readouterr().out
    store = EdgeStore(path)
    try:
        set_reviewed(store, P, [str(top["id"].iloc[0])], True, actor=user("test"))
        store.close()
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "reused" in out and "(1 corrected or reviewed box(es) left out)" in out
        store = EdgeStore(path)
        report = delete_dataset(store, P, D, actor=ADMIN)
        assert any(kind == DOC_KIND for kind, _ in report.results)
    finally:
        store.close()


def test_analyse_objects_without_objects_says_so(tmp_path: Path) -> None:
    from core.errors import NotEnoughDataError
    from core.pipeline.analyse_objects import run_object_analysis
    from core.store import EdgeStore

    store = EdgeStore(tmp_path / "store")
    try:
        store.ensure_space(P, SpaceInfo(S, 4, "vector"))
        store.upsert(P, S, [point_id(P, D, "a")], np.eye(4, dtype=np.float32)[:1], [Item(key="a").payload(D)])
        with pytest.raises(NotEnoughDataError, match="detection object"):
            run_object_analysis(store, P, S, actor=ADMIN)
        # one class, every box found: a table, and no finding (but no error either)
        boxes = [DetObject("a", src, i, Box(10 * i, 0, 10 * i + 8, 8), "cat", 0.9 if src == "prediction" else None)
                 for src in ("label", "prediction") for i in range(4)]
        scene = Scene(boxes, {(o.image_key, o.source, o.index): np.eye(4, dtype=np.float32)[o.index] for o in boxes},
                      set(), set(), set(), set())
        x, frame = frame_of(scene, match_set(boxes))
        store.upsert(P, S, list(frame.index), x, [{**row.to_dict(), META: {}} for _, row in frame.iterrows()])
        result = run_object_analysis(store, P, S, actor=ADMIN)
        assert result.table.set_index("class").loc["cat", ["labels", "predictions", "tp"]].tolist() == [4, 4, 4]
        assert result.mislabels.empty and result.missing.empty and result.background.empty and result.clusters.empty
        assert run_object_analysis(store, P, S, actor=ADMIN).reused
    finally:
        store.close()
