"""A small, store-independent filter spec (equals / one-of / range / missing) and its text parser."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import BadInputError
from core.types import ITEM_KIND, KIND, KINDS, OBJECT_KIND

# The reserved field name of the id condition: a Condition on it matches point ids (Qdrant's
# has_id), not a payload field. No payload carries a top-level "id" (user metadata is under meta.).
ID_FIELD = "id"


def _is_point_id(value: Any) -> bool:
    """True for a point id string as the stores hand them out (a UUID, see core.ids)."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Condition:
    """One condition on a payload field; exactly one of the matchers is set.

    field: payload path, e.g. "label", "split", "meta.camera"; or ID_FIELD ("id"): then the
        condition is on point ids (equals / one_of only, point id strings).
    equals: the field equals this value (str, int or bool).
    one_of: the field equals one of these values.
    gte / lte: numeric range, either bound optional.
    missing: True matches points where the field is absent or null ("unlabeled").
    """

    field: str
    equals: Any = None
    one_of: tuple[Any, ...] | None = None
    gte: float | None = None
    lte: float | None = None
    missing: bool | None = None

    def __post_init__(self) -> None:
        set_count = sum(
            [self.equals is not None, self.one_of is not None,
             self.gte is not None or self.lte is not None, self.missing is not None]
        )
        if set_count != 1:
            raise ValueError(
                f"Condition on {self.field!r} needs exactly one of equals, one_of, gte/lte, missing"
            )
        if self.field == ID_FIELD:
            if self.equals is None and self.one_of is None:
                raise ValueError(f"A condition on {ID_FIELD!r} (point ids) takes equals or one_of only")
            bad = [v for v in self.point_ids() if not _is_point_id(v)]
            if bad:
                raise ValueError(f"A condition on {ID_FIELD!r} takes point id strings (UUIDs), got {bad[:3]!r}")

    @property
    def is_id(self) -> bool:
        """True when this condition matches point ids rather than a payload field."""
        return self.field == ID_FIELD

    def point_ids(self) -> tuple[Any, ...]:
        """The values an id condition matches (equals as a 1-tuple, or one_of)."""
        return (self.equals,) if self.equals is not None else tuple(self.one_of or ())


@dataclass(frozen=True)
class Filter:
    """All of `must` hold and none of `must_not` hold. The empty filter matches everything."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.must or self.must_not)

    def and_(self, other: Filter | None) -> Filter:
        """Both filters at once."""
        if not other:
            return self
        return Filter(self.must + other.must, self.must_not + other.must_not)

    @staticmethod
    def where(**equals: Any) -> Filter:
        """Shorthand: Filter.where(dataset="train", label="cat")."""
        return Filter(must=tuple(Condition(k, equals=v) for k, v in equals.items()))

    @staticmethod
    def datasets(names: Iterable[str]) -> Filter:
        """Points of any of these datasets."""
        names = tuple(names)
        return Filter(must=(Condition("dataset", one_of=names),)) if names else Filter()

    @staticmethod
    def ids(ids: Iterable[str]) -> Filter:
        """Points whose id is one of ids (Qdrant's has_id, applied inside the store). Unlike
        datasets(), no ids matches no point: a selection of nothing stays nothing."""
        return Filter(must=(Condition(ID_FIELD, one_of=tuple(str(uuid.UUID(str(i))) for i in ids)),))


def items_only(flt: Filter | None = None) -> Filter:
    """The one rule for "items, not detection objects": points whose required `kind` payload field
    is ITEM_KIND, narrowed by flt. Every caller that means datapoints uses this (a test fails on a
    second copy of the rule)."""
    return Filter(must=(Condition(KIND, equals=ITEM_KIND),)).and_(flt)


def objects_only(flt: Filter | None = None) -> Filter:
    """Detection objects (kind OBJECT_KIND), narrowed by flt: the points of the objects map."""
    return Filter(must=(Condition(KIND, equals=OBJECT_KIND),)).and_(flt)


def names_kind(flt: Filter | None) -> bool:
    """Whether flt already says which kind of point it means (e.g. objects_only()): then callers
    that default to items_only take flt as it is."""
    return flt is not None and any(c.field == KIND for c in (*flt.must, *flt.must_not))


def without_kind() -> Filter:
    """Points whose `kind` is absent or not one of KINDS: only stores of an older layout have them
    (the migration backfills them). Kept here so every condition on `kind` lives in this file."""
    return Filter(must_not=(Condition(KIND, one_of=KINDS),))


_CLAUSE = re.compile(
    r"^\s*(?P<field>[A-Za-z_][\w.\-]*)\s*"
    r"(?P<op>>=|<=|!=|=|\bin\b|\bnot in\b|\bis missing\b|\bis present\b)\s*(?P<value>.*?)\s*$"
)


def _scalar(text: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, anything else stays a string (quotes stripped)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _match_values(text: str) -> tuple[Any, ...]:
    """The values an unquoted `field=9` means: the text "9" and the number 9, because labels read
    from folders and CSVs are text ("9") while metadata may hold numbers; quoted values and words
    are text only, true/false the boolean only."""
    value = _scalar(text)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (text.strip(), value)
    return (value,)


def _match(name: str, values: tuple[Any, ...]) -> Condition:
    return Condition(name, equals=values[0]) if len(values) == 1 else Condition(name, one_of=values)


def _id_clause(clause: str, op: str, value: str) -> Condition:
    """The id condition of an `id` clause (=, !=, in, not in over UUIDs, canonicalised), or
    BadInputError naming the clause."""
    if op not in ("=", "!=", "in", "not in"):
        raise BadInputError(f"Filter {clause!r}: point ids take =, !=, 'in' or 'not in'")
    values = [v.strip().strip("'\"") for v in value.split(",") if v.strip()]
    bad = [v for v in values if not _is_point_id(v)]
    if bad or not values:
        raise BadInputError(f"Filter {clause!r}: {bad[0] if bad else value!r} is not a point id (a UUID)")
    return Condition(ID_FIELD, one_of=tuple(str(uuid.UUID(v)) for v in values))


def parse_filter(clauses: Iterable[str]) -> Filter:
    """Parse CLI-style clauses into a Filter.

    Each clause is one of: `label=cat`, `label!=cat`, `split in train,test`,
    `split not in test`, `confidence>=0.5`, `confidence<=0.9`, `label is missing`,
    `label is present`; `id in <uuid>,<uuid>` matches point ids. An unquoted number matches the
    text and the number (`label=9` finds the label "9" and the value 9; `label='9'` the text
    only). Raises BadInputError naming the clause it cannot read.
    """
    must: list[Condition] = []
    must_not: list[Condition] = []
    for clause in clauses:
        m = _CLAUSE.match(clause)
        if not m:
            raise BadInputError(
                f"Cannot read filter {clause!r}: use field=value, field!=value, field in a,b, "
                "field>=x, field<=x, or 'field is missing'"
            )
        name, op, value = m["field"], m["op"], m["value"]
        if name == ID_FIELD:
            (must if op in ("=", "in") else must_not).append(_id_clause(clause, op, value))
        elif op in ("=", "!="):
            (must if op == "=" else must_not).append(_match(name, _match_values(value)))
        elif op in ("in", "not in"):
            values = tuple(v for part in value.split(",") if part.strip() for v in _match_values(part))
            if not values:
                raise BadInputError(f"Filter {clause!r} lists no values")
            (must if op == "in" else must_not).append(Condition(name, one_of=tuple(dict.fromkeys(values))))
        elif op in (">=", "<="):
            number = _scalar(value)
            if not isinstance(number, (int, float)) or isinstance(number, bool):
                raise BadInputError(f"Filter {clause!r} needs a number after {op}")
            cond = Condition(name, gte=float(number)) if op == ">=" else Condition(name, lte=float(number))
            must.append(cond)
        elif op == "is missing":
            must.append(Condition(name, missing=True))
        else:  # is present
            must_not.append(Condition(name, missing=True))
    return Filter(tuple(must), tuple(must_not))
