"""Undo one history entry (by default the newest one in effect) by writing its old values back.

An undo is itself an entry (why "undo", `undoes` naming the entry), so it can be undone too (a
redo). The rule when rows were changed again later: refuse. Undo writes the old values only
where the current value still equals what the entry wrote; if any row differs, nothing is written
and BadInputError names those items and their current values, so later entries are undone first
(or the items fixed by hand). Points deleted since are skipped (logged): nothing to restore.
"""

from __future__ import annotations

import logging
from typing import Any

from core.auth import Actor, Permission, require
from core.curation import history as hist
from core.curation.points import current_payloads, missing, named, tag_list
from core.errors import BadInputError, NotFoundError
from core.store.base import VectorStore

log = logging.getLogger(__name__)


def normalised(field: str, value: Any) -> Any:
    """A payload value of a history field in the form entries hold: label str | None, tags a
    list of str, reviewed a bool."""
    if field == "tags":
        return tag_list(value)
    if field == "reviewed":
        return bool(value is True or value == 1)
    return None if missing(value) else str(value)


def current_values(store: VectorStore, project: str, points: list[str], field: str) -> dict[str, Any]:
    """point id -> the current value of a history field (points no longer stored are left out)."""
    frame = current_payloads(store, project, points, [field], missing_ok=True)
    return {str(pid): normalised(field, v) for pid, v in frame[field].items()}


def _target(entries: list[hist.HistoryEntry], project: str, entry: str | None) -> hist.HistoryEntry:
    if entry is None:
        live = [e for e in entries if e.why != "undo" and e.undone_by is None]
        if not live:
            raise BadInputError(f"Nothing to undo in project {project!r}: every change is undone already")
        return live[-1]
    found = hist.find_entry(entries, entry)
    matching = [e.entry for e in entries if e.entry.startswith(entry)]
    if found is None and len(matching) > 1:
        raise BadInputError(f"{entry!r} is the start of {len(matching)} history entries ({named(matching)}): "
                            "give more of the id")
    if found is None:
        raise NotFoundError(f"No history entry {entry!r} in project {project!r} "
                            f"(`embedscope history --project {project}` lists them)")
    if found.undone_by is not None:
        raise BadInputError(f"History entry {found.entry} was already undone by {found.undone_by}")
    return found


def undo(store: VectorStore, project: str, entry: str | None = None, *, actor: Actor) -> hist.HistoryEntry:
    """Revert one entry (entry id or a unique prefix; None: the newest change not undone yet,
    undo entries excluded) and record the undo as a new entry, which it returns.

    BadInputError when there is nothing to undo, the entry was undone already, or a row was
    changed again since (naming the items); NotFoundError for an unknown entry id;
    PermissionDeniedError unless actor may change that entry's field (relabel, or tag)."""
    require(actor, Permission.TAG, f"undoing a change in project {project!r}")  # before anything is read
    target = _target(hist.all_entries(store, project), project, entry)
    if target.field == "label":
        require(actor, Permission.RELABEL, f"undoing relabel {target.entry}")
    now = current_values(store, project, [r.point for r in target.rows], target.field)
    rows = [r for r in target.rows if r.point in now]
    gone = len(target.rows) - len(rows)
    if gone:
        log.info("undo %s: %d point(s) no longer in the store are skipped", target.entry, gone)
    moved = [f"{r.dataset}/{r.key} (now {now[r.point]!r}, the entry set {r.new!r})"
             for r in rows if now[r.point] != normalised(target.field, r.new)]
    if moved:
        raise BadInputError(
            f"Cannot undo {target.entry}: {len(moved)} item(s) were changed again since: {named(moved, quoted=False)}. "
            "Undo the later entries first (`embedscope history` lists them).")
    back = [hist.HistoryRow(r.point, r.dataset, r.key, r.new, r.old) for r in rows]
    if back:
        store.set_payload(project, [r.point for r in back], [{target.field: r.new} for r in back])
        if target.field == "label":  # an undone relabel of a box: its image's matches change back
            from core.curation.rematch import rematch_objects

            rematch_objects(store, project, [r.point for r in back])
    return hist.append_entry(store, project, field=target.field, why="undo", who=actor.name, rows=back,
                             note=f"undo of {target.entry}", undoes=target.entry)
