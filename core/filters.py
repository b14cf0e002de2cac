"""A small, store-independent filter spec (equals / one-of / range / missing) and its text parser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from core.errors import BadInputError


@dataclass(frozen=True)
class Condition:
    """One condition on a payload field; exactly one of the matchers is set.

    field: payload path, e.g. "label", "split", "meta.camera".
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


@dataclass(frozen=True)
class Filter:
    """All of `must` hold and none of `must_not` hold. The empty filter matches everything."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.must or self.must_not)

    def and_(self, other: "Filter | None") -> "Filter":
        """Both filters at once."""
        if not other:
            return self
        return Filter(self.must + other.must, self.must_not + other.must_not)

    @staticmethod
    def where(**equals: Any) -> "Filter":
        """Shorthand: Filter.where(dataset="train", label="cat")."""
        return Filter(must=tuple(Condition(k, equals=v) for k, v in equals.items()))

    @staticmethod
    def datasets(names: Iterable[str]) -> "Filter":
        """Points of any of these datasets."""
        names = tuple(names)
        return Filter(must=(Condition("dataset", one_of=names),)) if names else Filter()


_CLAUSE = re.compile(
    r"^\s*(?P<field>[A-Za-z_][\w.\-]*)\s*(?P<op>>=|<=|!=|=|\bin\b|\bnot in\b|\bis missing\b|\bis present\b)\s*(?P<value>.*?)\s*$"
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


def parse_filter(clauses: Iterable[str]) -> Filter:
    """Parse CLI-style clauses into a Filter.

    Each clause is one of: `label=cat`, `label!=cat`, `split in train,test`,
    `split not in test`, `confidence>=0.5`, `confidence<=0.9`, `label is missing`,
    `label is present`. Raises BadInputError naming the clause it cannot read.
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
        if op == "=":
            must.append(Condition(name, equals=_scalar(value)))
        elif op == "!=":
            must_not.append(Condition(name, equals=_scalar(value)))
        elif op in ("in", "not in"):
            values = tuple(_scalar(v) for v in value.split(",") if v.strip())
            if not values:
                raise BadInputError(f"Filter {clause!r} lists no values")
            (must if op == "in" else must_not).append(Condition(name, one_of=values))
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
