"""Curated fields follow an item into a space added later, so every space of a project keeps one truth.

set_payload writes the curated fields (label, tags, review mark, original label) into every space
that exists at the time; a space ingested afterwards gets its payloads from the manifest, which
still carries the label before the fix. carry_curation overwrites those fields, for the points
the history names, with their values in a space that already holds them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from core.curation import history as hist
from core.curation.points import missing, tag_list
from core.filters import Filter
from core.store.base import VectorStore
from core.types import LABEL, ORIGINAL_LABEL, REVIEWED, TAGS

log = logging.getLogger(__name__)

CURATED: tuple[str, ...] = (LABEL, ORIGINAL_LABEL, TAGS, REVIEWED)


def curated_points(store: VectorStore, project: str) -> set[str]:
    """Ids of every point a history entry of the project changed (empty, and one key listing, when
    the project has no history)."""
    return {r.point for e in hist.all_entries(store, project) for r in e.rows}


def carry_curation(store: VectorStore, project: str, space: str, ids: Sequence[str],
                   payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """payloads (aligned with ids, about to be upserted into `space`) with the CURATED fields of
    curated points taken from another space of the project that holds them; the others unchanged."""
    out = [dict(p) for p in payloads]
    if not store.list_documents(project, hist.KIND):
        return out
    wanted = curated_points(store, project) & {str(i) for i in ids}
    others = [s.name for s in store.list_spaces(project) if s.name != space]
    found: dict[str, dict[str, Any]] = {}
    for other in others:
        if not wanted - set(found):
            break
        frame = store.payloads(project, other, Filter.ids(sorted(wanted - set(found))), fields=list(CURATED))
        found.update({str(pid): row for pid, row in zip(frame.index, frame.to_dict("records"), strict=True)})
    for payload, pid in zip(out, ids, strict=True):
        row = found.get(str(pid))
        if row is not None:
            payload.update({LABEL: None if missing(row[LABEL]) else row[LABEL],
                            ORIGINAL_LABEL: None if missing(row[ORIGINAL_LABEL]) else row[ORIGINAL_LABEL],
                            TAGS: tag_list(row[TAGS]), REVIEWED: bool(row[REVIEWED] is True or row[REVIEWED] == 1)})
    if found:
        log.info("carried the curated fields of %d point(s) into %s/%s", len(found), project, space)
    return out
