"""Payload filter widgets (label / prediction / split / dataset / tags / reviewed / metadata / confidence) -> Filter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.curation.points import tag_list
from core.display import shorten
from core.filters import Condition, Filter
from core.types import BOX_AREA, CONFIDENCE, DATASET, IOU, LABEL, MATCH, META, PREDICTION, REVIEWED, SOURCE, SPLIT, TAGS
from ui.text import md

# Facet columns offered as multiselects, in this order.
FACETS: tuple[str, ...] = (DATASET, LABEL, PREDICTION, SPLIT, SOURCE, MATCH)  # the last two: detection objects
# Numeric fields offered as range sliders ([min, max] facets), with their titles.
RANGES: dict[str, str] = {CONFIDENCE: "Confidence", BOX_AREA: "Box area (px²)", IOU: "IoU"}
# Metadata fields with more distinct values than this are not offered (free-text-like).
MAX_META_VALUES = 200
REVIEW_STATES = ("any", "reviewed", "not reviewed")


def distinct_tags(column: pd.Series) -> list[str]:
    """The tags used in a TAGS payload column (lists; numpy arrays after a Parquet round trip), sorted."""
    seen: set[str] = set()
    for value in column.dropna():
        seen.update(tag_list(value))
    return sorted(seen)


def facets_from_frame(df: pd.DataFrame) -> dict[str, list[Any]]:
    """Distinct values per filterable column of a payload frame (sorted, nulls dropped).

    Returns {field: values}; `meta.*` columns only when they have <= MAX_META_VALUES values, and
    RANGES fields (confidence, box area, IoU) as [min, max] when present, TAGS as the tags used,
    REVIEWED as [True] when an item is.
    """
    facets: dict[str, list[Any]] = {}
    if TAGS in df.columns:
        tags = distinct_tags(df[TAGS])
        if tags:
            facets[TAGS] = tags
    if REVIEWED in df.columns and df[REVIEWED].fillna(False).astype(bool).any():
        facets[REVIEWED] = [True]
    for column in df.columns:
        if column in FACETS or column.startswith(f"{META}."):
            values = df[column].dropna()
            try:
                distinct = sorted(values.unique().tolist(), key=str)
            except TypeError:  # unhashable (lists in metadata): not a facet
                continue
            if distinct and (column in FACETS or len(distinct) <= MAX_META_VALUES):
                facets[column] = distinct
    for column in RANGES:
        if column in df.columns:
            numbers = pd.to_numeric(df[column], errors="coerce").dropna()
            if len(numbers):
                facets[column] = [float(numbers.min()), float(numbers.max())]
    return facets


def _one_of(field: str, values: Sequence[Any]) -> Condition:
    return Condition(field, one_of=tuple(values))


def payload_filter_widgets(df_or_facets: pd.DataFrame | Mapping[str, Sequence[Any]], key: str,
                           container: Any = None) -> Filter:
    """Render filter widgets and return the Filter they describe (empty Filter = everything).

    df_or_facets: a payload DataFrame (from store.payloads) or {field: distinct values}
    (CONFIDENCE: [min, max]). key: a unique prefix for the widget keys of this instance.
    Multiselects restrict to the chosen values; "only unlabeled" keeps points without a label;
    Tags keeps points carrying any of the chosen tags; Reviewed keeps (not) reviewed points.
    """
    facets = (facets_from_frame(df_or_facets) if isinstance(df_or_facets, pd.DataFrame)
              else {k: list(v) for k, v in df_or_facets.items()})
    box = container if container is not None else st
    must: list[Condition] = []
    for field in FACETS:
        values = facets.get(field) or []
        if len(values) > 1:
            # Options are plain text (not Markdown) in Streamlit; shortened so one long value
            # cannot widen the sidebar.
            chosen = box.multiselect(field.capitalize(), values, key=f"{key}.{field}",
                                     placeholder="all", format_func=shorten)
            if chosen:
                must.append(_one_of(field, chosen))
    if box.checkbox("Only unlabeled", key=f"{key}.unlabeled"):
        must.append(Condition(LABEL, missing=True))
    must_not: list[Condition] = []
    if facets.get(TAGS):
        chosen = box.multiselect("Tags", facets[TAGS], key=f"{key}.{TAGS}", placeholder="any",
                                 format_func=shorten, help="Points carrying any of these tags")
        if chosen:
            must.append(_one_of(TAGS, chosen))  # a keyword match on a list: any element matches
    if facets.get(REVIEWED):
        review = box.selectbox("Reviewed", REVIEW_STATES, key=f"{key}.{REVIEWED}")
        if review == "reviewed":
            must.append(Condition(REVIEWED, equals=True))
        elif review == "not reviewed":  # never reviewed: the flag absent or false
            must_not.append(Condition(REVIEWED, equals=True))
    meta_fields = sorted(f for f in facets if f.startswith(f"{META}."))
    if meta_fields:
        field = box.selectbox("Metadata field", ["(none)", *meta_fields], key=f"{key}.meta_field",
                              format_func=shorten)
        if field != "(none)":
            chosen = box.multiselect(f"{md(field[len(META) + 1:])} values", facets[field],
                                     key=f"{key}.meta_values.{field}", placeholder="all",
                                     format_func=shorten)
            if chosen:
                must.append(_one_of(field, chosen))
    for field, title in RANGES.items():
        bounds = facets.get(field)
        if bounds and bounds[0] < bounds[1]:
            low, high = box.slider(title, float(bounds[0]), float(bounds[1]),
                                   (float(bounds[0]), float(bounds[1])), key=f"{key}.{field}")
            if (low, high) != (float(bounds[0]), float(bounds[1])):
                must.append(Condition(field, gte=float(low), lte=float(high)))
    return Filter(must=tuple(must), must_not=tuple(must_not))
