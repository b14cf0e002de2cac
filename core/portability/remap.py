"""What changes when a project lands in another store: its revision tokens, and its point ids on a rename.

Revision tokens: results (maps, analyses, comparisons, scorecards) record the space revision they
were computed at (core.pipeline.freshness). The importing store gives each space a fresh token, so
every recorded token equal to the exported one becomes the new one, and one sharing only its
vectors part keeps "labels changed since" (new vectors part + its old payload part): a map that was
current before the move is current after it, and no result is recomputed for nothing.

Point ids: ids are uuid5 of (project, dataset, key) (core.ids), and label import, curation by key
and re-ingest compute them again from the project's name. A project imported under a new name
therefore gets the ids that name gives, in its payloads (parent, match_id) and its curation
documents (history, collections, views); results whose bytes depend on the ids (DERIVED_KINDS)
are left out and computed again on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from core.ids import point_id
from core.store.revisions import vectors_part

# Document kinds that are results computed from the points (sorted ids, fingerprints of ids):
# core.pipeline.map_doc.MAP_KIND, analyse / analyse_objects / compare / evaluate DOC_KIND
# (tests/core/test_portability.py checks this list against those constants).
DERIVED_KINDS = ("map", "analysis", "object_analysis", "compare", "scorecard")
_TOKEN = re.compile(r"^[0-9a-f]{32}(\.[0-9a-f]{32})?$")
Swap = Callable[[str], str]


def walk(value: Any, swap: Swap) -> Any:
    """value with swap applied to every string inside it (dict keys too), other values unchanged."""
    if isinstance(value, str):
        return swap(value)
    if isinstance(value, dict):
        return {swap(k): walk(v, swap) for k, v in value.items()}
    if isinstance(value, list):
        return [walk(v, swap) for v in value]
    return value


def revision_swap(pairs: Iterable[tuple[str, str]]) -> Swap:
    """swap(text) turning each exported space token into the imported one (see the module docstring)."""
    full = dict(pairs)
    parts = {vectors_part(old): vectors_part(new) for old, new in full.items()}

    def swap(text: str) -> str:
        if not _TOKEN.match(text):
            return text
        if text in full:
            return full[text]
        head = vectors_part(text)
        return parts[head] + text[len(head):] if head in parts else text

    return swap


def id_map(old_project: str, new_project: str, refs: Iterable[tuple[str, str | None, str | None]]) -> dict[str, str]:
    """old id -> the id the new project name gives, for each (id, dataset, key) whose id is the
    old name's (an id made otherwise is kept: nothing could compute it again anyway)."""
    mapping: dict[str, str] = {}
    for pid, dataset, key in refs:
        if dataset is not None and key is not None and pid == point_id(old_project, dataset, key):
            mapping[pid] = point_id(new_project, dataset, key)
    return mapping


def chain(*swaps: Swap) -> Swap:
    """One swap applying each in turn."""
    def swap(text: str) -> str:
        for one in swaps:
            text = one(text)
        return text

    return swap


def id_swap(mapping: dict[str, str]) -> Swap:
    """swap(text) giving the new id of an old one (anything else unchanged)."""
    return lambda text: mapping.get(text, text)

