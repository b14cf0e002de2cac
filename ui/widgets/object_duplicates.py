"""The object problems panel's Duplicates / leakage tab: near-duplicate boxes (one object boxed twice, one crop
repeated across images) from the persisted object analysis, group by group as crops, with curation actions."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core import export
from core.types import PARENT
from ui.page import PageContext
from ui.text import md
from ui.widgets.curation import curation_actions, finding_actions
from ui.widgets.grid import paged_grid

MAX_GROUPS = 10  # groups drawn (leaking and biggest first); the CSV holds all
FIELDS = ("class", "source", "match", "dataset")
EMPTY = ("No near-duplicate boxes at this similarity threshold: no object is boxed twice and no crop repeats "
         "across images.")
EXPLANATION = ("Boxes whose crops are near-identical (cosine similarity past the threshold, among label boxes "
               "and among predictions apart: a prediction on its label is no duplicate). In one image: one "
               "object boxed twice; across images: a repeated crop. Leakage: a group spanning datasets or splits.")


def group_line(row: pd.Series, members: pd.DataFrame) -> str:
    """"**Group 2** · 2 label boxes · one image (boxed twice) · train, test · leakage" (Markdown, escaped)."""
    images = members[PARENT].nunique() if PARENT in members.columns and len(members) else 0
    where = "one image (boxed twice)" if images == 1 else f"{images} images"
    source = str(row.get("source") or "object")
    noun = f"{source} box" + ("" if int(row["size"]) == 1 else "es")
    leak = " · :material/warning: leakage across datasets/splits" if bool(row.get("leakage")) else ""
    return (f"**Group {int(row['group'])}** · {int(row['size'])} {md(noun)} · {where} · "
            f"{', '.join(md(str(d)) for d in row['datasets'])}{leak}")


def duplicates_tab(ctx: PageContext, analysis: Any, key: str) -> list[str] | None:
    """The duplicate groups (leaking first, then biggest) as crops with Select group and curation
    (tag / label / review the group, e.g. tag the extra boxes "duplicate"); a CSV of every member.
    Returns the ids to select on the map (a group, or one clicked crop), or None."""
    groups: pd.DataFrame = getattr(analysis, "duplicates", pd.DataFrame())
    boxes: pd.DataFrame = getattr(analysis, "duplicate_boxes", pd.DataFrame())
    if groups is None or groups.empty or boxes is None or boxes.empty:
        st.success(EMPTY, icon=":material/check_circle:")
        return None
    st.caption(EXPLANATION)
    boxes = boxes.assign(**{"class": _classes(boxes)})
    leaking = int(boxes["leakage"].sum()) if "leakage" in boxes.columns else 0
    st.markdown(f"**{len(groups):,} group{'s' if len(groups) != 1 else ''}** of near-duplicate boxes"
                + (f" · {leaking:,} boxes leak across datasets/splits" if leaking else ""))
    st.download_button(f"Download all {len(boxes):,} duplicate boxes as CSV",
                       lambda: export.to_csv(export.export_frame(boxes, extra=("box", "source", "match",
                                                                               "duplicate_group", "leakage"))),
                       file_name="object_duplicates.csv", mime="text/csv", key=f"{key}.csv",
                       icon=":material/download:")
    finding_actions(ctx, boxes.index.astype(str).tolist(), key=f"{key}.all")
    ordered = groups.sort_values(["leakage", "size"], ascending=False, kind="stable")
    for _, row in ordered.head(MAX_GROUPS).iterrows():
        group = int(row["group"])
        ids = [str(i) for i in row["ids"] if i in boxes.index]
        if not ids:  # its boxes were deleted since the analysis ran
            continue
        head, button = st.columns([4, 1], vertical_alignment="center")
        head.markdown(group_line(row, boxes.loc[ids]))
        with head:
            curation_actions(ctx, ids, key=f"{key}.cur.{group}", count=len(ids))
        if button.button("Select group", key=f"{key}.sel.{group}", width="stretch", icon=":material/select_all:"):
            return ids
        clicked = paged_grid(boxes.loc[ids], key=f"{key}.grid.{group}", columns=8, fields=FIELDS, page_size=8,
                             sortable=False)
        if clicked is not None:
            return [clicked]
    if len(groups) > MAX_GROUPS:
        st.caption(f"… and {len(groups) - MAX_GROUPS:,} more groups (all in the CSV).")
    return None


def _classes(frame: pd.DataFrame) -> list[Any]:
    from core.analysis.object_findings import object_class

    return list(object_class(frame)) if len(frame) else []
