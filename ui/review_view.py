"""The review queue: a ranked list of items (mislabels, outliers, an error cluster, a collection, a tag, the
Explore selection) stepped through one at a time, with actions on keys.

A step reads one payload and one neighbour query (cached per item in the session); the queue, the
scores of its items and the class list are read once when it starts, so a keypress is a fast rerun.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.display import shorten
from core.filters import Condition, Filter
from core.types import KEY, LABEL, PREDICTION, REVIEWED, TAGS, TEXT, URI, Hit
from ui import images, state
from ui.text import md
from ui.widgets.curation import Scope, known_values
from ui.widgets.grid import caption

log = logging.getLogger(__name__)

QUEUE = "review.queue"  # session key: the Queue being reviewed
NEIGHBOURS = "review.nn"  # session key: {point id: (payload, hits)} read once per item
NEIGHBOURS_K = 8
IMAGE_PX = 360  # the item's image width on screen
MAX_QUEUE = 1_000
TOP_RANKED = 100  # a finder's queue when nothing passed its cut-off: the top of its ranking
SOURCES = ("Likely mislabels", "Likely outliers", "Error cluster", "Collection", "Tag", "Explore selection")
SCORE_COLUMNS = ("mislabel", "suggested_label", "outlier", "likely_mislabel", "likely_outlier", "cluster",
                 "is_error")
EXPLAIN = {
    "suggested_label": "the class its neighbours, a probe trained without it and the model agree on",
    "mislabel": "1 − the estimated probability that the label is right (0 = all evidence agrees, 1 = none does)",
    "outlier": "how far it sits from its nearest neighbours compared with typical items (about 1 = typical)",
    "prediction": "what the model predicted",
    "cluster": "the group of similar items it belongs to (-1 = none)",
    "is_error": "whether the model's prediction differs from the label",
}


@dataclass
class Queue:
    """A review in progress: the ranked ids, where the reviewer is, what was done to each item."""

    source: str
    ids: list[str]
    scores: pd.DataFrame  # analysis columns of the queued ids (may be empty)
    pos: int = 0
    done: dict[str, str] = field(default_factory=dict)  # point id -> "accepted" / "kept" / ...

    @property
    def current(self) -> str | None:
        return self.ids[self.pos] if 0 <= self.pos < len(self.ids) else None


def get_queue() -> Queue | None:
    queue = st.session_state.get(QUEUE)
    return queue if isinstance(queue, Queue) else None


def _ranked(scores: pd.DataFrame, column: str, flag: str | None) -> list[str]:
    """Ids by `column`, highest first; only those with the `flag` column set when flag is given."""
    if column not in scores.columns:
        return []
    rows = scores[scores[flag].fillna(False).astype(bool)] if flag and flag in scores.columns else scores
    values = pd.to_numeric(rows[column], errors="coerce").dropna().sort_values(ascending=False, kind="stable")
    return values.index.astype(str).tolist()


def _finding(scores: pd.DataFrame, source: str, column: str, flag: str) -> tuple[str, Callable[[], list[str]]]:
    """The flagged items of a finder, or its top TOP_RANKED by score: when none passed the cut-off,
    or when the reviewer asks to go on past it (the cut-off is an estimate; the next items of the
    ranking are the next most likely)."""
    flagged = _ranked(scores, column, flag)
    if flagged:
        past = st.checkbox(f"Continue past the cut-off: the top {TOP_RANKED} by {column} score",
                           key=f"review.past.{column}",
                           help=f"{len(flagged):,} passed the cut-off; the items after them rank next.")
        if not past:
            return source, lambda: flagged
    else:
        st.caption(f"None passed the cut-off: the queue is the top {TOP_RANKED} by {column} score.")
    return f"top {TOP_RANKED} by {column} score", lambda: _ranked(scores, column, None)[:TOP_RANKED]


def _cluster_ids(scores: pd.DataFrame, cluster: int) -> list[str]:
    members = scores[scores["cluster"] == cluster]
    errors = members["is_error"].fillna(False).astype(bool) if "is_error" in members.columns else False
    # The model's errors first: they are what made the cluster stand out.
    return members.assign(_e=errors).sort_values("_e", ascending=False, kind="stable").index.astype(str).tolist()


def _tagged(sc: Scope, tag: str) -> list[str]:
    flt = Filter(must=(Condition(TAGS, equals=tag),)).and_(Filter.datasets(sc.datasets))
    return sc.store.payloads(sc.project, sc.space, flt, fields=[KEY]).index.astype(str).tolist()


def _unreviewed(sc: Scope, ids: list[str]) -> list[str]:
    """ids without the corrected ones (core.curation.corrected: marked reviewed, or relabeled since
    the original label), so an accepted suggestion or a set label also leaves the queue."""
    if not ids:
        return ids
    from core.curation.corrected import corrected_mask, corrected_payloads

    frame = corrected_payloads(sc.store, sc.project, ids)
    mask = corrected_mask(frame)
    done = set(frame.index[mask.to_numpy()])
    return [i for i in ids if i not in done]


def source_picker(sc: Scope, analysis: Any) -> tuple[str, Callable[[], list[str]]] | None:
    """The source widgets; (description, a function giving the ranked ids) or None when not ready."""
    source = st.selectbox("Review", SOURCES, key="review.source")
    scores = analysis.scores if analysis is not None else pd.DataFrame()
    if source in ("Likely mislabels", "Likely outliers", "Error cluster") and analysis is None:
        st.info("Press **Find problems** on Explore first: this list comes from the persisted analysis.")
        return None
    if source == "Likely mislabels":
        return _finding(scores, source, "mislabel", "likely_mislabel")
    if source == "Likely outliers":
        return _finding(scores, source, "outlier", "likely_outlier")
    if source == "Error cluster":
        table = analysis.error_clusters
        if table is None or table.empty:
            st.caption("No error clusters in the last analysis.")
            return None
        cluster = st.selectbox("Cluster", [int(c) for c in table["cluster"]], key="review.cluster")
        return f"error cluster {cluster}", lambda: _cluster_ids(scores, int(cluster))
    if source == "Collection":
        from core import collections

        names = [c.name for c in collections.list_collections(sc.store, sc.project)]
        name = st.selectbox("Collection", names, key="review.collection", format_func=shorten)
        if name is None:
            st.caption("No collections yet.")
            return None
        return f"collection {name}", lambda: list(collections.get(sc.store, sc.project, name, with_items=False).ids)
    if source == "Tag":
        tag = st.selectbox("Tag", known_values(sc, TAGS), key="review.tag", format_func=shorten)
        if tag is None:
            st.caption("No tags yet: tag items on Explore first.")
            return None
        return f"tag {tag}", lambda: _tagged(sc, str(tag))
    selection = state.get_selection()
    if not selection:
        st.caption("Nothing is selected on the Explore map.")
        return None
    return "the Explore selection", lambda: list(selection)


def start_queue(sc: Scope, source: str, ids: list[str], analysis: Any, *, skip_reviewed: bool) -> Queue:
    """A new queue of at most MAX_QUEUE ids, with the analysis columns of those ids kept aside."""
    ids = list(dict.fromkeys(ids))
    if skip_reviewed:
        ids = _unreviewed(sc, ids)
    ids = ids[:MAX_QUEUE]
    scores = pd.DataFrame()
    if analysis is not None:
        table = analysis.scores
        cols = [c for c in SCORE_COLUMNS if c in table.columns]
        scores = table.loc[table.index.intersection(ids), cols].copy()
    queue = Queue(source, ids, scores)
    st.session_state[QUEUE] = queue
    st.session_state[NEIGHBOURS] = {}
    return queue


def item_view(sc: Scope, point_id: str) -> tuple[dict[str, Any] | None, list[Hit]]:
    """(payload, nearest neighbours) of one item, read once per item in this session."""
    memo: dict[str, tuple[dict[str, Any] | None, list[Hit]]] = st.session_state.setdefault(NEIGHBOURS, {})
    if point_id not in memo:
        ids, vectors = sc.store.vectors(sc.project, sc.space, ids=[point_id])
        if not ids:
            memo[point_id] = (None, [])
        else:
            flt = Filter.datasets(sc.datasets) or None
            hits = sc.store.query(sc.project, sc.space, vectors[0], limit=NEIGHBOURS_K + 1, flt=flt)
            own = next((h.payload for h in hits if h.id == point_id), None)
            if own is None:  # outside the sidebar's datasets: its payload directly
                frame = sc.store.payloads(sc.project, sc.space, Filter.ids([point_id]))
                own = frame.iloc[0].dropna().to_dict() if len(frame) else None
            memo[point_id] = (own, [h for h in hits if h.id != point_id][:NEIGHBOURS_K])
    return memo[point_id]


def forget(point_id: str) -> None:
    """Drop one item's memo (its payload changed)."""
    st.session_state.setdefault(NEIGHBOURS, {}).pop(point_id, None)


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return shorten(value, 60)


def facts(payload: dict[str, Any], scores: pd.Series | None) -> list[tuple[str, str, str]]:
    """(name, value, one-line explanation) of the item: label, suggestion, prediction, scores."""
    out: list[tuple[str, str, str]] = [(LABEL, _fmt(payload.get(LABEL)) if payload.get(LABEL) is not None
                                        else "(none)", "its label in the store now")]
    if payload.get("original_label") is not None and payload.get("original_label") != payload.get(LABEL):
        out.append(("original label", _fmt(payload.get("original_label")), "the label before the first change"))
    if payload.get(PREDICTION) is not None:
        out.append((PREDICTION, _fmt(payload.get(PREDICTION)), EXPLAIN["prediction"]))
    if scores is not None:
        for name in ("suggested_label", "mislabel", "outlier", "is_error", "cluster"):
            value = scores.get(name)
            if value is not None and not (isinstance(value, float) and value != value):
                out.append((name.replace("_", " "), _fmt(value), EXPLAIN[name]))
    tags = payload.get(TAGS)
    out.append(("tags", ", ".join(str(t) for t in tags) if isinstance(tags, (list, tuple)) and tags else "–",
                "shared by every user of the store"))
    out.append(("reviewed", "yes" if payload.get(REVIEWED) else "no", "set by Keep (k) or the Reviewed button"))
    return out


def show_item(sc: Scope, payload: dict[str, Any], scores: pd.Series | None, hits: list[Hit]) -> None:
    """The image large, its facts with explanations, its neighbours as thumbnails."""
    left, right = st.columns([1, 1], gap="medium")
    with left:
        uri = payload.get(URI)
        image = images.open_image(uri) if isinstance(uri, str) and uri else None
        if image is not None:  # large, yet the neighbours below stay on screen
            st.image(image, width=min(IMAGE_PX, max(image.width, IMAGE_PX // 2)), caption=md(payload.get(KEY) or ""))
        elif payload.get(TEXT):
            st.text(shorten(payload.get(TEXT), 2_000))
        else:
            st.caption("No image available (outside the data roots, or not found).")
    with right:
        for name, value, why in facts(payload, scores):
            st.markdown(f"**{md(name)}**: {md(value)}  \n:gray[{md(why, limit=200)}]")
    st.markdown(f"**Nearest neighbours** in {md(sc.space)}")
    cols = st.columns(NEIGHBOURS_K)
    for col, hit in zip(cols, hits, strict=False):
        with col:
            thumb = images.thumbnail(hit.payload.get(URI), 128) if hit.payload.get(URI) else None
            if thumb is not None:
                st.image(thumb, width="stretch")
            else:
                st.text(shorten(hit.payload.get(TEXT) or hit.payload.get(KEY) or hit.id[:8], 60))
            st.caption(caption(pd.Series({**hit.payload, "score": hit.score}), ("label", "score")))
