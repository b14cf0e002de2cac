"""2-D maps of a project's datasets: fit once, persist in the store, reuse, place new points.

get_map() computes a layout once per (space, datasets, method, params, filter) and keeps it as
a store document (see core.pipeline.map_doc) stamped with the space's store revision, so
reopening while nothing was written is one document read. After a write, the selection's ids
are listed: points ingested later are placed onto the existing layout by kNN interpolation (no
refit, so the picture a user knows does not move); deleted points are dropped; refit=True
starts over. Big selections are fitted on a sample, the rest placed (core.projection.fit).
Vectors re-ingested under the same ids are not detected: refit=True after changing a model.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.auth import Actor, Permission, require
from core.errors import NotEnoughDataError
from core.filters import Filter, items_only, names_kind
from core.pipeline.analysis_io import resolve_datasets
from core.pipeline.map_doc import MAP_KIND, StoredMap, from_doc, map_key, to_doc
from core.pipeline.vector_cache import load_vectors
from core.projection import MIN_POINTS, fit_projection, params_hash, place_new, project_linear
from core.projection.params import normalise_params
from core.store.base import VectorStore
from core.store.revisions import vectors_part
from core.types import DATASET, Progress

log = logging.getLogger(__name__)

_STEPS = 4  # progress steps: read, fit, place, save
_READ, _FIT, _PLACE, _SAVE = 1, 2, 3, 4
# New points are placed against at most this many fitted points (a seeded random subset).
# Reading vectors back from the store dominates placement (8 s for 100k x 512-d on 2 cores);
# a quarter of the points still gives every new point near neighbours in any sizeable cluster.
MAX_REFERENCE = 25_000


@dataclass(frozen=True)
class MapResult:
    """A 2-D map. ids (n,) point ids; coords (n, 2) float32, row i is ids[i].

    params_hash: params_hash(method, params, ids): changes when the parameters or the set of
    points change (a cache key for the coordinates). fitted: True when this call fitted the
    layout; placed: how many points this call added onto an existing layout without a refit.
    params: the normalised parameters (seed included); resolved: what the fit actually used.
    """

    ids: list[str]
    coords: np.ndarray
    method: str
    params_hash: str
    fitted: bool
    placed: int
    params: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)
    n_fitted: int = 0  # points the layout was fitted on (the rest were placed)

    def __len__(self) -> int:
        return len(self.ids)


def selection_filter(datasets: Sequence[str], flt: Filter | None = None) -> Filter:
    """Items (not detection objects) of the datasets, narrowed by flt; the objects when flt says
    so (core.filters.objects_only: the objects map, a map document of its own)."""
    selection = Filter.datasets(datasets).and_(flt)
    return selection if names_kind(flt) else items_only(selection)


def _tick(progress: Progress | None, step: int) -> None:
    if progress is not None:
        progress(step, _STEPS)


def _current_ids(store: VectorStore, project: str, space: str, selection: Filter) -> list[str]:
    """Ids of the points the map should show now, sorted (payloads only: no vectors read)."""
    frame = store.payloads(project, space, flt=selection, fields=[DATASET])
    return sorted(str(i) for i in frame.index)


def _prepare(store: VectorStore, project: str, space: str, datasets: Sequence[str] | None,
             method: str, params: dict[str, Any] | None,
             flt: Filter | None) -> tuple[list[str], dict[str, Any], str, Filter]:
    store.get_space(project, space)  # NotFoundError for an unknown space
    names = resolve_datasets(store, project, datasets)
    normalised = normalise_params(method, params)
    return names, normalised, map_key(space, names, method, normalised, flt), selection_filter(names, flt)


def _result(stored: StoredMap, fitted: bool, placed: int) -> MapResult:
    return MapResult(
        ids=list(stored.ids), coords=stored.coords, method=stored.method,
        params_hash=stored.params_hash or params_hash(stored.method, stored.params, stored.ids), fitted=fitted,
        placed=placed, params=dict(stored.params), resolved=dict(stored.resolved),
        n_fitted=int(stored.fitted.sum()),
    )


def _fit(store: VectorStore, project: str, space: str, selection: Filter, method: str,
         params: dict[str, Any], cache_dir: Path | None, progress: Progress | None,
         fit_progress: Progress | None = None) -> StoredMap:
    start = time.perf_counter()
    block = load_vectors(store, project, space, selection, cache_dir=cache_dir)
    log.info("map: read %d vectors of %s/%s in %.1f s", len(block), project, space, time.perf_counter() - start)
    _tick(progress, _READ)
    if len(block) < MIN_POINTS:
        raise NotEnoughDataError(
            f"A map of space {space!r} of project {project!r} needs at least {MIN_POINTS} points; "
            f"the selection has {len(block)}: add data or widen the filter")
    proj = fit_projection(block.vectors, method, params, progress=fit_progress)
    n_fit = int(proj.fitted.sum())
    log.info("map fitted: %s of %d points of %s/%s in %.1f s (%d fitted, %d placed; %s)", method, len(block),
             project, space, proj.seconds, n_fit, len(block) - n_fit,
             {k: round(v, 1) for k, v in proj.timings.items()})
    _tick(progress, _FIT)
    _tick(progress, _PLACE)
    return StoredMap(block.ids.tolist(), proj.coords, proj.fitted, method, params, proj.params,
                     proj.pca_mean, proj.pca_components, proj.seconds, block.revision)


def _place(store: VectorStore, project: str, space: str, stored: StoredMap, new_ids: list[str]) -> StoredMap:
    """stored plus new_ids placed onto it (exactly for PCA, kNN interpolation otherwise)."""
    found, new_vectors = store.vectors(project, space, ids=new_ids)
    if stored.pca_mean is not None and stored.pca_components is not None:
        new_coords = project_linear(new_vectors, stored.pca_mean, stored.pca_components)
    else:
        ref_rows = np.flatnonzero(stored.fitted)
        if len(ref_rows) > MAX_REFERENCE:
            ref_rows = np.sort(np.random.default_rng(0).choice(ref_rows, MAX_REFERENCE, replace=False))
        ref_found, ref_vectors = store.vectors(project, space, ids=[stored.ids[i] for i in ref_rows])
        row_of = {pid: row for row, pid in zip(ref_rows, (stored.ids[i] for i in ref_rows), strict=True)}
        ref_coords = stored.coords[[row_of[pid] for pid in ref_found]]
        new_coords = place_new(new_vectors, ref_vectors, ref_coords, k=int(stored.resolved.get("n_neighbors", 10)),
                               pca_dims=int(stored.resolved.get("pca_dims", 50)))
    return StoredMap(
        stored.ids + list(found), np.vstack([stored.coords, new_coords]).astype(np.float32),
        np.concatenate([stored.fitted, np.zeros(len(found), dtype=bool)]), stored.method,
        stored.params, stored.resolved, stored.pca_mean, stored.pca_components, stored.seconds, stored.revision)


def get_map(
    store: VectorStore,
    project: str,
    space: str,
    datasets: Sequence[str] | None,
    *,
    actor: Actor,
    method: str = "umap",
    params: dict[str, Any] | None = None,
    flt: Filter | None = None,
    refit: bool = False,
    progress: Progress | None = None,
    ids: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    fit_progress: Progress | None = None,
) -> MapResult:
    """The 2-D map of the items of `datasets` (None / empty: all) in `space`, narrowed by flt.

    Fitted once and persisted; later calls reuse it ("map reused"), place points ingested since
    ("placed N new points", no refit), drop deleted ones; refit=True fits again ("map fitted").
    Raises NotFoundError (unknown space / dataset), NotEnoughDataError (< MIN_POINTS points).
    progress(done, total) gets 0..4 of 4 (read, fit, place, save; the log says the counts).
    ids: the selection's current point ids when the caller has already read them (e.g. the
    payload frame the map is coloured by): saves get_map a scroll over the store when the
    space was written since the map was saved. cache_dir: where load_vectors keeps vector
    blocks (settings.cache_dir / "vectors"); None reads from the store. fit_progress(done, 100):
    the fit's own per-cent progress (fit_projection's), when this call fits.
    actor: who asks. Anyone may explore; the map is persisted (fitted, placed or restamped) only
    for an actor who may ANALYSE (editor and up): a viewer's map is computed and returned unsaved.
    """
    require(actor, Permission.EXPLORE, f"mapping space {space!r} of project {project!r}")
    persist = actor.can(Permission.ANALYSE)
    names, normalised, key, selection = _prepare(store, project, space, datasets, method, params, flt)
    _tick(progress, 0)
    revision = store.revision(project, space)  # before reading: a write meanwhile shows next time
    doc = None if refit else store.get_document(project, MAP_KIND, key)
    stored = from_doc(doc, method, normalised, key) if doc is not None else None
    if stored is None:
        stored = _fit(store, project, space, selection, method, normalised, cache_dir, progress, fit_progress)
        stored = _save(store, project, key, stored, space, names, flt, progress, persist)
        return _result(stored, fitted=True, placed=0)
    # nothing written to the space since, or only payloads (labels, tags) and the selection tests
    # datasets alone (a write of dataset / kind renews the vectors part): the same points, no id listing
    same_points = flt is None and vectors_part(stored.revision or "") == vectors_part(revision)
    if stored.revision == revision or same_points:
        log.info("map reused: %s of %d points of %s/%s (revision unchanged)", method, len(stored.ids),
                 project, space)
        _tick(progress, _SAVE)
        return _result(stored, fitted=False, placed=0)
    current = sorted(ids) if ids is not None else _current_ids(store, project, space, selection)
    _tick(progress, _READ)
    known, now = set(stored.ids), set(current)
    keep = np.fromiter((pid in now for pid in stored.ids), dtype=bool, count=len(stored.ids))
    new_ids = [pid for pid in current if pid not in known]
    stored = dataclasses.replace(stored, revision=revision)
    if keep.all() and not new_ids:
        # Same points, newer revision (e.g. labels changed): record it so the next reopen is one read.
        log.info("map reused: %s of %d points of %s/%s", method, len(stored.ids), project, space)
        stored = _save(store, project, key, stored, space, names, flt, progress, persist)
        return _result(stored, fitted=False, placed=0)
    return _update(store, project, space, key, names, flt, stored, keep, new_ids, progress, actor)


def _save(store: VectorStore, project: str, key: str, stored: StoredMap, space: str, names: list[str],
          flt: Filter | None, progress: Progress | None, persist: bool) -> StoredMap:
    """Persist stored with its params_hash (so a reopen need not sort and hash every id);
    persist False (a viewer's map): only the hash, nothing written."""
    start = time.perf_counter()
    stored = dataclasses.replace(stored, params_hash=params_hash(stored.method, stored.params, stored.ids))
    if not persist:
        log.info("map: %d points of %s/%s not saved (the actor may not persist maps)", len(stored.ids), project,
                 space)
        _tick(progress, _SAVE)
        return stored
    store.put_document(project, MAP_KIND, key, to_doc(stored, space, names, flt))
    log.info("map: saved %d points of %s/%s in %.1f s", len(stored.ids), project, space, time.perf_counter() - start)
    _tick(progress, _SAVE)
    return stored


def _update(store: VectorStore, project: str, space: str, key: str, names: list[str], flt: Filter | None,
            stored: StoredMap, keep: np.ndarray, new_ids: list[str], progress: Progress | None,
            actor: Actor) -> MapResult:
    """Drop deleted points, place new ones, save; refit when too few fitted points remain."""
    if not keep.all():
        log.info("map: dropped %d deleted points", int((~keep).sum()))
        stored = stored.subset(keep)
    if int(stored.fitted.sum()) < MIN_POINTS:
        log.info("map: fewer than %d fitted points remain, fitting again", MIN_POINTS)
        return get_map(store, project, space, names, actor=actor, method=stored.method, params=stored.params,
                       flt=flt, refit=True, progress=progress)
    _tick(progress, _FIT)
    placed = 0
    if new_ids:
        start = time.perf_counter()
        before = len(stored.ids)
        stored = _place(store, project, space, stored, new_ids)
        placed = len(stored.ids) - before
        log.info("placed %d new points onto the %s map of %s/%s in %.2f s",
                 placed, stored.method, project, space, time.perf_counter() - start)
    _tick(progress, _PLACE)
    stored = _save(store, project, key, stored, space, names, flt, progress, actor.can(Permission.ANALYSE))
    return _result(stored, fitted=False, placed=placed)


def has_map(store: VectorStore, project: str, space: str, datasets: Sequence[str] | None, *,
            method: str = "umap", params: dict[str, Any] | None = None, flt: Filter | None = None) -> bool:
    """True when a persisted map exists for these arguments (get_map will not need a full fit),
    so a caller can skip the quick layout. Lists document keys only (~7 ms; decoding the map
    took 0.3 s at 100k points): the key hashes format, datasets, method, params and filter, so
    a document under it was made by these arguments."""
    _, _, key, _ = _prepare(store, project, space, datasets, method, params, flt)
    return key in store.list_documents(project, MAP_KIND)


def quick_map(store: VectorStore, project: str, space: str, datasets: Sequence[str] | None, *,
              actor: Actor, flt: Filter | None = None, seed: int = 0, progress: Progress | None = None,
              cache_dir: Path | None = None) -> MapResult:
    """A layout to show at once while the full one is computed: the PCA-2 map (~1 s at 100k
    points, dominated by reading the vectors), persisted like any map, so it is also instant
    the second time and new points place exactly."""
    return get_map(store, project, space, datasets, actor=actor, method="pca", params={"seed": seed}, flt=flt,
                   progress=progress, cache_dir=cache_dir)
