"""Every st.cache_* decision of the dashboard: settings, the store, models, and cached computations.

Nothing else in ui/ or pages/ calls st.cache_*. Cached computations take plain hashable
arguments plus a `fingerprint` of the data (point counts per dataset and space), so a CLI
ingest into the same store invalidates them without anyone calling clear().
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

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
    return embedder_for_space(space_info, device=settings.device, batch_size=settings.batch_size)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def get_model(model: str, modality: str = "auto") -> ModelEmbedder:
    """A model by hub name or local directory (the Ingest page's choice), loaded once per process."""
    from core.embedders import load_embedder

    settings = get_settings()
    return load_embedder(model, modality, device=settings.device,  # type: ignore[arg-type]
                         batch_size=settings.batch_size)


def data_fingerprint(project: str) -> tuple[tuple[str, str, int], ...]:
    """(dataset, space, count) for every dataset of the project: changes whenever points are added
    or removed, so it keys the cached computations below."""
    infos = get_store().list_datasets(project)
    return tuple(sorted((d.name, s, n) for d in infos for s, n in d.counts.items()))


@st.cache_data(show_spinner="Reading payloads…", max_entries=16)
def _payloads(project: str, space: str, datasets: tuple[str, ...], fields: tuple[str, ...] | None,
              flt: Filter | None, fingerprint: Any) -> pd.DataFrame:
    full = Filter.datasets(datasets).and_(flt)
    return get_store().payloads(project, space, full or None, list(fields) if fields else None)


def cached_payloads(project: str, space: str, datasets: Sequence[str],
                    fields: Sequence[str] | None = None, flt: Filter | None = None) -> pd.DataFrame:
    """Payloads of the datasets (all datasets when empty) in one space, indexed by point id."""
    return _payloads(project, space, tuple(datasets), tuple(fields) if fields else None, flt,
                     data_fingerprint(project))


@st.cache_data(show_spinner="Computing the 2-D map…", max_entries=8)
def _map(project: str, space: str, datasets: tuple[str, ...], method: str,
         params: dict[str, Any] | None, flt: Filter | None, fingerprint: Any) -> Any:
    from core.pipeline.maps import get_map

    return get_map(get_store(), project, space, list(datasets), method=method, params=params,
                   flt=flt)


def cached_map(project: str, space: str, datasets: Sequence[str], *, method: str = "umap",
               params: dict[str, Any] | None = None, flt: Filter | None = None) -> Any:
    """core.pipeline.maps.get_map, cached per (arguments, data fingerprint) -> MapResult."""
    return _map(project, space, tuple(datasets), method, params, flt, data_fingerprint(project))


@st.cache_data(show_spinner="Analysing the embeddings…", max_entries=8)
def _analysis(project: str, space: str, datasets: tuple[str, ...],
              params: dict[str, Any] | None, fingerprint: Any) -> Any:
    from core.pipeline.analyse import run_analysis

    return run_analysis(get_store(), project, space, list(datasets), params=params)


def cached_analysis(project: str, space: str, datasets: Sequence[str],
                    params: dict[str, Any] | None = None) -> Any:
    """core.pipeline.analyse.run_analysis, cached per (arguments, data fingerprint) -> AnalysisResult."""
    return _analysis(project, space, tuple(datasets), params, data_fingerprint(project))


@st.cache_data(show_spinner="Comparing datasets…", max_entries=8)
def _compare(project: str, space: str, dataset_a: str, dataset_b: str,
             kwargs: dict[str, Any], fingerprint: Any) -> Any:
    from core.pipeline.compare import run_compare

    return run_compare(get_store(), project, space, dataset_a, dataset_b, **kwargs)


def cached_compare(project: str, space: str, dataset_a: str, dataset_b: str,
                   **kwargs: Any) -> Any:
    """core.pipeline.compare.run_compare, cached per (arguments, data fingerprint) -> CompareResult."""
    return _compare(project, space, dataset_a, dataset_b, kwargs, data_fingerprint(project))


def invalidate_data() -> None:
    """Drop every cached computation (after the dashboard itself changed payloads or points)."""
    st.cache_data.clear()
