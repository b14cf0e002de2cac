"""core.filters.Filter -> qdrant_client.models.Filter (the server adapter's filter language)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qdrant_client import models as qm

from core.filters import Condition, Filter
from core.store.common import uniform_match_values


def _equals(key: str, value: Any) -> Any:
    if isinstance(value, float):
        return qm.FieldCondition(key=key, range=qm.Range(gte=value, lte=value))
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def condition(cond: Condition) -> Any:
    """One Condition as a qdrant-client condition."""
    if cond.is_id:
        return qm.HasIdCondition(has_id=list(cond.point_ids()))  # an empty list matches no point
    if cond.equals is not None:
        return _equals(cond.field, cond.equals)
    if cond.one_of is not None:
        if not cond.one_of:
            return qm.HasIdCondition(has_id=[])  # one of nothing: matches no point
        if uniform_match_values(cond.one_of):
            return qm.FieldCondition(key=cond.field, match=qm.MatchAny(any=list(cond.one_of)))
        return qm.Filter(should=[_equals(cond.field, v) for v in cond.one_of])
    if cond.missing is not None:
        # is_empty matches an absent key, null and []: all mean "unknown" in a payload.
        empty = qm.IsEmptyCondition(is_empty=qm.PayloadField(key=cond.field))
        return empty if cond.missing else qm.Filter(must_not=[empty])
    return qm.FieldCondition(key=cond.field, range=qm.Range(gte=cond.gte, lte=cond.lte))


def to_server(flt: Filter | None, exclude_ids: Iterable[str] = ()) -> qm.Filter | None:
    """The qdrant-client filter for flt (None for no filter), optionally excluding point ids."""
    must = [condition(c) for c in flt.must] if flt else []
    must_not = [condition(c) for c in flt.must_not] if flt else []
    excluded: list[Any] = list(exclude_ids)
    if excluded:
        must_not.append(qm.HasIdCondition(has_id=excluded))
    if not must and not must_not:
        return None
    return qm.Filter(must=must or None, must_not=must_not or None)
