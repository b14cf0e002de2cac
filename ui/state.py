"""Session-state keys and typed getters/setters shared by every page (selection, search examples...)."""

from __future__ import annotations

from typing import Any

import streamlit as st

# Persistent keys (never used as widget keys: Streamlit drops widget state on page switches).
PROJECT = "es.project"
DATASETS = "es.datasets"
SPACE = "es.space"
SELECTION = "es.selection"  # list[str]: point ids selected on the Explore map
DETAIL_ID = "es.detail_id"  # str | None: point id opened in the detail view
SEARCH_POSITIVE = "es.search_positive"  # list[str]: "more like these" example ids
SEARCH_NEGATIVE = "es.search_negative"  # list[str]: "unlike these" example ids
HIGHLIGHT_IDS = "es.highlight_ids"  # list[str]: ids to highlight on the Explore map
HIGHLIGHT_NAME = "es.highlight_name"  # str: what they are, the legend's name for them
SEARCH_RESULTS = "search results"  # the default HIGHLIGHT_NAME (ui.widgets.scatter.HIGHLIGHT)
LAST_INGEST = "es.last_ingest"  # the last IngestReport of the Ingest page (shown after reruns)
URL_READ = "es.url_read"  # bool: the view in the URL was opened (once per session: ui.view_state)
VIEW_PENDING = "es.view_pending"  # core.views.View whose page widgets are set when that page runs
VIEW_COLOUR = "es.view_colour"  # str: a colour from a link, checked against the map's options


def _get(key: str, default: Any) -> Any:
    return st.session_state.get(key, default)


def get_project() -> str | None:
    value = _get(PROJECT, None)
    return str(value) if value is not None else None


def set_project(project: str | None) -> None:
    st.session_state[PROJECT] = project


def get_datasets() -> list[str]:
    return list(_get(DATASETS, []) or [])


def set_datasets(datasets: list[str]) -> None:
    st.session_state[DATASETS] = list(datasets)


def get_space() -> str | None:
    value = _get(SPACE, None)
    return str(value) if value is not None else None


def set_space(space: str | None) -> None:
    st.session_state[SPACE] = space


def get_selection() -> list[str]:
    return list(_get(SELECTION, []) or [])


def set_selection(ids: list[str]) -> None:
    st.session_state[SELECTION] = list(ids)


def get_detail_id() -> str | None:
    value = _get(DETAIL_ID, None)
    return str(value) if value is not None else None


def set_detail_id(point_id: str | None) -> None:
    st.session_state[DETAIL_ID] = point_id


def get_search_positive() -> list[str]:
    return list(_get(SEARCH_POSITIVE, []) or [])


def set_search_positive(ids: list[str]) -> None:
    st.session_state[SEARCH_POSITIVE] = list(dict.fromkeys(ids))


def get_search_negative() -> list[str]:
    return list(_get(SEARCH_NEGATIVE, []) or [])


def set_search_negative(ids: list[str]) -> None:
    st.session_state[SEARCH_NEGATIVE] = list(dict.fromkeys(ids))


def get_highlight_ids() -> list[str]:
    return list(_get(HIGHLIGHT_IDS, []) or [])


def set_highlight_ids(ids: list[str], name: str = SEARCH_RESULTS) -> None:
    st.session_state[HIGHLIGHT_IDS] = list(ids)
    st.session_state[HIGHLIGHT_NAME] = name


def get_highlight_name() -> str:
    return str(_get(HIGHLIGHT_NAME, SEARCH_RESULTS))


def clear_point_state() -> None:
    """Forget ids that belong to the previous project / space (called when the project changes)."""
    for key in (SELECTION, DETAIL_ID, SEARCH_POSITIVE, SEARCH_NEGATIVE, HIGHLIGHT_IDS, VIEW_PENDING):
        st.session_state.pop(key, None)
