"""The view in the URL and saved views: read the link once per session, keep the URL in step with
the page, and the sidebar's "Saved views" (core.views holds the encoding and the documents)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core import views
from core.errors import CoreError
from core.filters import Filter
from core.store.base import VectorStore
from core.types import CONFIDENCE, ITEM_KIND, LABEL, MATCH, META, OBJECT_KIND, REVIEWED, SOURCE, TAGS
from core.views import View
from ui import state
from ui.actor import current_actor
from ui.text import md

log = logging.getLogger(__name__)

EXPLORE_PAGE = "pages/2_Explore.py"
COLOUR_KEY = "explore.colour"  # pages/2_Explore.py's widget keys
POINTS_KEY = "explore.points"  # its images | objects switch (ui.objects_view.POINTS_KEY)
FILTER_KEY = "explore.flt"  # ui.widgets.filters.payload_filter_widgets(key=...) on Explore
FACET_FIELDS = ("dataset", LABEL, "prediction", "split", TAGS)  # the multiselects of ui.widgets.filters
OBJECT_FACETS = (SOURCE, MATCH)  # ... and those of the objects view (its ranges: views.RANGE_FIELDS)
ITEM_PAGES = (EXPLORE_PAGE,)  # pages that open state.DETAIL_ID
# Pages that call sync_url themselves after their main content: Explore's filters need the payload
# facets, which must not be read before its map preview is drawn.
SYNCED_BY_PAGE = (EXPLORE_PAGE,)
NOTICE_ICON = ":material/link_off:"
MAX_NOTICES = 3


def _notify(notices: Sequence[str]) -> None:
    for notice in list(notices)[:MAX_NOTICES]:
        st.toast(md(notice, limit=300), icon=NOTICE_ICON)


def _url_params() -> dict[str, list[str]]:
    return {name: st.query_params.get_all(name) for name in st.query_params}


def _checked(store: VectorStore, projects: Sequence[str], view: View) -> tuple[View, list[str]]:
    """The view with what does not exist in this store left out (project, space, datasets, item)."""
    if view.project is None:  # colour / filters alone: for the project the sidebar opens with
        return View(colour=view.colour, filters=view.filters, unlabeled=view.unlabeled,
                    confidence=view.confidence, page=view.page, points=view.points, ranges=view.ranges), []
    if view.project not in projects:
        return View(), [f"The project {view.project!r} of this link does not exist here; showing the default."]
    notices: list[str] = []
    space = view.space
    if space is not None and space not in {s.name for s in store.list_spaces(view.project)}:
        notices.append(f"The space {space!r} does not exist in {view.project!r}; showing the default.")
        space = None
    names = {d.name for d in store.list_datasets(view.project)}
    datasets = tuple(d for d in view.datasets if d in names)
    if len(datasets) < len(view.datasets):
        notices.append(f"Left out unknown dataset(s): {', '.join(repr(d) for d in view.datasets if d not in names)}.")
    item = view.item
    if item is not None and (space is None or not store.count(view.project, space, Filter.ids([item]))):
        notices.append("The item opened in this link no longer exists.")
        item = None
    return View(view.project, space, datasets, view.colour, view.filters, view.unlabeled, view.confidence,
                item, view.page, points=view.points, ranges=view.ranges), notices


def _apply(store: VectorStore, projects: Sequence[str], view: View) -> list[str]:
    """Put the view's project / space / datasets / item into the persistent session keys, and keep
    its page widgets' values (colour, filters) pending until that page runs (apply_pending)."""
    view, notices = _checked(store, projects, view)
    if view.project is None:
        if view != View():
            st.session_state[state.VIEW_PENDING] = view
        return notices
    if view.project != state.get_project():
        state.clear_point_state()
    state.set_project(view.project)
    state.set_space(view.space)
    state.set_datasets(list(view.datasets))
    state.set_detail_id(view.item)
    st.session_state[state.VIEW_PENDING] = view
    return notices


def read_url_once(store: VectorStore, projects: Sequence[str]) -> None:
    """Open the view in the URL, once per session (a later rerun must not undo the user's changes);
    before the sidebar's widgets are built. Unknown values fall back to defaults with a toast."""
    if st.session_state.get(state.URL_READ):
        return
    st.session_state[state.URL_READ] = True
    params = _url_params()
    if not params:
        return
    view, notices = views.decode(params)
    try:
        notices += _apply(store, projects, view)
    except CoreError as e:  # the store failed while checking: the page's own open shows why
        log.warning("cannot open the view of the link: %s", e)
    _notify(notices)


def _objects_shown(project: str, space: str, datasets: Sequence[str], points: Any) -> bool:
    """Whether Explore shows the objects map (as ui.objects_view.points_switch decides): the datasets have
    objects in the space, and the switch says objects or the space holds objects only (ROI vectors)."""
    from ui import resources

    if not resources.object_count(project, space, datasets):
        return False
    return points == views.POINTS_VIEWS[1] or resources.item_count(project, space, datasets) == 0


def _view_facets(project: str, space: str, datasets: Sequence[str], objects: bool) -> dict[str, list[Any]]:
    """The facets Explore's filter widgets are built from in this view (objects' or images' fields)."""
    from ui import resources

    return resources.payload_facets(project, space, datasets, kind=OBJECT_KIND if objects else ITEM_KIND)


def _filter_keys(facets: dict[str, list[Any]]) -> list[str]:
    keys = [f"{FILTER_KEY}.{f}" for f in (*FACET_FIELDS, *OBJECT_FACETS, *views.RANGE_FIELDS)]
    keys += [f"{FILTER_KEY}.{s}" for s in ("unlabeled", REVIEWED, "meta_field", "confidence")]
    return keys + [f"{FILTER_KEY}.meta_values.{f}" for f in facets if f.startswith(f"{META}.")]


def apply_pending(project: str | None, space: str | None, datasets: Sequence[str], page: str | None) -> None:
    """Set Explore's colour and filter widgets from a pending view (a link or a saved view), before
    the page builds them; filter values that do not exist here are left out with a toast."""
    view = st.session_state.get(state.VIEW_PENDING)
    if page != EXPLORE_PAGE or not isinstance(view, View) or project is None or space is None or not datasets:
        return
    del st.session_state[state.VIEW_PENDING]
    # Before the switch is drawn; set directly (not through its on_change) so the opened item stays.
    st.session_state[POINTS_KEY] = view.points or views.POINTS_VIEWS[0]
    objects = _objects_shown(project, space, datasets, view.points)
    facets = _view_facets(project, space, datasets, objects)
    chosen, notices = views.resolve_filters(view, facets)
    for key in _filter_keys(facets):
        st.session_state.pop(key, None)  # the previous view's filters (a saved view opened later)
    for field in (*FACET_FIELDS, *(OBJECT_FACETS if objects else ())):
        st.session_state[f"{FILTER_KEY}.{field}"] = chosen.get(field, [])
    notices += _apply_ranges(view, facets)
    st.session_state[f"{FILTER_KEY}.unlabeled"] = view.unlabeled
    if chosen.get(REVIEWED):
        st.session_state[f"{FILTER_KEY}.{REVIEWED}"] = chosen[REVIEWED][0]
    meta = next((f for f in chosen if f.startswith(f"{META}.")), None)
    st.session_state[f"{FILTER_KEY}.meta_field"] = meta or "(none)"
    if meta is not None:
        st.session_state[f"{FILTER_KEY}.meta_values.{meta}"] = chosen[meta]
    confidence = views.clamp_confidence(view, facets.get(CONFIDENCE))
    if confidence is not None:
        st.session_state[f"{FILTER_KEY}.confidence"] = confidence
    if view.colour:
        st.session_state[COLOUR_KEY] = view.colour
        st.session_state[state.VIEW_COLOUR] = view.colour  # checked against the options by check_colour
    else:
        st.session_state.pop(COLOUR_KEY, None)
    _notify(notices)


def _apply_ranges(view: View, facets: dict[str, list[Any]]) -> list[str]:
    """Set the objects view's range sliders (box area, IoU) from the view, inside the data's bounds;
    notices for a field these points do not have, or a range outside its values."""
    notices: list[str] = []
    for field, wanted in view.ranges:
        clamped = views.clamp_range(wanted, facets.get(field))
        if field not in facets:
            notices.append(f"Ignored the filter on {field!r}: no such field here.")
        elif clamped is None:
            notices.append(f"Ignored the {field} range {wanted[0]:g}{views.RANGE_SEP}{wanted[1]:g}: "
                           "no values in it here.")
        else:
            st.session_state[f"{FILTER_KEY}.{field}"] = clamped
    return notices


def check_colour(options: Sequence[str]) -> None:
    """Called by Explore before its colour menu: a colour from a link that this map cannot show
    falls back to the default with a toast."""
    wanted = st.session_state.pop(state.VIEW_COLOUR, None)
    if wanted is not None and wanted not in options:
        st.session_state.pop(COLOUR_KEY, None)
        _notify([f"The map cannot be coloured by {wanted!r} here; showing the default colour."])


def _explore_part(project: str, space: str, datasets: Sequence[str]) -> dict[str, Any]:
    """Explore's colour and filters as View fields, from its widgets' session values."""
    get = st.session_state.get
    objects = _objects_shown(project, space, datasets, get(POINTS_KEY))
    filters: list[tuple[str, tuple[str, ...]]] = [
        (f, tuple(str(v) for v in get(f"{FILTER_KEY}.{f}") or ()))
        for f in (*FACET_FIELDS, *(OBJECT_FACETS if objects else ()))]
    if get(f"{FILTER_KEY}.{REVIEWED}") in views.REVIEW_VALUES:
        filters.append((REVIEWED, (str(get(f"{FILTER_KEY}.{REVIEWED}")),)))
    meta = get(f"{FILTER_KEY}.meta_field")
    if isinstance(meta, str) and meta.startswith(f"{META}."):
        filters.append((meta, tuple(str(v) for v in get(f"{FILTER_KEY}.meta_values.{meta}") or ())))
    ranged = (CONFIDENCE, *(views.RANGE_FIELDS if objects else ()))
    facets = _view_facets(project, space, datasets, objects) \
        if any(isinstance(get(f"{FILTER_KEY}.{f}"), (tuple, list)) for f in ranged) else {}
    moved = {f: r for f in ranged if (r := _moved(get(f"{FILTER_KEY}.{f}"), facets.get(f))) is not None}
    colour = get(COLOUR_KEY)
    points = get(POINTS_KEY) if get(POINTS_KEY) in views.POINTS_VIEWS[1:] else None
    return {"colour": colour if isinstance(colour, str) else None, "confidence": moved.pop(CONFIDENCE, None),
            "points": points, "ranges": tuple(moved.items()),
            "filters": tuple((f, v) for f, v in filters if v), "unlabeled": bool(get(f"{FILTER_KEY}.unlabeled"))}


def _moved(value: Any, bounds: Sequence[Any] | None) -> tuple[float, float] | None:
    """A range slider's (low, high) when it is narrower than the data's [min, max] (None: at its bounds,
    or no slider value)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return None
    chosen = (float(value[0]), float(value[1]))
    return None if bounds and tuple(map(float, bounds)) == chosen else chosen


def current_view(project: str | None, space: str | None, datasets: Sequence[str], page: str | None) -> View:
    """The view on screen: the sidebar's choices, and on Explore its colour, filters and opened item."""
    if project is None:
        return View(page=page)
    extra: dict[str, Any] = {}
    if page == EXPLORE_PAGE and space is not None and not isinstance(st.session_state.get(state.VIEW_PENDING), View):
        extra = _explore_part(project, space, datasets)
    item = state.get_detail_id() if page in ITEM_PAGES else None
    return View(project=project, space=space, datasets=tuple(datasets), item=item, page=page, **extra)


def sync_url(project: str | None, space: str | None, datasets: Sequence[str], page: str | None) -> None:
    """Write the view into the URL when it differs from what is there (one small message to the
    browser; nothing when unchanged)."""
    if not st.session_state.get(state.URL_READ):
        return  # the link has not been read yet: never overwrite it
    wanted = views.encode(current_view(project, space, datasets, page))
    if wanted != _url_params():
        st.query_params.from_dict(wanted)


def _open_saved(store: VectorStore, project: str, name: str, page: str | None) -> None:
    try:
        view = views.load_view(store, project, name)
        notices = _apply(store, store.list_projects(), view)
    except CoreError as e:
        st.sidebar.error(md(str(e)), icon=":material/warning:")
        return
    _notify(notices)
    if view.page and view.page != page:
        try:
            st.switch_page(view.page)
        except StreamlitAPIException as e:  # that page is not part of this app run (AppTest)
            log.info("cannot switch to %s: %s", view.page, e)
    st.rerun()


def saved_views_panel(store: VectorStore, project: str | None, space: str | None, datasets: Sequence[str],
                      page: str | None) -> None:
    """The sidebar's "Saved views": save the current view under a name, reopen or delete one."""
    if project is None:
        return
    with st.sidebar.expander("Saved views", icon=":material/bookmarks:"):
        name = st.text_input("View name", key="_w.view_name", placeholder="e.g. low-confidence cats")
        if st.button("Save view", key="_w.view_save", disabled=not name.strip(), icon=":material/bookmark_add:"):
            try:
                saved = views.save_view(store, project, name, current_view(project, space, datasets, page),
                                        actor=current_actor())
                st.success(f"Saved the view “{md(saved)}”.")
            except CoreError as e:
                st.error(md(str(e)), icon=":material/warning:")
        from ui import resources  # imported here, as in this module's other functions

        for i, saved_name in enumerate(resources.document_keys(project, views.KIND)):  # views.list_views, cached
            left, right = st.columns([4, 1], vertical_alignment="center")
            if left.button(md(saved_name), key=f"_w.view_open.{i}", width="stretch",
                           help="Reopen this view"):
                _open_saved(store, project, saved_name, page)
            if right.button("", key=f"_w.view_delete.{i}", icon=":material/delete:", help="Delete this view"):
                try:
                    views.delete_view(store, project, saved_name, actor=current_actor())
                except CoreError as e:
                    st.error(md(str(e)), icon=":material/warning:")
                    return
                st.rerun()
