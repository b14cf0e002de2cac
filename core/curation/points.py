"""The current payload of chosen points of a project (read across its spaces), and naming points by key."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from core.errors import BadInputError, NotFoundError
from core.filters import Filter
from core.ids import point_id
from core.store.base import VectorStore
from core.types import DATASET, KEY, TAGS

MAX_NAMED = 5  # how many bad ids / keys an error message names


def missing(value: Any) -> bool:
    """True for what a payload frame holds where a field is absent or null (None, NaN, pd.NA)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def tag_list(value: Any) -> list[str]:
    """A payload's tags as a list of str ([] when absent or null; a lone string is one tag)."""
    if isinstance(value, str):
        return [value]
    if hasattr(value, "tolist"):  # a numpy array, as a Parquet round trip hands lists back
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if not missing(v)]
    return []


def named(items: Iterable[str], *, quoted: bool = True) -> str:
    """The first MAX_NAMED items (quoted), for an error message ("'a', 'b' and 3 more")."""
    items = list(items)
    shown = ", ".join(repr(i) if quoted else str(i) for i in items[:MAX_NAMED])
    return shown + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def check_points(points: Sequence[str]) -> list[str]:
    """points as canonical point id strings, duplicates dropped (first kept); BadInputError names
    what is not a point id."""
    return list(dict.fromkeys(canonical_ids(points)))


def canonical_ids(points: Sequence[str]) -> list[str]:
    """points as canonical point id strings (lower case, with hyphens), aligned with points;
    BadInputError names what is not a point id."""
    out, bad = [], []
    for p in points:
        try:
            out.append(str(uuid.UUID(str(p))))
        except ValueError:
            bad.append(str(p))
    if bad:
        raise BadInputError(f"Not point ids (UUIDs): {named(bad)}")
    return out


def rows_of(frame: pd.DataFrame, field: str) -> list[tuple[str, str, str, Any]]:
    """(point id, dataset, key, value of field) per row of a current_payloads frame (read by column:
    iterrows builds a Series per row, 2.5 s at 10k rows)."""
    return list(zip([str(i) for i in frame.index], [str(v) for v in frame[DATASET]], [str(v) for v in frame[KEY]],
                    frame[field].tolist(), strict=True))


def current_payloads(store: VectorStore, project: str, points: Sequence[str], fields: Sequence[str],
                     *, missing_ok: bool = False) -> pd.DataFrame:
    """The payload fields (plus dataset and key) of the points, indexed by id in the order given.

    set_payload writes every space of the project, so each point is read from the first space
    holding it. NotFoundError names the points in no space (missing_ok=True: they are left out).
    """
    ids = check_points(points)
    columns = list(dict.fromkeys([DATASET, KEY, *fields]))
    remaining, frames = set(ids), []
    for info in store.list_spaces(project):
        if not remaining:
            break
        frame = store.payloads(project, info.name, Filter.ids(sorted(remaining)), fields=columns)
        frames.append(frame)
        remaining -= set(frame.index)
    if remaining and not missing_ok:
        raise NotFoundError(f"{len(remaining)} point(s) not in project {project!r}: {named(sorted(remaining))}")
    found = [i for i in ids if i not in remaining]
    if not frames:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="id"))
    frame = pd.concat(frames).reindex(columns=columns).loc[found]
    frame.index.name = "id"
    if TAGS in frame.columns:
        frame[TAGS] = [tag_list(v) for v in frame[TAGS]]
    return frame


def points_of_keys(store: VectorStore, project: str, refs: Sequence[tuple[str, str]]) -> list[str]:
    """The point ids of (dataset, item key) pairs; NotFoundError names the pairs not in the project."""
    ids = [point_id(project, dataset, key) for dataset, key in refs]
    found = set(current_payloads(store, project, ids, [], missing_ok=True).index)
    absent = [f"{d}/{k}" for (d, k), pid in zip(refs, ids, strict=True) if pid not in found]
    if absent:
        raise NotFoundError(f"{len(absent)} item(s) not in project {project!r}: {named(absent)}")
    return ids
