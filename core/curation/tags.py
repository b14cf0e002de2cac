"""Tags and review state on points: read-modify-write of the payload, each operation one history entry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.auth import Actor, Permission, require
from core.curation import history as hist
from core.curation.points import current_payloads, rows_of, tag_list
from core.curation.undo import normalised
from core.errors import BadInputError
from core.filters import Condition, Filter
from core.store.base import VectorStore
from core.types import REVIEWED, TAGS

MAX_TAG_CHARS = 100


def check_tags(tags: Sequence[str]) -> list[str]:
    """Tags stripped and de-duplicated (order kept); BadInputError names an empty, too long or
    non-text tag, or says none was given."""
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > MAX_TAG_CHARS:
            raise BadInputError(f"A tag must be text of 1 to {MAX_TAG_CHARS} characters, got {tag!r}")
        out.append(tag.strip())
    if not out:
        raise BadInputError("No tag given")
    return list(dict.fromkeys(out))


def _change(store: VectorStore, project: str, points: Sequence[str], field: str, actor: Actor, why: str,
            note: str, new_value: Callable[[Any], Any]) -> int:
    """Read each point's current value of field (NotFoundError names points not in the project),
    compute the new one, write those that change and record them as one history entry; returns
    how many points changed. Read-modify-write: a concurrent edit of the same points in between
    is overwritten (the history keeps both entries). PermissionDeniedError unless actor may tag."""
    require(actor, Permission.TAG, f"{'tagging' if field == TAGS else 'marking reviewed'} in project {project!r}")
    if not points:
        return 0
    frame = current_payloads(store, project, [str(p) for p in points], [field])
    rows = []
    for pid, dataset, key, value in rows_of(frame, field):
        old = normalised(field, value)
        new = new_value(old)
        if new != old:
            rows.append(hist.HistoryRow(pid, dataset, key, old, new))
    if not rows:
        return 0
    store.set_payload(project, [r.point for r in rows], [{field: r.new} for r in rows])
    hist.append_entry(store, project, field=field, why=why, who=actor.name, rows=rows, note=note)
    return len(rows)


def add_tags(store: VectorStore, project: str, points: Sequence[str], tags: Sequence[str], *, actor: Actor,
             why: str = "manual", note: str = "") -> int:
    """Add tags to the points (a tag already there stays once); returns how many points changed."""
    wanted = check_tags(tags)
    return _change(store, project, points, TAGS, actor, why, note,
                   lambda old: old + [t for t in wanted if t not in old])


def remove_tags(store: VectorStore, project: str, points: Sequence[str], tags: Sequence[str], *, actor: Actor,
                why: str = "manual", note: str = "") -> int:
    """Remove tags from the points; returns how many points changed."""
    unwanted = set(check_tags(tags))
    return _change(store, project, points, TAGS, actor, why, note, lambda old: [t for t in old if t not in unwanted])


def set_reviewed(store: VectorStore, project: str, points: Sequence[str], reviewed: bool, *, actor: Actor,
                 why: str = "manual", note: str = "") -> int:
    """Mark the points reviewed (or not reviewed); returns how many points changed."""
    return _change(store, project, points, REVIEWED, actor, why, note, lambda old: bool(reviewed))


def tagged(*tags: str) -> Filter:
    """Points carrying any of these tags (a keyword match on a list matches any of its elements)."""
    if len(tags) == 1:
        return Filter(must=(Condition(TAGS, equals=tags[0]),))
    return Filter(must=(Condition(TAGS, one_of=tuple(tags)),))


def tag_counts(store: VectorStore, project: str, space: str, flt: Filter | None = None) -> dict[str, int]:
    """How many points of the space carry each tag (among those matching flt), most used first.
    Reads the tags of tagged points only (an is-empty filter on the indexed field)."""
    has_tags = Filter(must_not=(Condition(TAGS, missing=True),)).and_(flt)
    counts: dict[str, int] = {}
    for value in store.payloads(project, space, has_tags, fields=[TAGS])[TAGS]:
        for tag in set(tag_list(value)):
            counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
