"""The object-analysis use case: the per-class matching table and the detection-object finders of one space, persisted."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import duplicates as dup
from core.analysis import object_findings as of
from core.analysis.box_matching import status_table
from core.analysis.object_duplicates import DUPLICATE_COLUMNS, object_duplicates
from core.auth import Actor, Permission, require
from core.errors import NotEnoughDataError
from core.filters import Filter, objects_only
from core.pipeline.analyse import resolve_params
from core.pipeline.analysis_io import Selection, doc_key, doc_to_frame, fingerprint, frame_to_doc, resolve_datasets
from core.pipeline.freshness import REVISION_FIELD, is_stale, stamped
from core.pipeline.payload_cache import load_payloads
from core.pipeline.vector_cache import load_vectors
from core.store.base import VectorStore
from core.store.documents import FORMAT, Upgrade, read_document
from core.types import (
    BOX,
    BOX_AREA,
    CONFIDENCE,
    DATASET,
    IOU,
    KEY,
    LABEL,
    MATCH,
    MATCH_ID,
    PARENT,
    PREDICTION,
    SOURCE,
    SPLIT,
    URI,
    Progress,
)

logger = logging.getLogger(__name__)

DOC_KIND = "object_analysis"
OBJECT_ANALYSIS_FORMAT = 2  # a bump needs OBJECT_ANALYSIS_UPGRADES[old] (None: recompute)
# 2: near-duplicate boxes and leakage added (recomputed from the vectors)
OBJECT_ANALYSIS_UPGRADES: dict[int, Upgrade] = {1: lambda doc: None}
DEFAULT_PARAMS: dict[str, Any] = {
    "k": 10,  # neighbours of every kNN step
    "probe_folds": 5,  # cross-validation folds of the mislabel probes
    "min_cluster_size": None,  # failure clusters; None = ~sqrt(n)/2
    "min_samples": 5,
    "examples": 8,  # failing members listed per failure cluster (the crops to show)
    "duplicate_threshold": dup.DEFAULT_THRESHOLD,  # cosine similarity (core.analysis.duplicates)
    "duplicate_relative": dup.DEFAULT_RELATIVE,  # x median nearest-neighbour distance
    "seed": 0,
}
FIELDS: tuple[str, ...] = (DATASET, KEY, URI, PARENT, BOX, SOURCE, LABEL, PREDICTION, CONFIDENCE, MATCH, IOU,
                           MATCH_ID, BOX_AREA)
MISLABEL_COLUMNS = ("mislabel", "likely_mislabel", "suggested_label")
SPURIOUS_COLUMNS = ("agreement", "closeness", "spurious_share", "missing", "background", "likely_missing",
                    "likely_background")
_STEPS = 6


@dataclass
class ObjectAnalysis:
    """What run_object_analysis found, over the detection objects of `datasets` in one space.

    objects: every object's payload (FIELDS and meta.* columns), indexed by point id.
    table: the per-class matching table from the payloads' statuses (box_matching.status_table).
    mislabels: label boxes with mislabel, likely_mislabel, suggested_label, most suspicious first.
    missing / background: the spurious predictions with object_findings.spurious_scores' columns,
      ranked by the missing / background score.
    clusters: failure clusters, highest lift first (object_findings.failure_clusters).
    duplicates: near-duplicate groups of boxes, biggest first (object_duplicates.DUPLICATE_COLUMNS: group,
      size, source, ids, datasets, leakage = the group spans datasets or splits).
    duplicate_boxes: the objects in a group, with duplicate_group and leakage, by group.
    summary: counts (objects, labels, predictions, likely_mislabels, likely_missing, likely_background,
      failure_clusters, duplicate_groups, leakage_objects) and seconds. stale: the space was written
      since (load_object_analysis).
    """

    project: str
    space: str
    datasets: list[str]
    params: dict[str, Any]
    fingerprint: str
    objects: pd.DataFrame
    table: pd.DataFrame
    mislabels: pd.DataFrame
    missing: pd.DataFrame
    background: pd.DataFrame
    clusters: pd.DataFrame
    duplicates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DUPLICATE_COLUMNS))
    duplicate_boxes: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    stale: bool = False


def object_filter(datasets: Sequence[str]) -> Filter:
    """The detection objects of these datasets."""
    return objects_only(Filter.datasets(datasets))


def load_objects(store: VectorStore, project: str, space: str, datasets: Sequence[str],
                 cache_dir: Path | None = None) -> pd.DataFrame:
    """The payloads of the objects of these datasets (FIELDS always present, meta.* as stored),
    indexed by point id (sorted). cache_dir: payload_cache's folder (None: read the store)."""
    frame = load_payloads(store, project, space, object_filter(datasets), None, cache_dir)
    for name in FIELDS:
        if name not in frame.columns:
            frame[name] = None
    return frame.sort_index()


def matching_table(objects: pd.DataFrame) -> pd.DataFrame:
    """The per-class matching table of these objects' payloads (their match statuses)."""
    return status_table(list(of.object_class(objects)), list(objects[SOURCE]), list(objects[MATCH]))


def run_object_analysis(
    store: VectorStore, project: str, space: str, datasets: Sequence[str] | None = None, *,
    actor: Actor, params: dict[str, Any] | None = None, force: bool = False, cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> ObjectAnalysis:
    """The object finders on the detection objects of `datasets` (default all) in one space,
    reusing the persisted result while the vectors, classes, statuses and params are unchanged
    (force=True recomputes). cache_dir: the vector cache's folder (vector_cache.cache_folder).
    NotEnoughDataError when the selection holds fewer than 3 objects; PermissionDeniedError unless
    actor may ANALYSE (viewers read persisted results: load_object_analysis)."""
    require(actor, Permission.ANALYSE, f"analysing the objects of space {space!r} of project {project!r}")
    started = time.perf_counter()
    names = resolve_datasets(store, project, datasets)
    full = resolve_params(params, DEFAULT_PARAMS)
    store.get_space(project, space)  # NotFoundError for an unknown space
    revision = store.revision(project, space)
    block = load_vectors(store, project, space, object_filter(names), cache_dir=cache_dir)
    if len(block) < 3:
        raise NotEnoughDataError(
            f"Space {space!r} of project {project!r} has {len(block)} detection object(s) in "
            f"{', '.join(names)}; at least 3 are needed (ingest boxes with --coco or --boxes)")
    objects = load_objects(store, project, space, names).reindex(block.ids.tolist())
    _tick(progress, 1)
    fp = _fingerprint(full, block.ids.tolist(), np.asarray(block.vectors), objects)
    key = doc_key(space, *names)
    doc = None if force else read_document(store, project, DOC_KIND, key, OBJECT_ANALYSIS_FORMAT,
                                           OBJECT_ANALYSIS_UPGRADES)
    if doc is not None and doc.get("fingerprint") == fp:
        if doc.get(REVISION_FIELD) != revision:
            store.put_document(project, DOC_KIND, key, stamped(doc, revision))
        _tick(progress, _STEPS)
        return _from_doc(doc, objects, project, space, names, reused=True)
    doc = _compute(np.asarray(block.vectors, dtype=np.float32), objects, full, progress)
    doc.update({"space": space, "datasets": sorted(names), "fingerprint": fp, "params": full})
    doc["summary"]["seconds"] = round(time.perf_counter() - started, 3)
    doc = stamped(doc, revision)
    store.put_document(project, DOC_KIND, key, doc)
    _tick(progress, _STEPS)
    logger.info("object analysis computed: %s/%s (%d objects) in %.1f s", project, space, len(objects),
                doc["summary"]["seconds"])
    return _from_doc(doc, objects, project, space, names, reused=False)


def load_object_analysis(store: VectorStore, project: str, space: str, datasets: Sequence[str] | None = None,
                         *, cache_dir: Path | None = None) -> ObjectAnalysis | None:
    """The last persisted object analysis of this selection (no vectors read), `.stale` set;
    None when never computed. cache_dir: payload_cache's folder for the payloads it joins."""
    names = resolve_datasets(store, project, datasets)
    key = doc_key(space, *names)
    doc = read_document(store, project, DOC_KIND, key, OBJECT_ANALYSIS_FORMAT, OBJECT_ANALYSIS_UPGRADES)
    if doc is None:
        return None
    result = _from_doc(doc, load_objects(store, project, space, names, cache_dir), project, space, names)
    result.stale = is_stale(doc, store, project, space)
    return result


def _tick(progress: Progress | None, step: int) -> None:
    if progress is not None:
        progress(step, _STEPS)


def _fingerprint(params: dict[str, Any], ids: list[str], vectors: np.ndarray, objects: pd.DataFrame) -> str:
    """analysis_io.fingerprint of the objects, their statuses and partners hashed in with the params
    (a re-match with another IoU threshold changes only payloads)."""
    h = hashlib.blake2b(digest_size=16)
    for name in (SOURCE, MATCH, MATCH_ID):
        h.update(json.dumps([None if pd.isna(v) else str(v) for v in objects[name]]).encode())
    payload = objects.assign(**({SPLIT: None} if SPLIT not in objects.columns else {}))
    return fingerprint({**params, "objects": h.hexdigest()}, Selection(ids, vectors, payload))


def _compute(x: np.ndarray, objects: pd.DataFrame, p: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
    k, seed = int(p["k"]), int(p["seed"])
    mislabels = of.likely_mislabeled_boxes(x, objects, k=k, folds=int(p["probe_folds"]), seed=seed)
    _tick(progress, 2)
    spurious = of.spurious_scores(x, objects, k=k)
    _tick(progress, 3)
    clusters = of.failure_clusters(x, objects, k=k, min_cluster_size=p["min_cluster_size"],
                                   min_samples=int(p["min_samples"]), examples=int(p["examples"]), seed=seed)
    _tick(progress, 4)
    per_object, groups = object_duplicates(x, objects, k=k, seed=seed, threshold=float(p["duplicate_threshold"]),
                                           relative=float(p["duplicate_relative"]))
    _tick(progress, 5)
    summary = {
        "objects": int(len(objects)), "labels": int((objects[SOURCE] == "label").sum()),
        "predictions": int((objects[SOURCE] == "prediction").sum()),
        "likely_mislabels": int(mislabels["likely_mislabel"].sum()),
        "likely_missing": int(spurious["likely_missing"].sum()),
        "likely_background": int(spurious["likely_background"].sum()), "failure_clusters": int(len(clusters)),
        "duplicate_groups": int(len(groups)), "leakage_objects": int(per_object["leakage"].sum()),
    }
    return {FORMAT: OBJECT_ANALYSIS_FORMAT, "summary": summary,
            "mislabels": frame_to_doc(_columns(mislabels, MISLABEL_COLUMNS)),
            "spurious": frame_to_doc(_columns(spurious, SPURIOUS_COLUMNS)), "clusters": frame_to_doc(clusters),
            "duplicates": frame_to_doc(per_object[per_object["duplicate_group"] >= 0]),
            "duplicate_groups": frame_to_doc(groups)}


def _columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    out = frame[list(names)].copy()
    for name in names:
        if name.startswith("likely_"):
            out[name] = out[name].astype(bool)
    return out.rename_axis("id")


def _from_doc(doc: dict[str, Any], objects: pd.DataFrame, project: str, space: str, names: list[str], *,
              reused: bool = True) -> ObjectAnalysis:
    """The result of a stored document joined with the current payloads (objects deleted since drop out)."""
    mislabels = objects.join(doc_to_frame(doc["mislabels"]), how="inner")
    spurious = objects.join(doc_to_frame(doc["spurious"]), how="inner")
    clusters = doc_to_frame(doc["clusters"]) if doc["clusters"]["order"] else pd.DataFrame(columns=of.FAILURE_COLUMNS)
    return ObjectAnalysis(
        project, space, names, doc["params"], doc["fingerprint"], objects=objects, table=matching_table(objects),
        mislabels=mislabels.sort_values("mislabel", ascending=False, kind="stable", na_position="last"),
        missing=of.likely_missing_labels(spurious), background=of.background_predictions(spurious),
        clusters=clusters, duplicates=doc_to_frame(doc["duplicate_groups"]),
        duplicate_boxes=_duplicate_boxes(objects, doc["duplicates"]), summary=doc["summary"], reused=reused)


def _duplicate_boxes(objects: pd.DataFrame, part: dict[str, Any]) -> pd.DataFrame:
    """The current payloads of the boxes in a duplicate group, with duplicate_group and leakage, by group."""
    if not part["index"]:
        return objects.iloc[:0].assign(duplicate_group=pd.Series(dtype="int64"), leakage=pd.Series(dtype=bool))
    found = doc_to_frame(part).astype({"duplicate_group": "int64", "leakage": bool})
    return objects.join(found, how="inner").sort_values(["duplicate_group"], kind="stable")


def findings_frame(result: ObjectAnalysis) -> pd.DataFrame:
    """Every ranked object of the finders as one export table: finder ("mislabel" | "missing" |
    "background" | "failure_cluster" | "duplicate" | "leakage"), rank (1 = most likely, per finder), score,
    flagged (past the finder's cut-off), id, dataset, key, uri, box, source, class, match, suggested_label,
    cluster, group (the near-duplicate group; "duplicate": every boxed member, score = group size;
    "leakage": the members of groups spanning datasets or splits)."""
    parts = [
        _part("mislabel", result.mislabels, "mislabel", "likely_mislabel"),
        _part("missing", result.missing, "missing", "likely_missing"),
        _part("background", result.background, "background", "likely_background"),
    ]
    rows = [(c, i) for c, ids in zip(result.clusters.get("cluster", []), result.clusters.get("examples", []),
                                     strict=True) for i in ids if i in result.objects.index]
    if rows:
        lift = dict(zip(result.clusters["cluster"], result.clusters["lift"], strict=True))
        members = result.objects.loc[[i for _, i in rows]].assign(
            cluster=[c for c, _ in rows], score=[lift[c] for c, _ in rows], flagged=True)
        parts.append(_part("failure_cluster", members, "score", "flagged"))
    boxes = result.duplicate_boxes
    if len(boxes):
        sizes = boxes.groupby("duplicate_group")["duplicate_group"].transform("size").astype(float)
        boxes = boxes.assign(group=boxes["duplicate_group"], score=sizes, flagged=True)
        parts.append(_part("duplicate", boxes, "score", "flagged"))
        parts.append(_part("leakage", boxes[boxes["leakage"]], "score", "flagged"))
    columns = ["finder", "rank", "score", "flagged", "id", DATASET, KEY, URI, BOX, SOURCE, "class", MATCH,
               "suggested_label", "cluster", "group"]
    frames = [p for p in parts if len(p)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for name in columns:
        if name not in out.columns:
            out[name] = None
    return out[columns]


def _part(finder: str, frame: pd.DataFrame, score: str, flag: str) -> pd.DataFrame:
    out = frame.assign(finder=finder, rank=np.arange(1, len(frame) + 1), score=frame[score],
                       flagged=frame[flag].astype(bool), **{"class": of.object_class(frame)})
    return out.rename_axis("id").reset_index()
