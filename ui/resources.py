"""Every st.cache_* decision of the dashboard: settings, the store, models, and cached computations.

Nothing else in ui/ or pages/ calls st.cache_*. Cached reads take plain hashable arguments plus
the store's revision (VectorStore.revision: a token that changes on every write, payload updates
included, from this process or the CLI): a write changes the key, so nothing ever clears a cache
shared by every session, and a label changed from the CLI shows on the next rerun. Results read
from documents key on the space's revision and their own document kind's (documents_revision),
not on the project's, which every write anywhere in the project moves: an ingest into another
space, a history entry or a collection saved rebuilds no session's map. Pages read persisted
results here; computing them is an explicit action (Find problems, Recompute).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st

from core.config import Settings, load_settings
from core.filters import Filter
from core.pipeline.map_doc import MAP_KIND
from core.store.base import VectorStore
from core.store.revisions import vectors_part
from core.types import SpaceInfo

if TYPE_CHECKING:
    from core.embedders import ModelEmbedder
    from ui.explore import ColourSpec, MapData

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """The one Settings object of this server process (environment + .env, read once)."""
    return load_settings()


def _close_store(store: VectorStore) -> None:
    log.info("closing store %s", store.describe())
    store.close()


@st.cache_resource(show_spinner="Opening the Qdrant store…", on_release=_close_store)
def get_store() -> VectorStore:
    """The store of this server process, shared by every session; closed when released.

    Raises CoreError (StoreUnavailableError, StoreLockedError) when it cannot be opened; a failed
    open is not cached, so the next rerun tries again (Qdrant starting late, a CLI lock released).
    """
    from core.store import open_store

    settings = get_settings()
    store = open_store(settings)
    log.info("opened %s", store.describe())
    return store


def release_store() -> None:
    """Close and forget the cached store (the next get_store() opens a new one)."""
    get_store.clear()


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def get_embedder(space_info: SpaceInfo) -> ModelEmbedder:
    """The model that made `space_info`, loaded once per process (ModelLoadError if it cannot)."""
    from core.embedders import embedder_for_space

    settings = get_settings()
    return embedder_for_space(space_info, device=settings.device, batch_size=settings.batch_size,
                              allow_pickled=settings.allow_pickled_models)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def get_model(model: str, modality: str = "auto") -> ModelEmbedder:
    """A model by hub name or local directory (the Ingest page's choice), loaded once per process.
    A name that is a folder (typed in any field) must lie under the data roots."""
    from core.embedders import load_embedder

    settings = get_settings()
    return load_embedder(model, modality, device=settings.device,  # type: ignore[arg-type]
                         batch_size=settings.batch_size, allowed_roots=settings.allowed_roots,
                         allow_pickled=settings.allow_pickled_models)


def space_revision(project: str, space: str) -> str:
    """The store's revision of one space: changes on every write to its points (ingest, label
    update, deletion) from any process, so it keys the caches of what is read from those points."""
    return get_store().revision(project, space)


def project_revision(project: str) -> str:
    """The store's revision of a project: changes on every point write and every document write
    (a map fitted, an analysis computed, by this server or the CLI), so it keys the caches of
    results read from documents."""
    return get_store().revision(project)


def documents_revision(project: str, kind: str) -> str:
    """The store's token of the project's documents of one kind (VectorStore.document_revision):
    moves when a document of that kind is written (a map refitted or its new points placed, an
    analysis recomputed), by this server or the CLI, and on no other write."""
    return get_store().document_revision(project, kind)


@st.cache_data(show_spinner=False, max_entries=64)
def _document_keys(project: str, kind: str, revision: str) -> list[str]:
    return get_store().list_documents(project, kind)


def document_keys(project: str, kind: str) -> list[str]:
    """store.list_documents, per documents_revision: a page asking on every rerun (is there a map,
    an analysis, saved views?) does not take the store from a CLI ingest holding it each time."""
    return _document_keys(project, kind, documents_revision(project, kind))


@st.cache_data(show_spinner=False, max_entries=64)
def _has_map(project: str, space: str, datasets: tuple[str, ...], method: str, flt: Filter | None,
             revision: str) -> bool:
    from core.pipeline import maps

    return maps.has_map(get_store(), project, space, datasets, method=method, flt=flt)


def has_map(project: str, space: str, datasets: Sequence[str], *, method: str, flt: Filter | None = None) -> bool:
    """core.pipeline.maps.has_map, per revision of the space (its datasets) and of the map documents."""
    return _has_map(project, space, tuple(datasets), method, flt,
                    f"{space_revision(project, space)}/{documents_revision(project, MAP_KIND)}")


def _map_revision(project: str, space: str, flt: Filter | None) -> str:
    """What a map of the space depends on: its map documents, and the points it shows (the vectors
    part of the space's revision; the whole revision when a filter may test labels)."""
    points = space_revision(project, space)
    return f"{points if flt else vectors_part(points)}/{documents_revision(project, MAP_KIND)}"


def _map_data_revision(project: str, space: str, scores: bool) -> str:
    """What the map data depends on besides the map: every payload of the space (the join), and
    the persisted analysis when it carries its scores."""
    base = f"{space_revision(project, space)}/{documents_revision(project, MAP_KIND)}"
    return f"{base}/{_analyses_token(project)}" if scores else base


def _analyses_token(project: str) -> str:
    from core.pipeline.analyse import DOC_KIND

    return documents_revision(project, DOC_KIND)


def _analysis_revision(project: str, space: str) -> str:
    """What a persisted analysis of the space depends on: its documents, the space's payloads
    (joined) and revision (its `.stale`)."""
    return f"{space_revision(project, space)}/{_analyses_token(project)}"


def _payload_dir() -> Path:
    from core.pipeline.payload_cache import cache_folder

    return cache_folder(get_settings())


@st.cache_data(show_spinner="Reading payloads…", max_entries=16)
def _payloads(project: str, space: str, datasets: tuple[str, ...], fields: tuple[str, ...] | None,
              flt: Filter | None, revision: str) -> pd.DataFrame:
    full = Filter.datasets(datasets).and_(flt)
    if flt is None:  # the same few selections on every page: kept on disk per revision too
        from core.pipeline.payload_cache import load_payloads

        return load_payloads(get_store(), project, space, full or None, fields, _payload_dir())
    return get_store().payloads(project, space, full or None, list(fields) if fields else None)


def cached_payloads(project: str, space: str, datasets: Sequence[str],
                    fields: Sequence[str] | None = None, flt: Filter | None = None) -> pd.DataFrame:
    """Payloads of the datasets (all datasets when empty) in one space, indexed by point id."""
    return _payloads(project, space, tuple(datasets), tuple(fields) if fields else None, flt,
                     space_revision(project, space))


# (project, space, datasets, _map_data_revision without scores) of every MapData this process has built: map_ready.
_built: set[tuple[str, str, tuple[str, ...], str]] = set()
_built_lock = threading.Lock()


@st.cache_resource(show_spinner="Reading the payloads of every point…", max_entries=2)
def _map_payloads(project: str, space: str, datasets: tuple[str, ...], revision: str) -> pd.DataFrame:
    from core.pipeline.payload_cache import load_payloads

    return load_payloads(get_store(), project, space, Filter.datasets(datasets) or None, None, _payload_dir())


def map_payloads(project: str, space: str, datasets: Sequence[str]) -> pd.DataFrame:
    """Every payload field of the datasets' points, indexed by point id: read once per space
    revision (core.pipeline.payload_cache: Parquet on disk, so a new server process reads a file,
    not the store), then shared by every rerun and session without a copy: never mutate it."""
    return _map_payloads(project, space, tuple(datasets), space_revision(project, space))


def map_ready(project: str, space: str, datasets: Sequence[str]) -> bool:
    """Whether this process has built the map data of these datasets at the space's current
    revision and map documents (so another build, e.g. for a filter, reuses payloads and analysis in
    memory). False on a first view and after every write to the space or its maps: the page then
    draws the map's shape first."""
    revision = _map_data_revision(project, space, scores=False)
    with _built_lock:
        return (project, space, tuple(datasets), revision) in _built


@st.cache_resource(show_spinner=False, max_entries=4)
def _facets(project: str, space: str, datasets: tuple[str, ...], revision: str,
            kind: str | None = None) -> dict[str, list[Any]]:
    from core.types import KIND
    from ui.widgets.filters import facets_from_frame

    frame = _map_payloads(project, space, datasets, revision)
    if kind is not None and KIND in frame.columns:
        frame = frame[frame[KIND].to_numpy(dtype=object) == kind]
    return facets_from_frame(frame)


def payload_facets(project: str, space: str, datasets: Sequence[str], kind: str | None = None) -> dict[str, list[Any]]:
    """The filterable values of map_payloads (ui.widgets.filters.facets_from_frame), per revision;
    of the points of one `kind` only when given (the objects map filters on objects' fields)."""
    return _facets(project, space, tuple(datasets), space_revision(project, space), kind)


@st.cache_data(show_spinner=False, max_entries=16)
def _kind_counts(project: str, space: str, datasets: tuple[str, ...], revision: str) -> tuple[int, int]:
    from core.filters import items_only, objects_only

    store, selection = get_store(), Filter.datasets(datasets) or None
    return store.count(project, space, items_only(selection)), store.count(project, space, objects_only(selection))


def object_count(project: str, space: str, datasets: Sequence[str]) -> int:
    """How many detection objects the datasets have in the space (0: no objects view), per revision."""
    return _kind_counts(project, space, tuple(datasets), space_revision(project, space))[1]


def item_count(project: str, space: str, datasets: Sequence[str]) -> int:
    """How many items (images) the datasets have in the space (0 in a space of objects only, e.g. "-roi")."""
    return _kind_counts(project, space, tuple(datasets), space_revision(project, space))[0]


@st.cache_resource(show_spinner="Computing the 2-D map…", max_entries=4)
def _map(project: str, space: str, datasets: tuple[str, ...], method: str,
         params: dict[str, Any] | None, flt: Filter | None, revision: str) -> Any:
    # A resource, not data: a 1M-point MapResult (ids + coords) is not copied on every rerun.
    from core.pipeline.maps import get_map
    from core.pipeline.vector_cache import cache_folder
    from ui.actor import current_actor  # ui.actor imports this module: imported here

    # Shared by every session: the first caller's role decides whether a missing map is persisted.
    return get_map(get_store(), project, space, list(datasets), actor=current_actor(), method=method,
                   params=params, flt=flt, cache_dir=cache_folder(get_settings()))


def cached_map(project: str, space: str, datasets: Sequence[str], *, method: str = "umap",
               params: dict[str, Any] | None = None, flt: Filter | None = None) -> Any:
    """core.pipeline.maps.get_map, cached per (arguments, the space's points, the project's map
    documents) -> MapResult: points written to the space, a refit or new points placed (both rewrite
    a map document) give a new key; a label changed does not (unless flt). Shared: never mutate it."""
    return _map(project, space, tuple(datasets), method, params, flt, _map_revision(project, space, flt))


@st.cache_resource(show_spinner="Preparing the map…", max_entries=2)
def _map_data(project: str, space: str, datasets: tuple[str, ...], method: str, params: dict[str, Any] | None,
              flt: Filter | None, scores: bool, map_revision: str, revision: str) -> MapData:
    from ui.explore import map_data

    result = _map(project, space, datasets, method, params, flt, map_revision)
    payloads = map_payloads(project, space, datasets)
    analysis = cached_analysis(project, space, datasets) if scores else None
    token = hashlib.sha1(repr((project, space, datasets, method, params, flt, scores, revision)).encode()).hexdigest()
    data = map_data(result.ids, result.coords, payloads, analysis.scores if analysis is not None else None,
                    n_fitted=result.n_fitted, token=token[:16])
    ready = revision if not scores else revision.rsplit("/", 1)[0]  # map_ready's key: no analysis part
    with _built_lock:
        if len(_built) > 1_000:  # one entry per revision seen: forget old ones now and then
            _built.clear()
        _built.add((project, space, datasets, ready))
    return data


def cached_map_data(project: str, space: str, datasets: Sequence[str], *, method: str,
                    params: dict[str, Any] | None = None, flt: Filter | None = None,
                    scores: bool = False) -> MapData:
    """The Explore map's data (ui.explore.MapData): cached_map joined to map_payloads (and the
    persisted analysis's scores when `scores`), built once per revision of the space, of the map
    documents (and of the analyses, with scores) and shared without a copy (never mutate it): a
    rerun after a lasso rebuilds nothing, nor does a write to another space or another document kind."""
    chosen = tuple(datasets)
    # The map first: fitting it or placing new points rewrites its document, which moves the key the
    # data is then cached under (else the next rerun, e.g. a lasso, would join the payloads again).
    _map(project, space, chosen, method, params, flt, _map_revision(project, space, flt))
    return _map_data(project, space, chosen, method, params, flt, scores,
                     _map_revision(project, space, flt), _map_data_revision(project, space, scores))


@st.cache_resource(show_spinner=False, max_entries=16)
def _colour(token: str, by: str, _data: MapData) -> ColourSpec:
    from ui.explore import colour_spec

    return colour_spec(_data.frame, by)


def map_colour(data: MapData, by: str) -> ColourSpec:
    """ui.explore.colour_spec of the map's frame by `by`, once per map data (its token)."""
    return _colour(data.token, by, data)


@st.cache_resource(show_spinner=False, max_entries=8)
def _visible(token: str, project: str, space: str, datasets: tuple[str, ...], flt: Filter,
             _data: MapData) -> np.ndarray:
    kept = cached_payloads(project, space, datasets, fields=("dataset",), flt=flt)
    return in_index(_data.frame.index, kept.index)


def visible_rows(data: MapData, project: str, space: str, datasets: Sequence[str], flt: Filter) -> np.ndarray:
    """(n,) bool over data.frame's rows: the points `flt` keeps (the store evaluates the filter)."""
    return _visible(data.token, project, space, tuple(datasets), flt, data)


@st.cache_resource(show_spinner="Reading the last analysis…", max_entries=4)
def _analysis(project: str, space: str, datasets: tuple[str, ...], revision: str) -> Any:
    # A resource, not data: a 1M-point result is not unpickled on every rerun (0.15-0.25 s).
    from core.pipeline.analyse import load_analysis

    return load_analysis(get_store(), project, space, list(datasets), cache_dir=_payload_dir())


def cached_analysis(project: str, space: str, datasets: Sequence[str]) -> Any:
    """The persisted AnalysisResult of these datasets (core.pipeline.analyse.load_analysis), or
    None; never computed on a page view: `.stale` says it predates the data (offer a recompute).
    Cached per revision of the space and of the analyses, so a recompute anywhere (page, CLI) shows
    on the next rerun. Shared between reruns and sessions: never mutate it."""
    return _analysis(project, space, tuple(datasets), _analysis_revision(project, space))


def in_index(index: pd.Index, within: pd.Index) -> np.ndarray:
    """(len(index),) bool: which of `index`'s ids are in `within`. Hashed by Arrow: pandas' isin on
    string indexes walks a Python list (1M ids in 1M: 5.5 s; here ~0.4 s)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(index) == 0 or len(within) == 0:
        return np.zeros(len(index), dtype=bool)
    found = pc.is_in(pa.array(index.to_numpy(dtype=object), type=pa.string()),
                     value_set=pa.array(within.to_numpy(dtype=object), type=pa.string()))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


@st.cache_resource(show_spinner=False, max_entries=4)
def _analysis_on_map(token: str, revision: str, _data: MapData, _analysis: Any) -> Any:
    from dataclasses import replace

    scores = _analysis.scores
    if scores.index.equals(_data.frame.index):
        return _analysis
    return replace(_analysis, scores=scores[in_index(scores.index, _data.frame.index)])


def analysis_on_map(data: MapData, analysis: Any, project: str) -> Any:
    """`analysis` (cached_analysis) with only the scores of the points on the map `data`: worked out
    once per map and revision of the analysis's space and of the analyses, not on every rerun (the
    problems panel lists these). Shared between reruns and sessions: never mutate it."""
    if analysis is None:
        return None
    return _analysis_on_map(data.token, _analysis_revision(project, analysis.space), data, analysis)


@st.cache_data(show_spinner="Reading the last comparison…", max_entries=8)
def _compare(project: str, space: str, dataset_a: str, dataset_b: str, revision: str, kind: str) -> Any:
    from core.pipeline.compare import load_compare

    return load_compare(get_store(), project, space, dataset_a, dataset_b, kind)


def cached_compare(project: str, space: str, dataset_a: str, dataset_b: str, kind: str = "item") -> Any:
    """The persisted CompareResult of B against A (sides in their text form) on `kind` points (core.types
    ITEM_KIND / OBJECT_KIND), or None; never computed on a page view (`.stale`: out of date). Cached per
    revision of the space and of the comparisons."""
    from core.pipeline.compare import DOC_KIND

    revision = f"{space_revision(project, space)}/{documents_revision(project, DOC_KIND)}"
    return _compare(project, space, dataset_a, dataset_b, revision, kind)
