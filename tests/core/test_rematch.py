"""A relabeled label box re-matches its image's boxes (at the ingest's IoU), and an undo matches them back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from core.analysis.box_matching import match_set
from core.config import Settings
from core.curation.labels import set_labels
from core.curation.rematch import rematch_objects
from core.curation.undo import undo
from core.datasets.detections import DetObject, read_coco
from core.datasets.object_vectors import open_object_vectors
from core.filters import Condition, Filter
from core.ids import object_id
from core.pipeline.ingest_vectors import own_space
from core.pipeline.objects_own import ingest_object_vectors
from core.store.base import VectorStore
from tests.actors import ADMIN
from tests.core.test_object_vectors import LABEL_IDS, PREDICTION_KEYS, _parquet, _vectors
from tests.core.test_objects_ingest import write_coco

IOU = 0.3  # c.png's dog pair overlaps 0.49: tp at 0.3, poorly localised at the default 0.5


def _statuses(store: VectorStore) -> pd.DataFrame:
    return store.payloads("p", "mine", Filter(must=(Condition("kind", equals="object"),)),
                          fields=["key", "match", "iou", "match_id"]).set_index("key")


def _expected(objects: list[DetObject], iou: float) -> dict[str, str]:
    """The statuses box_matching gives these boxes (what an ingest of them at `iou` stores)."""
    matches = match_set(objects, iou=iou)
    return {o.key: matches[(o.image_key, o.source, o.index)].status for o in objects}


def _relabel(objects: list[DetObject], key: str, cls: str) -> list[DetObject]:
    return [dataclasses.replace(o, cls=cls) if o.key == key else o for o in objects]


def test_relabeling_a_box_rematches_its_image_and_undo_restores(
        store: VectorStore, settings: Settings, tmp_path: Path) -> None:
    instances, results, images_dir = write_coco(tmp_path / "data" / "coco")
    det = read_coco(instances, images_dir, predictions=results, settings=settings)
    ids = [*LABEL_IDS, *PREDICTION_KEYS]
    own = open_object_vectors(_parquet(tmp_path / "v.parquet", ids, _vectors(len(ids)).tolist()))
    ingest_object_vectors(store, "p", "val", det, own, space=own_space(store, "p", "mine", own.dim, "v"),
                          actor=ADMIN, iou=IOU, settings=settings)
    before = _statuses(store)
    assert before["match"].to_dict() == _expected(det.objects, IOU)
    assert before.loc["b.png#label/0", "match"] == "misclassified"  # a dog label under a cat prediction

    relabeled = _relabel(det.objects, "b.png#label/0", "cat")
    set_labels(store, "p", [object_id("p", "val", "b.png", "label", 0)], ["cat"], actor=ADMIN, why="manual")
    after = _statuses(store)
    assert after["match"].to_dict() == _expected(relabeled, IOU)
    assert after.loc["b.png#label/0", "match"] == after.loc["b.png#prediction/0", "match"] == "tp"
    assert after.loc["b.png#prediction/0", "match_id"] == object_id("p", "val", "b.png", "label", 0)
    assert after.loc["c.png#prediction/2", "match"] == "tp"  # other images untouched, the ingest's IoU kept

    undo(store, "p", actor=ADMIN)
    back = _statuses(store)
    assert back["match"].to_dict() == before["match"].to_dict()
    assert back["match_id"].fillna("").to_dict() == before["match_id"].fillna("").to_dict()
    # The re-matched image keeps the ingest's IoU: c.png's dog pair stays tp (0.49 < the default 0.5).
    set_labels(store, "p", [object_id("p", "val", "c.png", "label", 0)], ["bird"], actor=ADMIN, why="manual")
    again = _statuses(store)
    assert again["match"].to_dict() == _expected(_relabel(det.objects, "c.png#label/0", "bird"), IOU)
    assert again.loc["c.png#label/1", "match"] == "tp" and again.loc["c.png#label/0", "match"] != before.loc[
        "c.png#label/0", "match"]
    # A prediction box: nothing to re-match.
    assert rematch_objects(store, "p", [object_id("p", "val", "a.png", "prediction", 0)]) == 0
