"""core.filters.Filter -> qdrant_edge.Filter (the embedded adapter's filter language).

Known Edge limitation (qdrant-edge Python bindings): MatchValue(True) is converted to the
integer 1 and never matches a stored JSON boolean. Conditions on true/false values are therefore
resolved by the caller (`bools`: field, values -> ids of matching points, found by scrolling
that one field) and sent to Edge as a HasId condition, so they still run inside the query.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import qdrant_edge as qe

from core.errors import UnsupportedOperationError
from core.filters import Condition, Filter
from core.store.common import uniform_match_values

BoolResolver = Callable[[str, tuple[Any, ...]], set[str]]


def _equals(key: str, value: Any) -> Any:
    if isinstance(value, float):
        # Match takes str/int/bool only; a float equality is the one-point range.
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=value, lte=value))
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def _has_bool(cond: Condition) -> bool:
    values = (cond.equals,) if cond.equals is not None else (cond.one_of or ())
    return any(isinstance(v, bool) for v in values)


def condition(cond: Condition, bools: BoolResolver | None = None) -> Any:
    """One Condition as an Edge condition (a Filter for one_of over mixed types)."""
    if cond.is_id:
        # Point ids are UUIDs (core.ids); HasId over none of them matches no point.
        return qe.HasIdCondition({uuid.UUID(i) for i in cond.point_ids()})
    if _has_bool(cond):
        if bools is None:
            raise UnsupportedOperationError(f"The embedded store cannot filter {cond.field!r} on true/false here")
        values = (cond.equals,) if cond.equals is not None else tuple(cond.one_of or ())
        return qe.HasIdCondition({uuid.UUID(i) for i in bools(cond.field, values)})
    if cond.equals is not None:
        return _equals(cond.field, cond.equals)
    if cond.one_of is not None:
        if cond.one_of and uniform_match_values(cond.one_of):
            return qe.FieldCondition(cond.field, match=qe.MatchAny(list(cond.one_of)))
        return qe.Filter(should=[_equals(cond.field, v) for v in cond.one_of] or None,
                         must=None if cond.one_of else [qe.HasIdCondition(set())])
    if cond.missing is not None:
        # IsEmpty matches an absent key, null and []: all mean "unknown" in a payload.
        empty = qe.IsEmptyCondition(cond.field)
        return empty if cond.missing else qe.Filter(must_not=[empty])
    return qe.FieldCondition(cond.field, range=qe.RangeFloat(gte=cond.gte, lte=cond.lte))


def to_edge(flt: Filter | None, exclude_ids: Iterable[str] = (),
            bools: BoolResolver | None = None) -> qe.Filter | None:
    """The Edge filter for flt (None for no filter), optionally excluding some point ids."""
    must = [condition(c, bools) for c in flt.must] if flt else []
    must_not = [condition(c, bools) for c in flt.must_not] if flt else []
    excluded: set[Any] = {uuid.UUID(i) for i in exclude_ids}
    if excluded:
        must_not.append(qe.HasIdCondition(excluded))
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)
