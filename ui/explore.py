"""Explore-page helpers: the map frame (2-D coords joined to payloads), colour-by columns, selections.

Pure pandas / numpy (no streamlit), so the logic behind the map is tested without a browser.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.types import (
    BOX,
    BOX_AREA,
    CONFIDENCE,
    DATASET,
    IOU,
    KEY,
    LABEL,
    MATCH,
    META,
    PREDICTION,
    REVIEWED,
    SOURCE,
    SPLIT,
    TAGS,
    TEXT,
    URI,
)
from ui import map_geometry as geo
from ui import objects

log = logging.getLogger(__name__)

AGREEMENT = "agreement"
# Analysis columns that can colour the map when an analysis exists (core.pipeline.analyse).
SCORE_NUMERIC: tuple[str, ...] = ("outlier", "mislabel")
SCORE_CATEGORICAL: tuple[str, ...] = ("cluster", "is_error", "duplicate_group")
COLOUR_FIXED: tuple[str, ...] = (LABEL, PREDICTION, AGREEMENT, SPLIT, DATASET, CONFIDENCE)
# Curation fields (core.curation): tags drawn as their sorted, joined text; reviewed as yes / no.
COLOUR_CURATION: tuple[str, ...] = (TAGS, REVIEWED)
# Detection objects (ui.objects): class whatever the source, match status, source; IoU and box size numeric.
COLOUR_OBJECTS: tuple[str, ...] = (objects.CLASS, MATCH, SOURCE, IOU, BOX_AREA)
OBJECT_NUMERIC: tuple[str, ...] = (IOU, BOX_AREA)

AGREE, DISAGREE, UNLABELED, NO_PREDICTION = "label = prediction", "disagree", "unlabeled", \
    "no prediction"
# Errors drawn last (on top) and in red, so they stand out.
AGREEMENT_COLOURS: dict[str, str] = {UNLABELED: "#b8b8b8", NO_PREDICTION: "#8da0cb",
                                     AGREE: "#4c9f70", DISAGREE: "#d62728"}
# Categorical columns with a fixed palette that says what each value means (errors drawn on top).
FIXED_PALETTES: dict[str, dict[str, str]] = {AGREEMENT: AGREEMENT_COLOURS, MATCH: objects.MATCH_COLOURS}
OTHER = "other"
MISSING = "(none)"
GREY = "#c7c7c7"  # missing values of a numeric colour
# Not a class: drawn in greys no palette uses (a class is never grey), unlabeled lighter and smaller.
MISSING_COLOUR, OTHER_COLOUR = "#bdbdbd", "#8c8c8c"
TOP_N = 30  # classes with a colour of their own; the rarer ones share OTHER
# Tableau 10 (its grey swapped for an indigo) for few classes; past 10, Plotly's Dark24 and Alphabet
# without their greys and near-duplicates (~45 distinct hues). No grey: greys mean "not a class".
PALETTE_10 = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
              "#ff9da7", "#9c755f", "#3d348b"]
PALETTE_MANY = ["#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#750D86", "#EB663B",
                "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#6C7C32", "#862A16", "#A777F1", "#620042",
                "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038", "#AA0DFE", "#3283FE", "#85660D",
                "#1C8356", "#16FF32", "#C4451C", "#DEA0FD", "#325A9B", "#FEAF16", "#F8A19F", "#90AD1C",
                "#1CFFCE", "#2ED9FF", "#B10DA1", "#FBE426", "#782AB6", "#1CBE4F", "#C075A6", "#F6222E"]
# Numeric columns with at most this many distinct values are coloured as categories.
MAX_NUMERIC_AS_CATEGORY = 12


@dataclass(frozen=True)
class ColourSpec:
    """How to colour the map by one column.

    kind "categorical": codes (n,) int16 index into categories (-1 = filtered context), colours[i]
    is the colour of categories[i]; categories are in draw order (background first).
    kind "numeric": values (n,) float32 (NaN = missing), drawn with `colorscale`.
    """

    by: str
    kind: Literal["categorical", "numeric"]
    categories: list[str] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)
    codes: np.ndarray | None = None
    values: np.ndarray | None = None
    colorscale: str = "Viridis"
    legend_rank: list[int] = field(default_factory=list)


def build_map_frame(ids: Sequence[str], coords: np.ndarray, payloads: pd.DataFrame,
                    scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per mapped point that has a payload: x, y (float32) + payload (+ score) columns.

    ids: (n,) point ids of the map; coords: (n, 2) float. payloads: indexed by point id (from
    store.payloads). Row order follows the map; ids without a payload are dropped.
    """
    coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
    if len(ids) != len(coords):
        raise ValueError(f"{len(ids)} ids but {len(coords)} coordinates")
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]}, index=pd.Index(list(ids),
                                                                                 name="id"))
    frame = frame.join(payloads, how="inner")
    if scores is not None and not scores.empty:
        extra = [c for c in scores.columns if c not in frame.columns]
        frame = frame.join(scores[extra], how="left")
    if LABEL in frame.columns or PREDICTION in frame.columns:
        frame[AGREEMENT] = agreement(frame)
    classes = objects.class_column(frame)  # detection objects: one class column for both sources
    if classes is not None:
        frame[objects.CLASS] = classes
    return frame


@dataclass(frozen=True)
class MapData:
    """What the Explore map draws, built once per store revision (ui.resources caches it and
    shares it between reruns and sessions: never mutate it).

    frame: build_map_frame's rows; grid: (n, 2) uint16 figure coordinates of those rows
    (ui.map_geometry.quantise); options: colour_options(frame); placed: points placed onto the
    layout since its fit; token: names this build (any input change gives another token), so
    what is derived from it (colours, the figure) can be memoised by it.
    """

    frame: pd.DataFrame
    grid: np.ndarray
    options: list[str]
    placed: int
    token: str


def map_data(ids: Sequence[str], coords: np.ndarray, payloads: pd.DataFrame, scores: pd.DataFrame | None,
             *, n_fitted: int, token: str) -> MapData:
    """The map frame of (ids, coords) joined to payloads (+ scores), with its grid and colour options."""
    frame = build_map_frame(ids, coords, payloads, scores)
    grid = geo.quantise(frame["x"].to_numpy(), frame["y"].to_numpy())
    return MapData(frame, grid, colour_options(frame), max(len(ids) - n_fitted, 0), token)


def agreement(frame: pd.DataFrame) -> pd.Series:
    """Per row: AGREE, DISAGREE, UNLABELED (no label) or NO_PREDICTION (label but no prediction),
    as a categorical (codes, not a string per row: 1M rows of text cost ~1 s to build)."""
    n = len(frame)
    label = frame[LABEL] if LABEL in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    pred = frame[PREDICTION] if PREDICTION in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    no_label, no_pred = label.isna().to_numpy(), pred.isna().to_numpy()
    both = ~no_label & ~no_pred
    same = np.zeros(n, dtype=bool)
    if both.any():
        same[both] = (label[both].astype(str).to_numpy() == pred[both].astype(str).to_numpy())
    codes = np.where(no_label, 0, np.where(no_pred, 1, np.where(same, 2, 3))).astype(np.int8)
    values = pd.Categorical.from_codes(codes, categories=[UNLABELED, NO_PREDICTION, AGREE, DISAGREE])
    return pd.Series(values, index=frame.index, name=AGREEMENT)


def colour_options(frame: pd.DataFrame) -> list[str]:
    """Columns the map can be coloured by, in menu order: fixed fields, analysis scores, metadata.

    Only columns with at least one value are offered ("prediction" disappears without inferences).
    """
    candidates = [*COLOUR_FIXED, *COLOUR_OBJECTS, *COLOUR_CURATION, *SCORE_NUMERIC, *SCORE_CATEGORICAL,
                  *sorted(c for c in frame.columns if c.startswith(f"{META}."))]
    out: list[str] = []
    for name in candidates:
        if name not in frame.columns or name in out:
            continue
        column = frame[name]
        if column.notna().any() and (name in COLOUR_CURATION or _hashable(column)):
            out.append(name)
    return out


def _hashable(column: pd.Series) -> bool:
    try:
        column.head(1000).nunique(dropna=True)
    except TypeError:  # lists / dicts in metadata cannot colour anything
        return False
    return True


def is_numeric(frame: pd.DataFrame, by: str) -> bool:
    """Whether `by` is drawn with a continuous colour scale (else a discrete palette)."""
    if by in SCORE_NUMERIC or by == CONFIDENCE or by in OBJECT_NUMERIC:
        return True
    if by in SCORE_CATEGORICAL or by in COLOUR_FIXED or by in COLOUR_CURATION:
        return False
    column = frame[by]
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return False
    return bool(column.nunique(dropna=True) > MAX_NUMERIC_AS_CATEGORY)


def colour_spec(frame: pd.DataFrame, by: str, reference: pd.DataFrame | None = None,
                top_n: int = TOP_N) -> ColourSpec:
    """The colouring of `frame` by column `by`.

    reference: the unfiltered frame; categories and their colours come from it, so a filter
    never recolours a class. Categorical: top_n most frequent values keep a colour, the rest
    become OTHER, nulls MISSING (two greys no class gets; ui.widgets.scatter draws MISSING smaller). Raises ValueError for an unknown column.
    """
    if by not in frame.columns:
        raise ValueError(f"cannot colour by {by!r}; allowed: {colour_options(frame)}")
    if is_numeric(frame, by):
        values = pd.to_numeric(frame[by], errors="coerce").to_numpy(dtype=np.float32)
        scale = "YlOrRd" if by in SCORE_NUMERIC else "Viridis"
        return ColourSpec(by, "numeric", values=values, colorscale=scale)
    ref = reference if reference is not None and by in reference.columns else frame
    if by in COLOUR_CURATION:
        return _categorical(curation_text(frame, by), curation_text(ref, by), by, top_n)
    return _categorical(frame[by], ref[by], by, top_n)


def curation_text(frame: pd.DataFrame, by: str) -> pd.Series:
    """TAGS as "a, b" (sorted; None without tags), REVIEWED as "reviewed" / "not reviewed"."""
    from core.curation.points import tag_list

    column = frame[by]
    if by == REVIEWED:
        flags = column.fillna(False).astype(bool).to_numpy()
        return pd.Series(np.where(flags, "reviewed", "not reviewed"), index=frame.index, dtype=object)
    out = pd.Series(None, index=frame.index, dtype=object)
    present = column.notna().to_numpy()  # most points carry no tags: format only the others
    out[present] = [", ".join(sorted(tag_list(v))) or None for v in column[present]]
    return out


def _fmt(value: Any) -> str | None:
    """A value as display text (integers without '.0'); None for nulls."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _text_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(codes (n,) int64, texts): row i shows texts[codes[i]], -1 = null. Each distinct value is
    formatted once (a 1M-row column has a few hundred), values that display alike (1, 1.0, "1")
    share a code; texts are in order of first appearance."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    shown = pd.Series([_fmt(v) for v in uniques], dtype=object)
    merged, texts = pd.factorize(shown, use_na_sentinel=True)
    return np.append(merged, -1)[codes], [str(t) for t in texts]


def _counts(codes: np.ndarray, texts: list[str]) -> pd.Series:
    """Rows per text, most frequent first (ties in order of first appearance); nulls left out."""
    counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(texts)), index=texts)
    return counts[counts > 0].sort_values(ascending=False, kind="stable")


def _natural_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _categorical(column: pd.Series, reference: pd.Series, by: str, top_n: int) -> ColourSpec:
    # Vectorised over codes (no Python call per row): colour_spec runs on every colour pick.
    codes, texts = _text_codes(column)
    ref_counts = _counts(codes, texts) if reference is column else _counts(*_text_codes(reference))
    fixed = FIXED_PALETTES.get(by)
    if fixed is not None:  # in the palette's order; a value it does not know after it, in grey
        seen = set(ref_counts.index)
        kept = [c for c in fixed if c in seen] + [c for c in ref_counts.index if c not in fixed][:top_n]
        colours = {c: fixed.get(c, objects.UNMATCHED_COLOUR) for c in kept}
    else:
        kept = list(ref_counts.index[:top_n])  # most frequent first = drawn underneath
        named = sorted(kept, key=_natural_key)  # colours by name order: stable under filters
        palette = PALETTE_10 if len(named) <= len(PALETTE_10) else PALETTE_MANY
        colours = {c: palette[i % len(palette)] for i, c in enumerate(named)}
    present = np.bincount(codes + 1, minlength=len(texts) + 1) > 0  # [0]: a null occurs; [i + 1]: texts[i]
    kept_set = set(kept)
    extra = []
    if any(present[i + 1] and t not in kept_set for i, t in enumerate(texts)):
        extra.append(OTHER)
    if present[0]:
        extra.append(MISSING)
    order = [*extra[::-1], *kept]  # grey background first, then categories
    lookup = {c: i for i, c in enumerate(order)}
    other = lookup.get(OTHER, -1)
    to_order = np.array([lookup.get(t, other) for t in texts] + [lookup.get(MISSING, -1)], dtype=np.int16)
    legend = sorted(kept, key=_natural_key) if fixed is None else kept
    rank = [legend.index(c) if c in legend else len(legend) + 1 for c in order]
    greys = {MISSING: MISSING_COLOUR, OTHER: OTHER_COLOUR}
    return ColourSpec(by, "categorical", categories=order,
                      colours=[colours.get(c, greys.get(c, GREY)) for c in order],
                      codes=to_order[codes], legend_rank=rank)


class PickedIds(list[str]):
    """Ids picked on the map (a list of str), with where they are: `rows`, their positions in the
    map frame whose index is `frame_index` (that very object). The page then takes the selection's rows
    by position instead of looking the ids up (350k ids in a 1M index: ~0.5 s per rerun)."""

    rows: np.ndarray
    frame_index: pd.Index | None

    def __init__(self, ids: Sequence[str] = (), rows: np.ndarray | None = None, index: pd.Index | None = None) -> None:
        super().__init__(ids)
        self.rows = np.asarray(rows if rows is not None else np.zeros(0, np.int64), dtype=np.int64)
        self.frame_index = index


def selection_positions(frame: pd.DataFrame, ids: Sequence[str]) -> np.ndarray:
    """Positions in `frame` of `ids`, in the given order (ids not in the frame skipped, duplicates
    once). Vectorised (one index lookup for all ids): a lasso over 1M points selects hundreds of
    thousands. Ids picked on this frame's map (PickedIds of frame.index) need no lookup."""
    if isinstance(ids, PickedIds) and ids.frame_index is frame.index and len(ids.rows) == len(ids):
        return ids.rows
    positions = frame.index.get_indexer(pd.Index(list(ids), dtype=object))
    positions = positions[positions >= 0]
    _, first = np.unique(positions, return_index=True)  # duplicates dropped on ints, not on strings
    return positions[np.sort(first)]


def selection_rows(frame: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """The rows of `frame` for `ids`, in the given order (ids not in the frame are skipped)."""
    return frame.iloc[selection_positions(frame, ids)]


def display_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of one point for the detail view: main fields first, then metadata."""
    main = [DATASET, KEY, LABEL, PREDICTION, CONFIDENCE, SOURCE, MATCH, IOU, BOX, BOX_AREA, SPLIT, URI, TEXT]
    out = {k: row.get(k) for k in main if row.get(k) is not None and not _isnan(row.get(k))}
    for name, value in row.items():
        if name.startswith(f"{META}.") and value is not None and not _isnan(value):
            out[name] = value
    return out


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)
