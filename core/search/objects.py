"""Search over detection objects: which points a search ranks (images or objects) and the object filters.

A search ranks one kind of point, never both: a crop and a whole scene are not comparable results.
`kind_filter` narrows any filter to that kind (core.filters' one rule); `object_filters` turns the
object choices (match status, class, source, score and box-size ranges) into Filters. The class of
a label box is its `label`, of a prediction its `prediction`: Filter has no "or", so a class choice
over both sources is one filter per source, and `merged` joins their hits by score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.filters import Condition, Filter, items_only, objects_only
from core.store.base import VectorStore
from core.types import (
    BOX,
    BOX_AREA,
    CONFIDENCE,
    IOU,
    ITEM_KIND,
    KINDS,
    LABEL,
    LABEL_SOURCE,
    MATCH,
    MATCH_ID,
    OBJECT_KIND,
    OBJECT_SOURCES,
    PARENT,
    PREDICTION,
    SOURCE,
    Hit,
)

# What a user picks ("images | objects") and the point kind it means.
POINTS: dict[str, str] = {"images": ITEM_KIND, "objects": OBJECT_KIND}
# The object payload fields an export / a results table of objects carries after the usual columns.
OBJECT_COLUMNS: tuple[str, ...] = (SOURCE, MATCH, IOU, BOX, BOX_AREA, PARENT, MATCH_ID)


def kind_filter(kind: str, flt: Filter | None = None) -> Filter:
    """flt narrowed to points of `kind` (ITEM_KIND or OBJECT_KIND); ValueError for another kind."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return objects_only(flt) if kind == OBJECT_KIND else items_only(flt)


def has_objects(store: VectorStore, project: str, space: str) -> bool:
    """True when the space holds detection objects (the search offers "objects" only then)."""
    return store.count(project, space, objects_only()) > 0


@dataclass(frozen=True)
class ObjectChoice:
    """The object filters of a search. statuses: match statuses (core.analysis.box_matching.
    MATCH_STATUSES), empty = any; classes: a label box's label / a prediction's class, empty = any;
    sources: "label" / "prediction", empty = both; score: (low, high) of a prediction's confidence
    (label boxes have none, so a score range keeps predictions only); area: (low, high) box area
    in pixels. None bounds are open."""

    statuses: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    score: tuple[float | None, float | None] = (None, None)
    area: tuple[float | None, float | None] = (None, None)

    def __bool__(self) -> bool:
        return bool(self.statuses or self.classes or self.sources or any(v is not None for v in self.score)
                    or any(v is not None for v in self.area))


def _range(field: str, bounds: tuple[float | None, float | None]) -> tuple[Condition, ...]:
    low, high = bounds
    if low is None and high is None:
        return ()
    return (Condition(field, gte=None if low is None else float(low), lte=None if high is None else float(high)),)


def object_filters(choice: ObjectChoice, flt: Filter | None = None) -> list[Filter]:
    """The filters (objects only, narrowed by flt) that together hold the objects of `choice`: one,
    or one per source when classes are chosen over both sources (their union is the choice)."""
    unknown = [s for s in choice.sources if s not in OBJECT_SOURCES]
    if unknown:
        raise ValueError(f"sources must be among {OBJECT_SOURCES}, got {unknown}")
    base: tuple[Condition, ...] = _range(CONFIDENCE, choice.score) + _range(BOX_AREA, choice.area)
    if choice.statuses:
        base += (Condition(MATCH, one_of=tuple(choice.statuses)),)
    sources = tuple(dict.fromkeys(choice.sources)) or OBJECT_SOURCES
    if not choice.classes:
        one = base + ((Condition(SOURCE, one_of=sources),) if len(sources) < len(OBJECT_SOURCES) else ())
        return [objects_only(Filter(must=one).and_(flt))]
    out = []
    for source in sources:
        field = LABEL if source == LABEL_SOURCE else PREDICTION
        must = base + (Condition(SOURCE, equals=source), Condition(field, one_of=tuple(choice.classes)))
        out.append(objects_only(Filter(must=must).and_(flt)))
    return out


def merged(lists: Sequence[Sequence[Hit]], limit: int) -> list[Hit]:
    """The hits of several searches of one query (disjoint filters) as one list, best score
    first (stable), at most limit."""
    if len(lists) == 1:
        return list(lists[0])[:limit]
    seen: set[str] = set()
    out: list[Hit] = []
    for hit in sorted((h for hits in lists for h in hits), key=lambda h: -h.score):
        if hit.id not in seen:
            seen.add(hit.id)
            out.append(hit)
    return out[:limit]
