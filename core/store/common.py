"""Adapter-independent helpers: argument checks, payload frames, payload merges, id handling.

Both adapters call these so that the embedded store and the server store behave the same
(the congruence tests in tests/core/test_store.py run one set of tests on both).
"""

from __future__ import annotations

import gc
import json
import math
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from core.errors import BadInputError, DimensionMismatchError
from core.store.documents import FORMAT, load_versioned
from core.types import KIND, KINDS, META, SpaceInfo

UPSERT_BATCH = 256
SCROLL_BATCH = 1024
# Payload keys reserved by the store in the documents area.
DOCS_PROJECT, DOCS_KIND, DOCS_KEY = "project", "kind", "key"
SPACE_KIND = "_space"  # documents of this kind describe the spaces (SpaceInfo.to_dict())
SPACE_FORMAT = 1  # format version of the SPACE_KIND documents


def space_doc(info: SpaceInfo) -> dict[str, Any]:
    """The persisted descriptor of a space (SpaceInfo.to_dict() + its format version)."""
    return {**info.to_dict(), FORMAT: SPACE_FORMAT}


def load_space_doc(space: str, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """A space descriptor read through the one checked loader (SpaceInfo.from_dict ignores FORMAT)."""
    return load_versioned(SPACE_KIND, space, doc, SPACE_FORMAT)


def uniform_match_values(values: Iterable[Any]) -> bool:
    """Whether Qdrant can match these values as one keyword/int set (MatchValue / MatchAny):
    all str, or all int (not bool, not float). Mixed or float values need one condition each."""
    values = list(values)
    if all(isinstance(v, str) for v in values):
        return True
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def check_points(
    space: str, dim: int, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
) -> np.ndarray:
    """Validate an upsert and return vectors as C-contiguous float32 (n, dim)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if len(ids) == 0 and arr.size == 0 and len(payloads) == 0:
        return np.zeros((0, dim), dtype=np.float32)  # nothing to store is not an error
    if arr.ndim != 2:
        raise ValueError(f"vectors must be a 2-d (n, dim) array, got shape {arr.shape}")
    if arr.shape[1] != dim:
        raise DimensionMismatchError(
            f"Vectors of size {arr.shape[1]} cannot go into space {space!r}, made for size {dim}"
        )
    if not len(ids) == len(payloads) == arr.shape[0]:
        raise ValueError(
            f"ids ({len(ids)}), vectors ({arr.shape[0]}) and payloads ({len(payloads)}) differ in length"
        )
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise BadInputError(f"The vector of point {ids[bad]} contains NaN or infinity")
    for pid in ids:
        check_id(pid)
    for pid, payload in zip(ids, payloads, strict=True):
        check_kind(pid, payload)
    return np.ascontiguousarray(arr)


def check_kind(pid: str, payload: dict[str, Any]) -> None:
    """`kind` is required on every point and one of core.types.KINDS: a payload without it is a
    programmer mistake (every writer builds payloads with Item.payload / the object builder)."""
    value = payload.get(KIND)
    if value not in KINDS:
        raise ValueError(
            f"The payload of point {pid} has kind={value!r}; every point needs `kind` set to one of {KINDS} "
            "(build payloads with core.types.Item.payload)"
        )


def check_id(pid: str) -> str:
    """Point ids are uuid strings (core.ids); anything else is a programmer mistake."""
    try:
        return str(uuid.UUID(str(pid)))
    except ValueError as e:
        raise ValueError(f"Point id {pid!r} is not a uuid string (use core.ids.point_id)") from e


def check_limit(limit: int) -> int:
    """Search limits are positive integers."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return limit


def check_query_vector(vector: np.ndarray, dim: int, space: str) -> list[float]:
    """(dim,) float32 query vector as a list; DimensionMismatchError on the wrong size."""
    arr = np.asarray(vector, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise DimensionMismatchError(
            f"A query vector of size {arr.shape[0]} cannot search space {space!r} of size {dim}"
        )
    if not np.isfinite(arr).all() or not np.any(arr):
        raise BadInputError(f"The query vector for space {space!r} is zero or not finite")
    return [float(x) for x in arr]


def clean_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Replace float NaN (pandas' missing value) by None so 'is missing' filters see it."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, float) and math.isnan(value):
            out[key] = None
        elif isinstance(value, dict):
            out[key] = clean_payload(value)
        else:
            out[key] = value
    return out


def split_merge(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a set_payload value into (top-level fields, fields merged into `meta`).

    `{"label": "cat", "meta": {"a": 1}, "meta.b": 2}` -> (`{"label": "cat"}`, `{"a": 1, "b": 2}`):
    meta is merged key by key, so adding one column keeps the others.
    """
    top: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for key, item in clean_payload(value).items():
        if key == META and isinstance(item, dict):
            meta.update(item)
        elif key.startswith(META + "."):
            meta[key[len(META) + 1 :]] = item
        else:
            top[key] = item
    return top, meta


def flatten(payload: dict[str, Any]) -> dict[str, Any]:
    """One payload as a flat row: nested meta becomes meta.<name> columns."""
    row = {k: v for k, v in payload.items() if k != META}
    meta = payload.get(META)
    if isinstance(meta, dict):
        row.update({f"{META}.{k}": v for k, v in meta.items()})
    return row


def payload_frame(
    records: list[tuple[str, dict[str, Any]]], fields: Sequence[str] | None = None
) -> pd.DataFrame:
    """(id, payload) pairs -> DataFrame indexed by "id" (sorted), meta flattened.

    With fields, exactly those columns in that order (absent values are None).
    """
    records = sorted(records, key=lambda r: r[0])  # columns in order of first appearance in id order
    columns = PayloadColumns()
    columns.add([r[0] for r in records], [r[1] for r in records])
    return columns.frame(fields)


def _slow_payload_frame(
    records: list[tuple[str, dict[str, Any]]], fields: Sequence[str] | None = None
) -> pd.DataFrame:
    """payload_frame row by row (one flattened dict per point): PayloadColumns' reference and
    its fallback for payloads it does not take apart by column (a top-level "meta.x" key)."""
    records = sorted(records, key=lambda r: r[0])
    frame = pd.DataFrame([flatten(p) for _, p in records], index=pd.Index([r[0] for r in records], name="id"))
    if fields is not None:
        frame = frame.reindex(columns=list(fields))
    frame.index.name = "id"
    return frame


_MISSING = float("nan")  # a field a point lacks (what pandas fills from a list of dicts)


def uuid_texts(ids: Sequence[Any]) -> list[str]:
    """str() of each id, for a page of uuid.UUID made in one vectorised pass (1M: ~0.25 s instead of
    ~0.75 s); ids of any other type through str()."""
    if not all(type(i) is uuid.UUID for i in ids):
        return [str(i) for i in ids]
    n = len(ids)
    hexed = np.frombuffer(b"".join([i.bytes for i in ids]).hex().encode("ascii"), dtype="S1").reshape(n, 32)
    out = np.empty((n, 36), dtype="S1")
    out[:, [8, 13, 18, 23]] = b"-"
    for (a, b), at in zip(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)), (0, 9, 14, 19, 24), strict=True):
        out[:, at:at + b - a] = hexed[:, a:b]
    return list(out.view("S36").ravel().astype("U36").tolist())


class PayloadColumns:
    """The payloads of a scroll gathered page by page into one list per column: the same frame
    as payload_frame's one-dict-per-point build (columns in order of first appearance, meta
    flattened to meta.<name>, NaN where a point lacks a field, sorted by id), without a
    flattened dict per point or pandas' row-to-column transposition. Pages out of id order get
    their rows sorted, their columns in order of appearance in the pages. Edge store.payloads
    of 200k points (9 fields, 1 core): 5.1 s -> 2.6 s with the collector paused meanwhile; what
    remains is mostly the binding's scroll and its objects (a uuid.UUID and a dict per point)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._cols: dict[str, list[Any]] = {}  # in order of first appearance
        self._top: set[str] = set()  # top-level keys seen (meta excluded)
        self._meta: set[str] = set()  # meta keys seen
        self._rows: list[tuple[str, dict[str, Any]]] | None = None  # fallback: the records themselves

    def add(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        """Append one page: point ids and their payload dicts (not kept: read into the columns)."""
        if self._rows is not None:
            self._rows.extend(zip(ids, payloads, strict=True))
            return
        done = len(self.ids)
        top = set().union(*payloads)
        metas = [p.get(META) for p in payloads] if META in top else []
        top.discard(META)
        meta_keys: set[str] = set().union(*(m for m in metas if isinstance(m, dict) and m))
        if any(k.startswith(META + ".") for k in top):  # would collide with a flattened meta column
            self._rows = [(i, self._row(at)) for at, i in enumerate(self.ids)]
            self._cols.clear()
            self.ids = []
            self._rows.extend(zip(ids, payloads, strict=True))
            return
        if not top <= self._top or not meta_keys <= self._meta:
            self._new_columns(payloads, done)
        self.ids.extend(ids)
        width = len(top) + (META in payloads[0] if payloads else 0)
        if payloads and not meta_keys and set(map(len, payloads)) == {width}:
            # every point has every top-level key (the usual case): one C-level pass per page
            keys = [k for k in self._cols if k in top]
            columns: Iterable[Sequence[Any]] = (
                zip(*map(itemgetter(*keys), payloads), strict=True) if len(keys) > 1
                else [[p[keys[0]] for p in payloads]] if keys else [])
            for key, column in zip(keys, columns, strict=True):
                self._cols[key].extend(column)
            for key, values in self._cols.items():
                if key not in top:
                    values.extend([_MISSING] * len(payloads))
            return
        for key, values in self._cols.items():
            if key.startswith(META + "."):
                name = key[len(META) + 1:]
                values.extend([m.get(name, _MISSING) if isinstance(m, dict) else _MISSING for m in metas]
                              if name in meta_keys else [_MISSING] * len(payloads))
            else:
                values.extend([p.get(key, _MISSING) for p in payloads] if key in top else [_MISSING] * len(payloads))

    def _new_columns(self, payloads: Sequence[dict[str, Any]], done: int) -> None:
        """Open the columns this page brings, in the order a row-by-row build would meet them."""
        for payload in payloads:
            for key in flatten(payload):
                if key not in self._cols:
                    self._cols[key] = [_MISSING] * done
                    if key.startswith(META + "."):
                        self._meta.add(key[len(META) + 1:])
                    else:
                        self._top.add(key)

    def _row(self, at: int) -> dict[str, Any]:
        """Row `at` rebuilt as a flattened payload (only for the fallback switch)."""
        return {k: v[at] for k, v in self._cols.items() if not (isinstance(v[at], float) and math.isnan(v[at]))}

    def frame(self, fields: Sequence[str] | None = None) -> pd.DataFrame:
        """The DataFrame indexed by "id", sorted by id; with fields, exactly those columns in that order."""
        if self._rows is not None:
            return _slow_payload_frame(self._rows, fields)
        keys = list(self._cols) if fields is None else [f for f in dict.fromkeys(fields) if f in self._cols]
        # from lists (not object arrays): pandas infers each column's dtype as from a list of dicts
        frame = pd.DataFrame({k: self._cols[k] for k in keys}, index=pd.Index(self.ids, name="id"))
        if not frame.index.is_monotonic_increasing:  # Edge and Qdrant scroll in id order: rare
            frame = frame.take(np.argsort(frame.index.to_numpy(), kind="stable"))
        if fields is not None:
            frame = frame.reindex(columns=list(fields))
        frame.index.name = "id"
        return frame


def payload_selector_fields(fields: Sequence[str] | None) -> list[str] | None:
    """Top-level payload keys to fetch for the requested columns (meta.x needs `meta`)."""
    if fields is None:
        return None
    return sorted({f.split(".", 1)[0] for f in fields})


def as_array(rows: Sequence[Sequence[float]], dim: int) -> np.ndarray:
    """One page of stored vectors as (n, dim) float32 (an empty (0, dim) array for no rows)."""
    if len(rows) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a scroll converts pages: the binding makes ~1k
    lists per page, which trigger collections that find nothing (no cycles); measured at 100k x
    512 on Edge: 7.4 s with it off, 8.9-9.7 s on. Restored (if it was on) even on error."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class RowBlock:
    """All vectors of a scroll as ONE (n, dim) float32 block, filled page by page.

    The adapters hand each page over as Python lists (one float object per value, ~25 KB per
    512-d point); keeping them for every point is what made reads of 300k+ points take GBs and
    slow down as the garbage collector rescanned them. Each page is converted at once into a
    block preallocated from a count (grown by doubling if more points arrive), so the peak is
    the final array plus one page.
    """

    def __init__(self, dim: int, expected: int = 0) -> None:
        self.ids: list[str] = []
        self._rows = np.empty((max(int(expected), 0), dim), dtype=np.float32)

    def add(self, ids: Sequence[str], rows: Sequence[Sequence[float]]) -> None:
        """Append one page: ids (k,) and their vectors (k lists of dim floats, or a (k, dim) array)."""
        done, k = len(self.ids), len(ids)
        if done + k > len(self._rows):
            grown = np.empty((max(done + k, 2 * len(self._rows), SCROLL_BATCH), self._rows.shape[1]), np.float32)
            grown[:done] = self._rows[:done]
            self._rows = grown
        if k:
            self._rows[done:done + k] = as_array(rows, self._rows.shape[1])
        self.ids.extend(ids)

    def finish(self) -> tuple[list[str], np.ndarray]:
        """(ids, (n, dim) float32): the block trimmed to the rows filled, without a copy."""
        if len(self.ids) != len(self._rows):
            self._rows.resize((len(self.ids), self._rows.shape[1]), refcheck=False)  # in place: no 2nd copy
        return self.ids, self._rows

    def sorted_by_id(self) -> tuple[list[str], np.ndarray]:
        """finish(), rows reordered by id when the pages did not come in id order."""
        ids, rows = self.finish()
        if all(a < b for a, b in pairwise(ids)):
            return ids, rows
        order = sorted(range(len(ids)), key=ids.__getitem__)
        return [ids[i] for i in order], rows[np.asarray(order, dtype=np.int64)]


def check_same_dim(project: str, existing: SpaceInfo, dim: int) -> None:
    """DimensionMismatchError when a space exists with another vector size."""
    if existing.dim != dim:
        raise DimensionMismatchError(
            f"Space {existing.name!r} of project {project!r} holds vectors of size {existing.dim}, not {dim}"
        )


def group_values(ids: Sequence[str], values: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    """Group set_payload ids by identical value (one update per group: labelling 10k points
    with one label is one request, not 10k)."""
    if len(ids) != len(values):
        raise ValueError(f"set_payload got {len(ids)} ids but {len(values)} values")
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for pid, value in zip(ids, values, strict=True):
        if KIND in value:
            check_kind(pid, value)
        key = json.dumps(value, sort_keys=True, default=str)
        groups.setdefault(key, (value, []))[1].append(check_id(pid))
    return list(groups.values())
