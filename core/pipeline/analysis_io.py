"""Shared plumbing of analyse/compare: load a selection, fingerprint it, (de)serialise tables, export."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import __version__, export
from core.errors import NotEnoughDataError, NotFoundError
from core.filters import Condition, Filter, items_only, names_kind
from core.pipeline.vector_cache import load_vectors
from core.store.base import VectorStore
from core.types import CONFIDENCE, DATASET, KEY, LABEL, PREDICTION, SPLIT, URI, Progress

logger = logging.getLogger(__name__)

# Bump when a change in core/analysis changes results, so persisted results are recomputed.
ANALYSIS_CODE_VERSION = f"{__version__}/analysis-6"
PAYLOAD_FIELDS: tuple[str, ...] = (DATASET, KEY, URI, LABEL, PREDICTION, CONFIDENCE, SPLIT)


@dataclass(frozen=True)
class Selection:
    """The items of some datasets in one space, rows aligned: ids (n,), vectors (n, d) float32
    L2-normalised, payload DataFrame indexed by id with PAYLOAD_FIELDS columns."""

    ids: list[str]
    vectors: np.ndarray
    payload: pd.DataFrame

    def column(self, name: str) -> np.ndarray:
        """A payload column as an object array with None for missing values. (n,)"""
        values = self.payload[name].to_numpy(dtype=object)
        return np.array([None if _missing(v) else v for v in values], dtype=object)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def resolve_datasets(store: VectorStore, project: str, datasets: Sequence[str] | None) -> list[str]:
    """The requested datasets (sorted), or every dataset of the project; NotFoundError names the
    unknown ones."""
    known = sorted(d.name for d in store.list_datasets(project))
    if not datasets:
        if not known:
            raise NotFoundError(f"Project {project!r} has no datasets")
        return known
    unknown = sorted(set(datasets) - set(known))
    if unknown:
        raise NotFoundError(
            f"Dataset(s) {', '.join(map(repr, unknown))} not found in project {project!r}; "
            f"it has: {', '.join(known) or 'none'}")
    return sorted(set(datasets))


def load_selection(store: VectorStore, project: str, space: str, datasets: Sequence[str],
                   *, min_points: int = 2, flt: Filter | None = None,
                   cache_dir: Path | None = None, progress: Progress | None = None) -> Selection:
    """Vectors and payloads of the items (not detection objects) of these datasets in a space,
    narrowed by flt (applied inside the store, e.g. one split of a dataset). The vectors come
    from core.pipeline.vector_cache.load_vectors (one block, unit rows as stored; reused from
    cache_dir, e.g. settings.cache_dir / "vectors", while the space is unchanged)."""
    store.get_space(project, space)  # NotFoundError for an unknown space
    block = load_vectors(store, project, space, _items(datasets, flt), cache_dir=cache_dir, progress=progress)
    if len(block) < min_points:
        where = f" where {_describe(flt)}" if flt else ""
        raise NotEnoughDataError(
            f"Space {space!r} of project {project!r} has {len(block)} item(s) in "
            f"{', '.join(datasets)}{where}; at least {min_points} are needed")
    ids = block.ids.tolist()
    payload = load_payload(store, project, space, datasets, flt=flt).reindex(ids)
    return Selection(ids=ids, vectors=block.vectors, payload=payload)


def load_payload(store: VectorStore, project: str, space: str, datasets: Sequence[str],
                 *, flt: Filter | None = None, cache_dir: Path | None = None) -> pd.DataFrame:
    """Only the payloads (PAYLOAD_FIELDS, indexed by id) of the items of these datasets,
    narrowed by flt. cache_dir: kept there per space revision (core.pipeline.payload_cache)."""
    from core.pipeline.payload_cache import load_payloads

    payload = load_payloads(store, project, space, _items(datasets, flt), list(PAYLOAD_FIELDS), cache_dir)
    for name in PAYLOAD_FIELDS:
        if name not in payload.columns:
            payload[name] = None
    return payload[list(PAYLOAD_FIELDS)]


def _items(datasets: Sequence[str], flt: Filter | None) -> Filter:
    # a flt that names the kind (objects_only(...): Compare on detection objects) is taken as it is
    selection = Filter.datasets(datasets).and_(flt)
    return selection if names_kind(flt) else items_only(selection)


def _describe(flt: Filter) -> str:
    """A filter in words for error messages, e.g. "split = 'test'"."""
    def one(c: Condition) -> str:
        if c.equals is not None:
            return f"{c.field} = {c.equals!r}"
        if c.one_of is not None:
            return f"{c.field} in {list(c.one_of)}"
        return f"a filter on {c.field}"
    return " and ".join([one(c) for c in flt.must] + [f"not {one(c)}" for c in flt.must_not])


def fingerprint(params: dict[str, Any], *parts: Selection) -> str:
    """Hash of (code version, params, ids, vectors, labels, predictions, confidences, datasets,
    splits): any change to the data or the parameters gives another fingerprint. ~0.3 s at
    100k x 512 (the vectors are hashed whole: a cheap digest that cannot miss a change)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(ANALYSIS_CODE_VERSION.encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for part in parts:
        h.update("\n".join(part.ids).encode())
        h.update(np.ascontiguousarray(part.vectors).data)  # the buffer itself: no 2nd copy of the vectors
        for name in (DATASET, SPLIT, LABEL, PREDICTION, CONFIDENCE):
            h.update(json.dumps([None if _missing(v) else v for v in part.payload[name]],
                                default=str).encode())
    return h.hexdigest()


def doc_key(space: str, *names: str) -> str:
    """Document key of a result for one space and dataset selection (short and store-safe)."""
    digest = hashlib.blake2b("\x1f".join(names).encode(), digest_size=8).hexdigest()
    return f"{space}:{digest}"


def frame_to_doc(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as a compact columnar JSON-able dict (floats to 6 significant digits)."""
    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_float_dtype(series.dtype):
            values = significant(series.to_numpy(dtype=float), 6)
            columns[name] = [None if np.isnan(v) else float(v) for v in values]
        else:
            columns[name] = [None if _scalar_missing(v) else _plain(v) for v in series]
    return {"index": [_plain(v) for v in frame.index], "index_name": frame.index.name,
            "columns": columns, "order": list(frame.columns),
            "dtypes": {str(name): str(frame[name].dtype) for name in frame.columns}}


def significant(values: np.ndarray, digits: int) -> np.ndarray:
    """values (float64) rounded to `digits` significant digits: 1.234567e-9 -> 1.23457e-9
    (rounding to decimal places would turn every p-value below 5e-7 into 0). NaN, inf, 0 and
    magnitudes beyond 1e+-290 (where the scale factor would overflow) are kept as they are."""
    out = np.array(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # shift: how many decimal places move the `digits`-th significant digit to the units.
        shift = digits - 1 - np.floor(np.log10(np.abs(out)))
    up = np.isfinite(shift) & (shift >= 0) & (shift <= 290)
    down = np.isfinite(shift) & (shift < 0) & (shift >= -290)
    # Scale by an exact power of ten, round to an integer, divide back: the nearest double to
    # the rounded decimal, so JSON writes it with `digits` digits.
    out[up] = np.round(out[up] * 10.0 ** shift[up]) / 10.0 ** shift[up]
    out[down] = np.round(out[down] / 10.0 ** -shift[down]) * 10.0 ** -shift[down]
    return out


def _scalar_missing(value: Any) -> bool:
    return not isinstance(value, (list, tuple, np.ndarray)) and _missing(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def doc_to_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """Inverse of frame_to_doc: columns come back with the dtype they were saved with (nullable
    Int64 / boolean keep <NA> and full precision; an all-NaN float column stays float)."""
    dtypes: dict[str, str] = doc.get("dtypes", {})  # absent in documents of older versions
    index = pd.Index(doc["index"], name=doc.get("index_name"))
    data = {name: _column(doc["columns"][name], dtypes.get(str(name))) for name in doc["order"]}
    frame = pd.DataFrame(data, index=index)
    return frame[doc["order"]]


def _column(values: list[Any], dtype: str | None) -> Any:
    """One saved column as an array of its saved dtype (as JSON gave it when the dtype is unknown
    or cannot hold the values: object columns of lists, categories...)."""
    if dtype is None or dtype == "object":
        column = np.empty(len(values), dtype=object)  # element by element: lists stay lists
        for i, value in enumerate(values):
            column[i] = value
        return column
    try:
        if dtype.startswith(("float", "Float")):
            return pd.array([np.nan if v is None else v for v in values], dtype=dtype)
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError):
        return _column(values, None)


def export_scores(frame: pd.DataFrame, score: str, path: Path | None = None,
                  *, ascending: bool = False) -> pd.DataFrame:
    """Rows ranked by one score column, reduced to the export columns (id, uri, label,
    prediction, score, dataset, ...); written to path (.csv / .jsonl) when given."""
    if score not in frame.columns:
        raise ValueError(f"score must be one of {list(frame.columns)}, got {score!r}")
    ranked = frame.sort_values(score, ascending=ascending, kind="stable", na_position="last")
    out = export.export_frame(ranked.assign(score=ranked[score]))
    if path is not None:
        export.write(out, path)
    return out
