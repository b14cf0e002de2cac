"""The review queue's actions on keys (a accept, k keep, l set label, t tag, s skip, b back), as callbacks.

Each action writes through core.curation in the button's callback and moves the queue on, so a
keypress costs one rerun that renders the next item (its payload and neighbours: one read each).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import streamlit as st

from core.auth import Permission
from core.errors import CoreError
from core.types import LABEL
from ui.actor import current_actor
from ui.review_view import Queue, forget
from ui.text import md
from ui.widgets.curation import Scope, label_picker, tag_picker

log = logging.getLogger(__name__)

KEY = "review.act"
NOTE = "review queue"
# key, label, icon: shown on each button and in the page's key legend
KEYS: tuple[tuple[str, str, str], ...] = (
    ("A", "Accept suggestion", ":material/done_all:"), ("K", "Keep label", ":material/task_alt:"),
    ("L", "Set label", ":material/label:"), ("T", "Tag", ":material/sell:"),
    ("S", "Skip", ":material/skip_next:"), ("B", "Back", ":material/undo:"))
BROWSE_KEYS = ("S", "B")  # the keys that write nothing (all a viewer gets)


def _advance(queue: Queue, point_id: str, what: str | None) -> None:
    if what is not None:
        queue.done[point_id] = what
        forget(point_id)  # its payload changed: read it again if the reviewer comes back
    queue.pos = min(queue.pos + 1, len(queue.ids))


def _write(queue: Queue, point_id: str, what: str, action: Callable[[], Any]) -> None:
    try:
        action()
    except CoreError as e:
        log.info("review action refused: %s", e)
        st.toast(md(str(e), limit=300), icon=":material/warning:")
        return
    _advance(queue, point_id, what)


def _accept(sc: Scope, queue: Queue, point_id: str, suggested: str) -> None:
    from core.curation import labels

    _write(queue, point_id, "accepted", lambda: labels.set_labels(
        sc.store, sc.project, [point_id], [suggested], actor=current_actor(), why="finding", note=NOTE))


def _keep(sc: Scope, queue: Queue, point_id: str) -> None:
    from core.curation import tags

    actor = current_actor()
    _write(queue, point_id, "kept", lambda: tags.set_reviewed(sc.store, sc.project, [point_id], True, actor=actor))


def _set_label(sc: Scope, queue: Queue, point_id: str) -> None:
    from core.curation import labels

    label = st.session_state.get(f"{KEY}.label")
    if label is None or not str(label).strip():
        st.toast("Choose a label first.", icon=":material/info:")
        return
    _write(queue, point_id, "relabelled", lambda: labels.set_labels(
        sc.store, sc.project, [point_id], [str(label).strip()], actor=current_actor(), why="manual", note=NOTE))


def _tag(sc: Scope, queue: Queue, point_id: str) -> None:
    from core.curation import tags

    chosen = [str(t).strip() for t in st.session_state.get(f"{KEY}.tags") or [] if str(t).strip()]
    if not chosen:
        st.toast("Choose a tag first.", icon=":material/info:")
        return
    actor = current_actor()
    _write(queue, point_id, "tagged", lambda: tags.add_tags(sc.store, sc.project, [point_id], chosen, actor=actor))


def _skip(queue: Queue, point_id: str) -> None:
    _advance(queue, point_id, None)


def _back(queue: Queue) -> None:
    queue.pos = max(queue.pos - 1, 0)


def may_write() -> bool:
    """Whether the current actor may accept, keep, relabel and tag (a viewer only browses the queue)."""
    actor = current_actor()
    return actor.can(Permission.RELABEL) and actor.can(Permission.TAG)


def legend_keys() -> tuple[tuple[str, str, str], ...]:
    """The keys this actor has (a viewer: skip and back only)."""
    return KEYS if may_write() else tuple(k for k in KEYS if k[0] in BROWSE_KEYS)


def _browse_buttons(queue: Queue, point_id: str) -> None:
    st.button("Skip", key=f"{KEY}.skip", shortcut="S", icon=":material/skip_next:",
              on_click=_skip, args=(queue, point_id), help="Next item, no change")
    st.button("Back", key=f"{KEY}.back", shortcut="B", icon=":material/undo:", disabled=queue.pos == 0,
              on_click=_back, args=(queue,), help="The previous item")


def action_bar(sc: Scope, queue: Queue, point_id: str, payload: dict[str, Any], suggested: str | None) -> None:
    """The six actions as buttons with keyboard shortcuts; the label and tag pickers beside them.
    A viewer gets skip and back only (no writing button, so no writing shortcut) and a "View only" caption."""
    if not may_write():
        st.caption(":material/visibility: View only: accepting, keeping, relabelling and tagging need the "
                   "editor role.")
        with st.container(horizontal=True, gap="small"):
            _browse_buttons(queue, point_id)
        return
    can_accept = suggested is not None and str(suggested) != str(payload.get(LABEL))
    with st.container(horizontal=True, gap="small"):
        st.button(f"Accept {md(suggested)}" if can_accept else "Accept suggestion", key=f"{KEY}.accept",
                  shortcut="A", type="primary", icon=":material/done_all:", disabled=not can_accept,
                  on_click=_accept, args=(sc, queue, point_id, str(suggested)),
                  help="Set the label to the suggested one (a finding, in the history)")
        st.button("Keep label", key=f"{KEY}.keep", shortcut="K", icon=":material/task_alt:",
                  on_click=_keep, args=(sc, queue, point_id), help="The label is right: mark the item reviewed")
        _browse_buttons(queue, point_id)
    left, right = st.columns(2, vertical_alignment="bottom")
    with left:
        label_picker(sc, KEY, "Another label")
        st.button("Set label", key=f"{KEY}.set", shortcut="L", icon=":material/label:",
                  on_click=_set_label, args=(sc, queue, point_id))
    with right:
        tag_picker(sc, KEY, "Tags to add")
        st.button("Tag", key=f"{KEY}.tag", shortcut="T", icon=":material/sell:",
                  on_click=_tag, args=(sc, queue, point_id))
