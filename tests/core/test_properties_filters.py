"""Property tests: core.filters.Filter gives the same points on both store adapters as a Python oracle.

Random small payload sets (labels from a small alphabet incl. None, ints, floats, bools, lists and
unicode strings under `meta.<x>`, NaN, absent fields) and random filters (equals / one_of / range /
missing, point ids; in must and must_not) are stored in Qdrant Edge and in qdrant-client local mode; count()
and payloads() must select exactly what `oracle_matches` computes from the same payloads.

The oracle writes down the semantics the store contract promises (Qdrant's own, see core.filters):
* equals / one_of: a bool matches only the same bool (never 1/0), a str only the same str, an int
  only an int (a stored 1.0 is not matched by the int 1, as in Qdrant), a float any number equal
  to it (adapters send it as a one-point range); on a list payload any element may match;
* gte / lte: any number (not a bool) in the range, any element of a list;
* missing=True: the field is absent, null, NaN (stored as null) or [] ; missing=False: the opposite.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.filters import ID_FIELD, Condition, Filter
from core.ids import point_id
from core.store.base import VectorStore
from core.types import ITEM_KIND, SpaceInfo
from tests.core.conftest import STORE_KINDS, make_store, same_typed

P, SPACE, DATASET = "props", "s", "d"
_ABSENT = object()  # a field the payload does not have
OTHER_ID = "00000000-0000-4000-8000-000000000000"  # a point id no stored point has

STRINGS = ["a", "b", "ä", "日本", "", "1", "true", "A", "a b"]
INTS = [0, 1, 2, -1, 7]
FLOATS = [0.0, 1.0, 1.5, -2.25, 2.0, 1e-7]
BOOLS = [True, False]
FIELDS = ["label", "split", "confidence", "meta.a", "meta.a", "meta.b", "meta.absent"]

scalars = st.one_of(st.sampled_from(STRINGS), st.sampled_from(INTS), st.sampled_from(FLOATS),
                    st.sampled_from(BOOLS), st.text(max_size=4))
# Decimals of a few digits (like most real scores): qdrant-edge 0.9 stores ~10% of arbitrary floats
# 1 ulp off (see test_edge_keeps_every_float_payload_exactly), which flips range bounds hit exactly.
edge_exact_floats = st.integers(-10**7, 10**7).map(lambda i: i / 10**6)
numbers = st.one_of(st.sampled_from(INTS), st.sampled_from(FLOATS), edge_exact_floats, st.integers(-10, 10))


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Filter]]:
    """(payloads, filters) drawing stored and filtered values from one small palette, so that
    filters hit stored values often (1 vs 1.0 vs True, a value inside a list, ...)."""
    palette = draw(st.lists(st.one_of(scalars, numbers), min_size=1, max_size=4))
    value = st.one_of(st.sampled_from(palette), scalars)
    stored = st.one_of(st.sampled_from(palette), st.lists(st.sampled_from(palette), min_size=1, max_size=3),
                       scalars, st.sampled_from([None, float("nan"), [], _ABSENT]))

    def payload() -> dict[str, Any]:
        meta = {name: draw(stored) for name in ("a", "b")}
        return {"dataset": DATASET, "kind": ITEM_KIND,
                "label": draw(st.sampled_from([*STRINGS[:4], None])),
                "split": draw(st.sampled_from(["train", "test", "ünï", None])),
                "confidence": draw(st.one_of(st.none(), st.just(float("nan")), numbers, st.sampled_from(palette))),
                "meta": {k: v for k, v in meta.items() if v is not _ABSENT}}

    def condition() -> Condition:
        field = draw(st.sampled_from([*FIELDS, ID_FIELD]))
        if field == ID_FIELD:  # point ids: some of the rows', or one no point has
            ids = draw(st.lists(st.sampled_from([*_ids(len(rows)), OTHER_ID]), max_size=3))
            return Condition(ID_FIELD, equals=ids[0]) if len(ids) == 1 else Condition(ID_FIELD, one_of=tuple(ids))
        how = draw(st.sampled_from(["equals", "one_of", "range", "missing"]))
        if how == "equals":
            return Condition(field, equals=draw(value))
        if how == "one_of":
            return Condition(field, one_of=tuple(draw(st.lists(value, max_size=3))))
        if how == "missing":
            return Condition(field, missing=draw(st.booleans()))
        bound = st.one_of(st.none(), numbers, st.sampled_from([v for v in palette if _is_number(v)] or [0]))
        gte, lte = draw(bound), draw(bound)
        if gte is None and lte is None:
            gte = draw(numbers)
        return Condition(field, gte=None if gte is None else float(gte), lte=None if lte is None else float(lte))

    rows = [payload() for _ in range(draw(st.integers(1, 10)))]
    flts = [Filter(tuple(condition() for _ in range(draw(st.integers(0, 3)))),
                   tuple(condition() for _ in range(draw(st.integers(0, 2)))))
            for _ in range(draw(st.integers(1, 5)))]
    return rows, flts


# -- the oracle ---------------------------------------------------------------------------------
def _lookup(payload: dict[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool):
        return isinstance(stored, bool) and stored == wanted
    if isinstance(wanted, str):
        return isinstance(stored, str) and stored == wanted
    if isinstance(wanted, int):
        return isinstance(stored, int) and not isinstance(stored, bool) and stored == wanted
    return _is_number(stored) and stored == wanted


def _in_range(stored: Any, cond: Condition) -> bool:
    return (_is_number(stored) and (cond.gte is None or stored >= cond.gte)
            and (cond.lte is None or stored <= cond.lte))


def _empty(value: Any) -> bool:
    return value is _ABSENT or value is None or value == [] or (isinstance(value, float) and math.isnan(value))


def condition_matches(pid: str, payload: dict[str, Any], cond: Condition) -> bool:
    if cond.is_id:
        return pid in cond.point_ids()
    value = _lookup(payload, cond.field)
    if cond.missing is not None:
        return _empty(value) == cond.missing
    elements = [] if _empty(value) else value if isinstance(value, list) else [value]
    if cond.equals is not None:
        return any(_equal(e, cond.equals) for e in elements)
    if cond.one_of is not None:
        return any(_equal(e, v) for e in elements for v in cond.one_of)
    return any(_in_range(e, cond) for e in elements)


def oracle_matches(pid: str, payload: dict[str, Any], flt: Filter) -> bool:
    return (all(condition_matches(pid, payload, c) for c in flt.must)
            and not any(condition_matches(pid, payload, c) for c in flt.must_not))


# -- the stores ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VectorStore]]:
    """One store of each kind for the whole module (opening Edge stores is slow-ish)."""
    root: Path = tmp_path_factory.mktemp("filters")
    opened = {kind: make_store(kind, root / "edge" if kind == "edge" else None) for kind in STORE_KINDS}
    try:
        for store in opened.values():
            store.ensure_space(P, SpaceInfo(SPACE, 2, "vector"))
        yield opened
    finally:
        for store in opened.values():
            store.close()


def _replace_points(store: VectorStore, rows: list[dict[str, Any]]) -> list[str]:
    """Make the space hold exactly these payloads (ids from the row number); return the ids."""
    store.delete_dataset(P, DATASET)
    ids = _ids(len(rows))
    vectors = np.tile(np.array([[1.0, 0.5]], dtype=np.float32), (len(rows), 1))
    store.upsert(P, SPACE, ids, vectors, [{**row, "key": f"row-{i}"} for i, row in enumerate(rows)])
    return ids


def _ids(n: int) -> list[str]:
    return [point_id(P, DATASET, f"row-{i}") for i in range(n)]


def _stored_payloads(store: VectorStore) -> dict[str, dict[str, Any]]:
    return {pid: payload for ids, _, pls in store.iter_vectors(P, SPACE) for pid, payload in zip(ids, pls, strict=True)}


def _cleaned(value: Any) -> Any:
    """What a payload value is stored as: NaN becomes null (core.store.common.clean_payload)."""
    if isinstance(value, dict):
        return {k: _cleaned(v) for k, v in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


ROW = {"dataset": DATASET, "kind": ITEM_KIND, "label": "a", "split": None, "confidence": None}


def _check(stores: dict[str, VectorStore], rows: list[dict[str, Any]], flts: list[Filter]) -> None:
    """Store rows in every store; payloads come back with their JSON types and every filter
    selects (payloads, count) exactly the oracle's points."""
    for kind, store in stores.items():
        ids = _replace_points(store, rows)
        by_id = dict(zip(ids, rows, strict=True))
        stored = _stored_payloads(store)
        assert set(stored) == set(ids), kind
        for i, (pid, row) in enumerate(by_id.items()):
            assert same_typed(stored[pid], {**_cleaned(row), "key": f"row-{i}"}), (kind, row, stored[pid])
        for flt in [Filter(), *flts]:
            expected = {pid for pid, row in by_id.items() if oracle_matches(pid, row, flt)}
            got = set(store.payloads(P, SPACE, flt).index)
            assert got == expected, (kind, flt, "wrongly in" if got - expected else "wrongly out",
                                     [by_id[i] for i in got ^ expected])
            assert store.count(P, SPACE, flt) == len(expected), (kind, flt)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_filters_select_what_the_oracle_selects_on_both_adapters(
        stores: dict[str, VectorStore], case: tuple[list[dict[str, Any]], list[Filter]]) -> None:
    _check(stores, *case)


# Found by the property test (kept as fixed cases, as random draws reach them only now and then):
# Edge resolves a condition with a true/false value itself (Edge cannot match JSON booleans) by
# comparing types strictly and ignoring list payloads, unlike Qdrant (and the server adapter).
EDGE_BOOL_CASES = {
    "true inside a list": ([{**ROW, "meta": {"a": [True, "x"]}}, {**ROW, "meta": {"a": True}}],
                           [Filter(must=(Condition("meta.a", equals=True),))]),
    "one_of mixing a bool and a float": ([{**ROW, "meta": {"a": 1}}, {**ROW, "meta": {"a": 1.0}},
                                          {**ROW, "meta": {"a": True}}],
                                         [Filter(must=(Condition("meta.a", one_of=(True, 1.0)),))]),
    "one_of mixing a bool and a string, on a list": ([{**ROW, "meta": {"a": ["x"]}}, {**ROW, "meta": {"a": False}}],
                                                     [Filter(must_not=(Condition("meta.a", one_of=(False, "x")),))]),
}


@pytest.mark.parametrize("name", list(EDGE_BOOL_CASES))
def test_true_false_conditions_follow_qdrant_semantics_on_both_adapters(
        stores: dict[str, VectorStore], name: str) -> None:
    _check(stores, *EDGE_BOOL_CASES[name])


@pytest.mark.xfail(strict=True, reason="qdrant-edge-py 0.9 stores ~10% of float payloads 1 ulp off "
                   "(e.g. 1e-30 -> 9.999999999999999e-31), so an exact-value range misses the point; upstream")
def test_edge_keeps_every_float_payload_exactly(stores: dict[str, VectorStore]) -> None:
    values = [1e-30, 123456789.12345679, 0.8700000047683716, 0.1]
    rows = [{**ROW, "meta": {"a": v}} for v in values]
    _check(stores, rows, [Filter(must=(Condition("meta.a", gte=v),)) for v in values])
