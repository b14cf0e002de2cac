"""Shareable views: a dashboard view (project, space, datasets, colour, filters, opened item) as URL
parameters, checked against what exists, and saved named views per project (store documents)."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from core.auth import Actor, Permission, require
from core.errors import BadInputError, NotFoundError
from core.store.base import VectorStore
from core.store.documents import FORMAT, Upgrade, read_document
from core.store.names import validate_name
from core.types import BOX_AREA, CONFIDENCE, IOU, META, REVIEWED

log = logging.getLogger(__name__)

KIND = "view"  # the store document kind of a saved view
FORMAT_VERSION = 1
UPGRADES: dict[int, Upgrade] = {}
# URL parameter names. Filter fields are prefixed, so a field never collides with a view field.
P_PROJECT, P_SPACE, P_DATASETS, P_COLOUR, P_ITEM = "project", "space", "datasets", "colour", "item"
P_POINTS = "points"  # Explore's images | objects switch (detection datasets); absent: images
POINTS_VIEWS = ("images", "objects")
P_FILTER = "f."
P_UNLABELED = "f.unlabeled"
P_CONFIDENCE = "f.confidence"
RANGE_SEP = ":"
RANGE_FIELDS = (BOX_AREA, IOU)  # the objects view's numeric filters, as f.<field>=low:high (View.ranges)
MAX_VALUES = 200  # values per parameter read from a URL (a link is typed or pasted by people)
REVIEW_VALUES = ("reviewed", "not reviewed")  # the REVIEWED filter (ui.widgets.filters.REVIEW_STATES less "any")


@dataclass(frozen=True)
class View:
    """What a link reopens. Empty / None fields mean "the default".

    filters: (field, values) pairs of the payload filter (field as in core.types: "label",
    "meta.camera"...), values as text (a URL has no types: matched by text against the facets);
    confidence: (low, high) or None; item: the opened point id; page: the script a saved view was
    made on (e.g. "pages/2_Explore.py"), not part of a URL (the URL's path is the page); points:
    "objects" for Explore's objects view of a detection dataset (None: images); ranges: (field,
    (low, high)) of the RANGE_FIELDS (the objects' box area and IoU).
    """

    project: str | None = None
    space: str | None = None
    datasets: tuple[str, ...] = ()
    colour: str | None = None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unlabeled: bool = False
    confidence: tuple[float, float] | None = None
    item: str | None = None
    page: str | None = field(default=None, compare=False)
    points: str | None = None
    ranges: tuple[tuple[str, tuple[float, float]], ...] = ()

    def filter_values(self) -> dict[str, tuple[str, ...]]:
        return dict(self.filters)


def encode(view: View) -> dict[str, list[str]]:
    """The view as URL parameters {name: values} (a list per name: repeated parameters, so a value
    may hold any character); defaults are left out, so a plain view gives a short URL."""
    out: dict[str, list[str]] = {}
    for name, value in ((P_PROJECT, view.project), (P_SPACE, view.space), (P_COLOUR, view.colour),
                        (P_ITEM, view.item)):
        if value:
            out[name] = [value]
    if view.datasets:
        out[P_DATASETS] = list(view.datasets)
    for name, values in view.filters:
        if values:
            out[P_FILTER + name] = [str(v) for v in values]
    if view.unlabeled:
        out[P_UNLABELED] = ["1"]
    if view.confidence is not None:
        low, high = view.confidence
        out[P_CONFIDENCE] = [f"{low:g}{RANGE_SEP}{high:g}"]
    if view.points and view.points != POINTS_VIEWS[0]:
        out[P_POINTS] = [view.points]
    for name, (low, high) in view.ranges:  # 10 digits: a box area in px² keeps its units
        out[P_FILTER + name] = [f"{low:.10g}{RANGE_SEP}{high:.10g}"]
    return out


def _values(params: Mapping[str, str | Sequence[str]], name: str) -> list[str]:
    raw = params.get(name)
    if raw is None:
        return []
    values = [raw] if isinstance(raw, str) else [str(v) for v in raw]
    return [v for v in values if v != ""][:MAX_VALUES]


def _one(params: Mapping[str, str | Sequence[str]], name: str) -> str | None:
    values = _values(params, name)
    return values[-1] if values else None  # st.query_params[name] is the last one too


def _range(text: str) -> tuple[float, float] | None:
    low, sep, high = text.partition(RANGE_SEP)
    try:
        bounds = (float(low), float(high))
    except ValueError:
        return None
    if not sep or not all(math.isfinite(b) for b in bounds) or bounds[0] > bounds[1]:
        return None
    return bounds


def is_point_id(text: str) -> bool:
    """Whether `text` can be a point id (core.ids makes uuid5s): anything else never reaches the store."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def decode(params: Mapping[str, str | Sequence[str]]) -> tuple[View, list[str]]:
    """(the view in `params`, notices about parts that were left out). Never raises on what a URL
    holds: a malformed range or item id is dropped with a notice; unknown parameters are ignored."""
    notices: list[str] = []
    confidence = None
    if (text := _one(params, P_CONFIDENCE)) is not None:
        confidence = _range(text)
        if confidence is None:
            notices.append(f"Ignored the confidence range {text!r} (expected low{RANGE_SEP}high).")
    item = _one(params, P_ITEM)
    if item is not None and not is_point_id(item):
        notices.append(f"Ignored the item {item!r}: not a point id.")
        item = None
    points = _one(params, P_POINTS)
    if points is not None and points not in POINTS_VIEWS:
        notices.append(f"Ignored points={points!r} (expected {' or '.join(POINTS_VIEWS)}).")
    ranged = tuple(P_FILTER + f for f in RANGE_FIELDS)
    filters = tuple((name[len(P_FILTER):], tuple(dict.fromkeys(_values(params, name))))
                    for name in sorted(params)
                    if name.startswith(P_FILTER) and name not in (P_UNLABELED, P_CONFIDENCE, *ranged)
                    and _values(params, name))
    ranges: list[tuple[str, tuple[float, float]]] = []
    for field_name in RANGE_FIELDS:
        if (text := _one(params, P_FILTER + field_name)) is not None:
            bounds = _range(text)
            if bounds is None:
                notices.append(f"Ignored the {field_name} range {text!r} (expected low{RANGE_SEP}high).")
            else:
                ranges.append((field_name, bounds))
    view = View(project=_one(params, P_PROJECT), space=_one(params, P_SPACE),
                datasets=tuple(dict.fromkeys(_values(params, P_DATASETS))), colour=_one(params, P_COLOUR),
                filters=filters, unlabeled=_one(params, P_UNLABELED) in ("1", "true"),
                confidence=confidence, item=item,
                points=points if points in POINTS_VIEWS[1:] else None, ranges=tuple(ranges))
    return view, notices


def resolve_filters(view: View, facets: Mapping[str, Sequence[Any]]) -> tuple[dict[str, list[Any]], list[str]]:
    """The view's filter values matched (by text) to the facets' own values {field: values}, and
    notices for fields or values that do not exist here (left out). Only one metadata field is
    kept (the filter widgets offer one at a time). facets: ui.widgets.filters.facets_from_frame's."""
    notices: list[str] = []
    out: dict[str, list[Any]] = {}
    for name, texts in view.filters:
        known = list(REVIEW_VALUES) if name == REVIEWED and facets.get(REVIEWED) else facets.get(name)
        if name == CONFIDENCE or known is None:
            notices.append(f"Ignored the filter on {name!r}: no such field here.")
            continue
        if name.startswith(f"{META}.") and any(f.startswith(f"{META}.") for f in out):
            notices.append(f"Ignored the filter on {name!r}: one metadata field at a time.")
            continue
        by_text = {str(v): v for v in known}
        chosen = [by_text[t] for t in texts if t in by_text]
        if len(chosen) < len(texts):
            missing = [t for t in texts if t not in by_text]
            notices.append(f"Ignored {len(missing)} unknown {name} value(s): {', '.join(map(repr, missing[:3]))}.")
        if chosen:
            out[name] = chosen
    return out, notices


def clamp_confidence(view: View, bounds: Sequence[float] | None) -> tuple[float, float] | None:
    """The view's confidence range inside the data's [min, max] (None: no range, or no confidence)."""
    return clamp_range(view.confidence, bounds)


def clamp_range(wanted: tuple[float, float] | None, bounds: Sequence[float] | None) -> tuple[float, float] | None:
    """A (low, high) range inside the data's [min, max] (None: no range, no data, or no overlap)."""
    if wanted is None or not bounds or len(bounds) != 2:
        return None
    low, high = max(wanted[0], float(bounds[0])), min(wanted[1], float(bounds[1]))
    return (low, high) if low <= high else None


# -- saved views --------------------------------------------------------------------------------

def _name(name: str) -> str:
    return validate_name(name.strip() if isinstance(name, str) else name, "view name")


def save_view(store: VectorStore, project: str, name: str, view: View, *, actor: Actor) -> str:
    """Save `view` as `name` in the project (replacing one of that name); returns the checked name.
    BadInputError for a bad name; NotFoundError when the project does not exist; PermissionDeniedError
    unless actor may write collections (saved views are shared by the project's users, like them)."""
    require(actor, Permission.COLLECTIONS, f"saving view {name!r} in project {project!r}")
    name = _name(name)
    if project not in store.list_projects():
        raise NotFoundError(f"Project {project!r} not found")
    doc = {FORMAT: FORMAT_VERSION, "name": name, "params": encode(replace(view, project=project)),
           "page": view.page, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    store.put_document(project, KIND, name, doc)
    log.info("saved view %r of project %s", name, project)
    return name


def list_views(store: VectorStore, project: str) -> list[str]:
    """Names of the project's saved views, sorted."""
    return store.list_documents(project, KIND)


def load_view(store: VectorStore, project: str, name: str) -> View:
    """The saved view `name` (NotFoundError when there is none)."""
    doc = read_document(store, project, KIND, _name(name), FORMAT_VERSION, UPGRADES)
    if doc is None:
        raise NotFoundError(f"No saved view {name!r} in project {project!r}")
    params = doc.get("params")
    if not isinstance(params, dict):
        raise BadInputError(f"The saved view {name!r} of project {project!r} is damaged (no parameters)")
    view, notices = decode(params)
    for notice in notices:
        log.warning("saved view %r: %s", name, notice)
    page = doc.get("page")
    return replace(view, project=project, page=page if isinstance(page, str) else None)


def delete_view(store: VectorStore, project: str, name: str, *, actor: Actor) -> bool:
    """Delete the saved view `name`; False when there was none. PermissionDeniedError unless
    actor may write collections."""
    require(actor, Permission.COLLECTIONS, f"deleting view {name!r} of project {project!r}")
    return store.delete_document(project, KIND, _name(name))
