"""Compare-page choice of the two sides (datasets, or splits of one) and their map scope."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from core.filters import Condition, Filter, items_only, objects_only
from core.pipeline.compare_sides import CompareSide
from core.types import DATASET, ITEM_KIND, OBJECT_KIND, SPLIT
from ui import resources
from ui.page import PageContext

PICK_A, PICK_B = "compare.a", "compare.b"
_CHOSEN = "es.compare_pair"  # persistent (a, b): widget keys are dropped on a page switch
B_NAMES = ("production", "prod", "test", "validation", "val")
POINTS_KEY = "compare.points"  # images | objects, offered when the sides have detection objects
POINTS = {"images": ITEM_KIND, "objects": OBJECT_KIND}


def dataset_choices(ctx: PageContext) -> list[str]:
    """Datasets of the project with points in the sidebar's space."""
    return [d.name for d in ctx.all_datasets if d.counts.get(ctx.space or "", 0) > 0]


def split_values(ctx: PageContext, datasets: Sequence[str]) -> dict[str, list[str]]:
    """dataset -> its distinct split values (sorted), read from the cached payloads."""
    assert ctx.project is not None and ctx.space is not None
    if not datasets:
        return {}
    frame = resources.cached_payloads(ctx.project, ctx.space, datasets, fields=(DATASET, SPLIT),
                                      flt=items_only())  # detection objects repeat splits
    if frame.empty or SPLIT not in frame.columns:
        return {}
    # Only text splits: a side's filter matches the payload value exactly, and the UI passes
    # sides as text.
    texts = frame[frame[SPLIT].map(lambda v: isinstance(v, str) and v != "").astype(bool)]
    return {str(d): sorted(set(g[SPLIT])) for d, g in texts.groupby(DATASET)}


def side_choices(ctx: PageContext) -> list[str]:
    """Names (CompareSide.name) of the sides to offer: every dataset with points in the space,
    each followed by its splits when it holds two or more split values."""
    datasets = dataset_choices(ctx)
    splits = split_values(ctx, datasets)
    names: list[str] = []
    for dataset in datasets:
        names.append(dataset)
        if len(splits.get(dataset, [])) >= 2:
            names += [CompareSide(dataset, value).name for value in splits[dataset]]
    return names


def default_pair(names: Sequence[str]) -> tuple[str, str]:
    """(A, B): "train" vs "production" (or prod / test / validation) when present."""
    if len(names) < 2:
        raise ValueError(f"need two datasets to compare, got {list(names)}")
    a = "train" if "train" in names else names[0]
    b = next((n for n in B_NAMES if n in names and n != a), None)
    return a, b or next(n for n in reversed(names) if n != a)


def default_sides(names: Sequence[str]) -> tuple[str, str]:
    """(A, B) side names: default_pair over whole datasets when there are two or more, else
    over the split values of the one dataset (train vs production / test, by split)."""
    sides = [CompareSide.parse(n) for n in names]
    whole = [s.name for s in sides if s.split is None]
    by_split = {s.split: s for s in sides if s.split is not None}
    if len(whole) < 2 and len(by_split) >= 2:
        a, b = default_pair(list(by_split))
        return by_split[a].name, by_split[b].name
    return default_pair(whole if len(whole) >= 2 else names)


def pick_sides(names: Sequence[str]) -> tuple[CompareSide, CompareSide]:
    """Two selectboxes (A = the reference, B = the one examined); remembered across pages."""
    a0, b0 = st.session_state.get(_CHOSEN) or default_sides(names)
    if a0 not in names or b0 not in names or a0 == b0:
        a0, b0 = default_sides(names)
    st.session_state.setdefault(PICK_A, a0)
    st.session_state.setdefault(PICK_B, b0)
    what = "dataset or split" if any(CompareSide.parse(n).split for n in names) else "dataset"
    left, right = st.columns(2)
    a = left.selectbox(f"Reference {what} (A)", names, key=PICK_A,
                       help="What the model knows, usually the training set")
    b = right.selectbox(f"{what.capitalize()} to examine (B)", names, key=PICK_B,
                        help="Usually production / newly collected data; labels not needed")
    st.session_state[_CHOSEN] = (a, b)
    return CompareSide.parse(str(a)), CompareSide.parse(str(b))


def points_choice(ctx: PageContext, a: CompareSide, b: CompareSide) -> str:
    """"Points: images | objects" when the two sides have detection objects in the space (a space of
    objects only, e.g. "-roi", compares its objects without asking); the point kind to compare."""
    assert ctx.project is not None and ctx.space is not None
    datasets = sorted({a.dataset, b.dataset})
    count = resources.object_count(ctx.project, ctx.space, datasets)
    if count == 0:
        return ITEM_KIND
    if resources.item_count(ctx.project, ctx.space, datasets) == 0:
        st.caption(f"Comparing {count:,} detection objects (this space holds no image points)")
        return OBJECT_KIND
    chosen = st.segmented_control(
        "Points", list(POINTS), default="images", key=POINTS_KEY,
        help="Images: compare the two sides image by image. Objects: compare their label and prediction "
             f"boxes ({count:,}), e.g. which kinds of objects B has that A lacks; regions show crops.")
    return POINTS.get(str(chosen), ITEM_KIND)


def map_scope(a: CompareSide, b: CompareSide, kind: str = ITEM_KIND) -> tuple[list[str], Filter | None]:
    """(datasets, flt) of the joint map of two sides (of their `kind` points). Splits narrow it to their
    split values; a whole dataset next to a split cannot be one Filter (it has no OR), so that map also
    holds the split dataset's other items, which side_codes leaves out of the picture."""
    datasets = sorted({a.dataset, b.dataset})
    flt = (None if a.split is None or b.split is None
           else Filter(must=(Condition(SPLIT, one_of=tuple(sorted({a.split, b.split}))),)))
    return datasets, objects_only(flt) if kind == OBJECT_KIND else flt


def side_codes(frame: pd.DataFrame, a: CompareSide, b: CompareSide) -> np.ndarray:
    """Per row of a payload frame: 0 in side A, 1 in side B, -1 in neither. (n,) int16"""
    codes = np.full(len(frame), -1, dtype=np.int16)
    datasets = frame[DATASET].to_numpy(dtype=object)
    splits = (frame[SPLIT] if SPLIT in frame.columns
              else pd.Series(None, index=frame.index)).to_numpy(dtype=object)
    for code, side in ((0, a), (1, b)):
        inside = datasets == side.dataset
        if side.split is not None:
            inside &= splits == side.split
        codes[inside] = code
    return codes


def side_payloads(ctx: PageContext, a: CompareSide, b: CompareSide, kind: str = ITEM_KIND) -> pd.DataFrame:
    """Payloads (indexed by id) of the points of the two sides only (objects: with their box)."""
    assert ctx.project is not None and ctx.space is not None
    datasets, flt = map_scope(a, b, kind)
    payloads = resources.cached_payloads(ctx.project, ctx.space, datasets, flt=flt)
    return payloads[side_codes(payloads, a, b) >= 0]
