"""Every st.cache_* decision of the dashboard: settings, the store, models, and cached computations.

Nothing else in ui/ or pages/ calls st.cache_*. Cached reads take plain hashable arguments plus
the store's revision (VectorStore.revision: a token that changes on every write, payload updates
included, from this process or the CLI): a write changes the key, so nothing ever clears a cache
shared by every session, and a label changed from the CLI shows on the next rerun. Pages read
persisted results here; computing them is an explicit action (Find problems, Recompute).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.config import Settings, load_settings
from core.filters import Filter
from core.store.base import VectorStore
from core.types import SpaceInfo

if TYPE_CHECKING:
    from core.embedders import ModelEmbedder

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


@st.cache_data(show_spinner="Reading payloads…", max_entries=16)
def _payloads(project: str, space: str, datasets: tuple[str, ...], fields: tuple[str, ...] | None,
              flt: Filter | None, revision: str) -> pd.DataFrame:
    full = Filter.datasets(datasets).and_(flt)
    return get_store().payloads(project, space, full or None, list(fields) if fields else None)


def cached_payloads(project: str, space: str, datasets: Sequence[str],
                    fields: Sequence[str] | None = None, flt: Filter | None = None) -> pd.DataFrame:
    """Payloads of the datasets (all datasets when empty) in one space, indexed by point id."""
    return _payloads(project, space, tuple(datasets), tuple(fields) if fields else None, flt,
                     space_revision(project, space))


@st.cache_data(show_spinner="Computing the 2-D map…", max_entries=8)
def _map(project: str, space: str, datasets: tuple[str, ...], method: str,
         params: dict[str, Any] | None, flt: Filter | None, revision: str) -> Any:
    from core.pipeline.maps import get_map
    from core.pipeline.vector_cache import cache_folder

    return get_map(get_store(), project, space, list(datasets), method=method, params=params,
                   flt=flt, cache_dir=cache_folder(get_settings()))


def cached_map(project: str, space: str, datasets: Sequence[str], *, method: str = "umap",
               params: dict[str, Any] | None = None, flt: Filter | None = None) -> Any:
    """core.pipeline.maps.get_map, cached per (arguments, project revision) -> MapResult: a refit
    or new points placed (both rewrite the map document) give a new key."""
    return _map(project, space, tuple(datasets), method, params, flt, project_revision(project))


@st.cache_data(show_spinner="Reading the last analysis…", max_entries=8)
def _analysis(project: str, space: str, datasets: tuple[str, ...], revision: str) -> Any:
    from core.pipeline.analyse import load_analysis

    return load_analysis(get_store(), project, space, list(datasets))


def cached_analysis(project: str, space: str, datasets: Sequence[str]) -> Any:
    """The persisted AnalysisResult of these datasets (core.pipeline.analyse.load_analysis), or
    None; never computed on a page view: `.stale` says it predates the data (offer a recompute).
    Cached per project revision, so a recompute anywhere (page, CLI) shows on the next rerun."""
    return _analysis(project, space, tuple(datasets), project_revision(project))


@st.cache_data(show_spinner="Reading the last comparison…", max_entries=8)
def _compare(project: str, space: str, dataset_a: str, dataset_b: str, revision: str) -> Any:
    from core.pipeline.compare import load_compare

    return load_compare(get_store(), project, space, dataset_a, dataset_b)


def cached_compare(project: str, space: str, dataset_a: str, dataset_b: str) -> Any:
    """The persisted CompareResult of B against A (sides in their text form), or None; never
    computed on a page view (`.stale`: out of date). Cached per project revision."""
    return _compare(project, space, dataset_a, dataset_b, project_revision(project))
