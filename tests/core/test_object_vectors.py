"""Own object vectors (Parquet / .npy + ids keyed by object id) for a COCO detection set: real files, real stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.analysis.box_matching import match_set
from core.auth import Actor, PermissionDeniedError, Role, local_actor
from core.config import Settings
from core.datasets.detections import read_coco
from core.datasets.object_vectors import open_object_vectors
from core.errors import BadInputError, DimensionMismatchError
from core.filters import Condition, Filter
from core.ids import object_id, point_id
from core.pipeline.ingest_vectors import own_space
from core.pipeline.objects_own import ingest_object_vectors
from core.store.base import VectorStore
from core.types import ITEM_KIND, OBJECT_KIND
from tests.core.test_cli import run_cli
from tests.core.test_objects_ingest import N_LABELS, N_PREDICTIONS, write_coco

DIM = 4
# Label annotation ids 1..6 (7 and 8 are bad boxes the COCO reader rejects) and the predictions' object keys.
LABEL_IDS = ["1", "2", "3", "4", "5", "6"]
PREDICTION_KEYS = ["a.png#prediction/0", "a.png#prediction/1", "b.png#prediction/0", "c.png#prediction/0",
                   "c.png#prediction/1", "c.png#prediction/2"]


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _parquet(path: Path, ids: list[str], rows: list[list[float] | None]) -> Path:
    pq.write_table(pa.table({"id": ids, "embedding": pa.array(rows, type=pa.list_(pa.float32()))}), path)
    return path


def _objects(store: VectorStore, space: str) -> object:
    return store.payloads("p", space, Filter(must=(Condition("kind", equals=OBJECT_KIND),)))


def test_object_vectors_are_joined_by_annotation_id_or_object_key_and_bad_rows_named(
        store: VectorStore, settings: Settings, tmp_path: Path) -> None:
    instances, results, images_dir = write_coco(tmp_path / "data" / "coco")
    det = read_coco(instances, images_dir, predictions=results, settings=settings)
    # b.png#label/1 (annotation 3) and c.png#label/1 (annotation 5) only have bad rows; c.png#prediction/2 none.
    good_ids = ["1", "2", "4", "6", *PREDICTION_KEYS[:-1], "a.png"]  # a.png: the image's own vector
    good = _vectors(len(good_ids))
    ids = [*good_ids, "zzz", "7", "b.png#label/1", "5", "a.png#label/0"]
    rows: list[list[float] | None] = [*good.tolist(), [1.0] * DIM, [1.0] * DIM, [np.nan, 1, 1, 1], [1.0, 2.0],
                                      [1.0] * DIM]
    own = open_object_vectors(_parquet(tmp_path / "objects.parquet", ids, rows))
    assert own.dim == DIM and own.rows == len(ids)
    space = own_space(store, "p", "mine", own.dim, "objects.parquet")
    report = ingest_object_vectors(store, "p", "val", det, own, space=space, actor=local_actor(settings),
                                   settings=settings)

    objects = _objects(store, "mine")
    missing = {"b.png#label/1", "c.png#label/1", "c.png#prediction/2"}
    assert len(objects) == N_LABELS + N_PREDICTIONS - len(missing)
    assert store.count("p", "mine", Filter(must=(Condition("kind", equals=ITEM_KIND),))) == 1  # a.png only
    matches = match_set(det.objects)
    for obj in det.objects:
        pid = object_id("p", "val", obj.image_key, obj.source, obj.index)
        if obj.key in missing:
            assert pid not in objects.index
            continue
        row = objects.loc[pid]
        assert row["parent"] == point_id("p", "val", obj.image_key) and row["source"] == obj.source
        assert row["match"] == matches[(obj.image_key, obj.source, obj.index)].status
    got_ids, got = store.vectors("p", "mine", [object_id("p", "val", "a.png", "label", 0)])
    assert got_ids and np.allclose(got[0], good[0] / np.linalg.norm(good[0]), atol=1e-6)  # row 1, not the repeat

    reasons = {r.key: r.reason for r in report.rejects if "row" in r.reason or "no vector" in r.reason}
    assert "row 11" in reasons["zzz"] and "no object" in reasons["zzz"]
    assert "7" in reasons  # a box the reader refused is no object: its id names nothing
    assert "NaN" in reasons["b.png#label/1"] and "row 13" in reasons["b.png#label/1"]
    assert "2 values, not 4" in reasons["c.png#label/1"]
    assert "earlier row" in reasons["a.png#label/0"]
    assert "no vector for this object" in reasons["c.png#prediction/2"]
    assert report.status == "partial" and report.stored == len(good_ids)  # 9 objects, 1 image
    assert report.labels + report.predictions == len(objects) and report.rejects_path is not None
    assert report.rejects_path.read_text().count(" row ") == 5


def test_object_vectors_from_npy_with_an_ids_csv_and_the_checks_before_writing(
        store: VectorStore, settings: Settings, tmp_path: Path) -> None:
    instances, results, images_dir = write_coco(tmp_path / "data" / "coco")
    det = read_coco(instances, images_dir, predictions=results, settings=settings)
    ids = [*LABEL_IDS, *PREDICTION_KEYS]
    np.save(tmp_path / "v.npy", _vectors(len(ids), seed=1))
    (tmp_path / "ids.csv").write_text("id\n" + "\n".join(ids) + "\n")
    own = open_object_vectors(tmp_path / "v.npy", tmp_path / "ids.csv")
    space = own_space(store, "p", "mine", own.dim, "v.npy")
    viewer = Actor("bob", Role.VIEWER)
    with pytest.raises(PermissionDeniedError):
        ingest_object_vectors(store, "p", "val", det, own, space=space, actor=viewer, settings=settings)
    assert store.list_spaces("p") == []  # refused before anything was written
    report = ingest_object_vectors(store, "p", "val", det, own, space=space, actor=local_actor(settings),
                                   settings=settings)
    assert report.stored == len(ids) and report.status == "partial"  # the reader's two bad boxes only
    assert {r.key for r in report.rejects} == {"d.png#label/annotation-7", "d.png#label/annotation-8"}
    with pytest.raises(DimensionMismatchError):  # the space holds 4-d vectors now: a 3-d file is refused whole
        np.save(tmp_path / "w.npy", np.ones((len(ids), 3), dtype=np.float32))
        open_object_vectors(tmp_path / "w.npy", tmp_path / "ids.csv", dim=4)
    with pytest.raises(BadInputError, match="needs an ids file"):
        open_object_vectors(tmp_path / "v.npy")


def test_cli_ingests_object_vectors_without_a_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    instances, results, images_dir = write_coco(tmp_path / "coco")
    vectors = _parquet(tmp_path / "v.parquet", [*LABEL_IDS, *PREDICTION_KEYS],
                       _vectors(N_LABELS + N_PREDICTIONS).tolist())
    code, out, err = run_cli(capsys, "ingest", "--coco", instances, "--predictions", results, "--images", images_dir,
                             "--object-vectors", vectors, "--space", "mine", "--project", "shop", "--dataset", "val",
                             "--progress", "none")
    assert code == 3, err  # the reader's two bad boxes
    assert "shop/val [mine]: 4 images, 12 objects (6 labels / 6 predictions), 12 stored" in out
    code, _, err = run_cli(capsys, "ingest", "--coco", instances, "--images", images_dir, "--object-vectors", vectors,
                           "--model", "x", "--project", "shop", "--dataset", "val")
    assert code == 2 and "--object-vectors does not go with --model" in err
    code, _, err = run_cli(capsys, "ingest", "--object-vectors", vectors, "--project", "shop", "--dataset", "val")
    assert code == 2 and "--object-vectors goes with --coco" in err


def test_vector_ids_name_objects_by_key_and_own_id_and_refuse_ambiguous_ones() -> None:
    from core.datasets.detections import Box, DetObject
    from core.pipeline.objects_own import own_object_id, vector_ids
    from core.types import Item

    box = Box(0.0, 0.0, 4.0, 4.0)
    a = DetObject("a.png", "label", 0, box, "cat", meta={"annotation_id": 7})  # COCO
    b = DetObject("b.png", "label", 0, box, "dog", meta={"id": "box-1"})  # a box manifest entry's "id"
    c = DetObject("b.png", "prediction", 0, box, "dog", 0.9, meta={"id": "a.png"})  # collides with an image key
    images = [Item(key="a.png", uri="/x/a.png"), Item(key="b.png", uri="/x/b.png")]
    ids = vector_ids(images, {"a.png": [a], "b.png": [b, c]})
    assert own_object_id(a) == "7" and own_object_id(b) == "box-1"
    assert ids.targets["7"].obj == a and ids.targets["a.png#label/0"].obj == a
    assert ids.targets["box-1"].obj == b and ids.targets["b.png"].obj is None  # an image's own vector
    assert ids.ambiguous == {"a.png"}
