"""Curation actions on a set of points (tags, a label, the reviewed flag, suggested labels), one call each."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.auth import Permission
from core.display import shorten
from core.errors import CoreError
from core.store.base import VectorStore
from core.types import LABEL, REVIEWED, TAGS
from ui import resources, state
from ui.actor import current_actor
from ui.page import PageContext
from ui.text import md

log = logging.getLogger(__name__)

Ids = Sequence[str] | Callable[[], Sequence[str]]  # a callable: ids made on click only (a 350k lasso)


@dataclass(frozen=True)
class Scope:
    """Where an action writes: the store, the sidebar's project, space and datasets."""

    store: VectorStore
    project: str
    space: str
    datasets: tuple[str, ...]


def scope(ctx: PageContext | None = None) -> Scope | None:
    """The page's scope (ctx), else the sidebar's persisted choices; None before a project exists."""
    if ctx is not None:
        if ctx.project is None or ctx.space is None:
            return None
        return Scope(ctx.store, ctx.project, ctx.space, tuple(ctx.datasets))
    project, space = state.get_project(), state.get_space()
    if project is None or space is None:
        return None
    return Scope(resources.get_store(), project, space, tuple(state.get_datasets()))


def known_values(sc: Scope, field: str) -> list[str]:
    """The distinct values of `field` (TAGS, LABEL) in the scope's datasets, from the cached facets."""
    if not sc.datasets:
        return []
    values = resources.payload_facets(sc.project, sc.space, list(sc.datasets)).get(field) or []
    return [str(v) for v in values]


def _ids(ids: Ids) -> list[str]:
    return [str(i) for i in (ids() if callable(ids) else ids)]


def flash(message: str) -> None:
    st.toast(md(message, limit=300), icon=":material/check_circle:")


def run_action(action: Callable[[], str | None]) -> None:
    """Run a write in a widget callback: a toast says what changed, a CoreError says why not. The
    write changes the store's revision, so every cached read shows the change on this rerun."""
    try:
        message = action()
    except CoreError as e:
        log.info("curation action refused: %s", e)
        st.toast(md(str(e), limit=300), icon=":material/warning:")
        return
    if message:
        flash(message)


def _on_tags(sc: Scope, ids: Ids, key: str, add: bool) -> None:
    from core.curation import tags

    chosen = [t.strip() for t in st.session_state.get(f"{key}.tags") or [] if str(t).strip()]
    if not chosen:
        return
    points = _ids(ids)
    fn = tags.add_tags if add else tags.remove_tags
    actor = current_actor()
    run_action(lambda: f"{'Tagged' if add else 'Untagged'} {fn(sc.store, sc.project, points, chosen, actor=actor):,} "
                 f"item(s): {', '.join(chosen)}")
    st.session_state[f"{key}.tags"] = []


def _on_label(sc: Scope, ids: Ids, key: str) -> None:
    from core.curation import labels

    label = st.session_state.get(f"{key}.label")
    if label is None or not str(label).strip():
        return
    points = _ids(ids)

    def act() -> str:
        entry = labels.set_labels(sc.store, sc.project, points, [str(label).strip()] * len(points),
                                  actor=current_actor(), why="manual")
        return "Nothing changed." if entry is None else f"Label set on {len(entry.rows):,} item(s)."
    run_action(act)


def _on_reviewed(sc: Scope, ids: Ids, reviewed: bool) -> None:
    from core.curation import tags

    points = _ids(ids)
    actor = current_actor()
    run_action(lambda: f"{tags.set_reviewed(sc.store, sc.project, points, reviewed, actor=actor):,} item(s) marked "
                 f"{'reviewed' if reviewed else 'not reviewed'}.")


def tag_picker(sc: Scope, key: str, label: str = "Tags") -> None:
    """A multiselect of the existing tags that also takes new ones (typed), value in f"{key}.tags"."""
    st.multiselect(label, known_values(sc, TAGS), key=f"{key}.tags", accept_new_options=True,
                   placeholder="Choose or type a tag", format_func=shorten)


def label_picker(sc: Scope, key: str, label: str = "Label") -> None:
    """A selectbox of the existing classes that also takes a new one, value in f"{key}.label"."""
    st.selectbox(label, known_values(sc, LABEL), key=f"{key}.label", index=None, accept_new_options=True,
                 placeholder="Choose or type a class", format_func=shorten)


def curation_actions(ctx: PageContext | None, ids: Ids, *, key: str, count: int | None = None) -> None:
    """Tag / untag, set the label, mark (not) reviewed: one row of popovers acting on `ids`.

    ids: the point ids, or a function giving them (called on click only). count: how many, for
    the labels (len(ids) when ids is a list).
    """
    sc = scope(ctx)
    if sc is None:
        return
    if not current_actor().can(Permission.TAG):  # a viewer: no buttons that core would refuse
        st.caption(":material/visibility: View only: tagging and relabeling need the editor role.")
        return
    n = count if count is not None else (None if callable(ids) else len(ids))
    what = "item" if n == 1 else (f"{n:,} items" if n is not None else "these items")
    with st.container(horizontal=True, gap="small"):
        with st.popover("Tag", icon=":material/sell:", help=f"Add or remove tags on {what}"):
            tag_picker(sc, key)
            with st.container(horizontal=True, gap="small"):
                st.button("Add", key=f"{key}.add", type="primary",
                          on_click=_on_tags, args=(sc, ids, key, True))
                st.button("Remove", key=f"{key}.remove", on_click=_on_tags, args=(sc, ids, key, False))
        with st.popover("Label", icon=":material/label:", help=f"Set the label of {what}"):
            label_picker(sc, key)
            st.button("Set label", key=f"{key}.set", type="primary", on_click=_on_label, args=(sc, ids, key))
        st.button("Reviewed", key=f"{key}.reviewed", icon=":material/task_alt:",
                  help=f"Mark {what} as reviewed", on_click=_on_reviewed, args=(sc, ids, True))


def item_state(payload: Mapping[str, Any] | None) -> None:
    """One item's tags and reviewed flag, as a caption."""
    if not payload:
        return
    from core.curation.points import missing, tag_list

    tags = tag_list(payload.get(TAGS))
    reviewed = not missing(payload.get(REVIEWED)) and bool(payload.get(REVIEWED))
    parts = [f"tags: {', '.join(md(t) for t in tags)}" if tags else "no tags",
             ":material/task_alt: reviewed" if reviewed else "not reviewed"]
    st.caption(" · ".join(parts))


def item_actions(ctx: PageContext | None, point_id: str, payload: Mapping[str, Any] | None, *, key: str) -> None:
    """The opened item's curation: its tags and reviewed flag, "Accept <suggested label>" when the
    analysis suggests another class, and the tag / label / reviewed actions."""
    from ui.widgets.suggestions import accept_button

    item_state(payload)
    with st.container(horizontal=True, gap="small"):
        if payload is not None:
            accept_button(ctx, point_id, payload.get(LABEL), payload.get("suggested_label"), key=key)
        curation_actions(ctx, [point_id], key=key, count=1)


def finding_actions(ctx: PageContext | None, points: Sequence[str], *, key: str, mislabels: bool = False) -> None:
    """Act on a finding list: tag / label / mark reviewed all its items; for likely mislabels also
    accept their suggested labels (a preview first)."""
    if not points:
        return
    st.caption(f"All {len(points):,} of this list:")
    curation_actions(ctx, list(points), key=f"{key}.all", count=len(points))
    if mislabels:
        from ui.widgets.suggestions import suggestion_panel

        suggestion_panel(ctx, points, key=f"{key}.suggest")
