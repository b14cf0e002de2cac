"""The payload journal: what each recent payload-only write changed, so a payload cache can patch a frame.

Every payload-only set_payload (labels, tags, review marks; core.store.revisions.payload_only) records
one Entry: each space's token before -> after that write, and the written values grouped by value
with their point ids. A reader holding a frame of a space at token T can follow the entries from T to
the current token and apply their values instead of reading every payload again
(core.pipeline.payload_cache). The journal is bounded (MAX_ENTRIES entries, MAX_IDS ids; a bigger
write is not recorded): the oldest entries are dropped, and a reader that cannot chain back does a
full read. Entries are written BEFORE the tokens they lead to, so a visible token always has its
entry visible. Two entries leaving the same token (two writers of a server racing on one token)
break the chain there; on a server, `floor` (the newest time of a dropped entry) keeps a reader
from trusting an entry whose racing sibling may already be dropped. Edge keeps entries as files
next to the revision files, written atomically by the lease holder (one writer: no race, no
floor); the server as points of its documents collection (core.store.server_meta).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_ENTRIES = 64  # entries kept per project
MAX_IDS = 200_000  # point ids kept per project, all entries together (~8 MB of JSON at most)
RACE_NS = 10 * 10**9  # server: entries this close to a dropped one may have lost their racing sibling
Links = dict[str, tuple[str, str]]  # space -> (token before, token after)
Groups = Sequence[tuple[dict[str, Any], Sequence[str]]]  # (value, point ids) as common.group_values


@dataclass(frozen=True)
class Entry:
    """One payload-only write: each space's tokens before -> after, and the values by point ids."""

    at: int  # time.time_ns() when written
    links: Links
    groups: tuple[tuple[dict[str, Any], tuple[str, ...]], ...]

    @property
    def size(self) -> int:
        """Point ids it holds (what MAX_IDS counts)."""
        return sum(len(ids) for _, ids in self.groups)


def make_entry(links: Links, groups: Groups) -> Entry | None:
    """The entry of one write, or None when it is not recorded (too big, or a value JSON cannot hold)."""
    entry = Entry(time.time_ns(), dict(links), tuple((dict(v), tuple(ids)) for v, ids in groups if ids))
    if entry.size > MAX_IDS:
        return None
    try:
        json.dumps([v for v, _ in entry.groups], allow_nan=False)
    except (TypeError, ValueError):  # numpy scalars, NaN...: not worth a lossy record
        return None
    return entry


def dumps(entry: Entry) -> str:
    """An entry as JSON text."""
    return json.dumps({"at": entry.at, "links": entry.links, "groups": [[v, list(i)] for v, i in entry.groups]})


def loads(text: str) -> Entry:
    """An entry from dumps' text (ValueError / KeyError / TypeError when it is not one)."""
    doc = json.loads(text)
    links = {str(s): (str(b), str(a)) for s, (b, a) in doc["links"].items()}
    groups = tuple((dict(v), tuple(str(i) for i in ids)) for v, ids in doc["groups"])
    return Entry(int(doc["at"]), links, groups)


def dropped(sizes: Sequence[tuple[int, int]]) -> list[int]:
    """Positions of the entries to drop, given each one's (at, size): all but the newest that fit
    within MAX_ENTRIES and MAX_IDS."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][0], reverse=True)
    total = 0
    for rank, i in enumerate(order):
        total += sizes[i][1]
        if rank >= MAX_ENTRIES or total > MAX_IDS:
            return order[rank:]
    return []


def chain(entries: Iterable[Entry], floor: int, space: str, token: str,
          has_frame: Callable[[str], bool], max_links: int = MAX_ENTRIES) -> tuple[str, list[Entry]] | None:
    """Walk back from `token` (the space's current token) to the newest token for which
    has_frame(token) is true: (that token, the entries to apply oldest first), or None when the
    chain breaks (no entry leads to a token, two entries leave one, an entry near a dropped one)."""
    by_after: dict[str, Entry] = {}
    leaving: dict[str, int] = {}
    for entry in entries:
        if space in entry.links:
            before, after = entry.links[space]
            by_after[after] = entry
            leaving[before] = leaving.get(before, 0) + 1
    path: list[Entry] = []
    while len(path) < max_links:
        link = by_after.get(token)
        if link is None or link.at <= floor + RACE_NS:
            return None
        token = link.links[space][0]
        if leaving.get(token, 0) != 1:
            return None
        path.append(link)
        if has_frame(token):
            return token, path[::-1]
    return None


class Journal(Protocol):
    """What a store's payload_journal(project) returns."""

    def read(self) -> tuple[list[Entry], int] | None:
        """(entries, floor), or None when the journal cannot be read (the reader does a full read)."""
        ...


class FileJournal:
    """A project's journal as files <folder>/<time>-<ids>-<uuid>.json (Edge). Written by the lease
    holder only, each file atomically; read without the lease. One writer at a time never forks a
    token, so no floor is kept (read() gives 0)."""

    def __init__(self, folder: Path) -> None:
        self._dir = folder

    def _entries(self) -> list[Path]:
        return sorted(self._dir.glob("*.json")) if self._dir.is_dir() else []

    def append(self, entry: Entry) -> None:
        """Record one write, then drop the files that fall out of the bounds (sizes from the names)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        _atomic(self._dir / f"{entry.at:020d}-{entry.size}-{uuid.uuid4().hex[:8]}.json", dumps(entry))
        files = self._entries()
        for i in dropped([(int(p.name.split("-")[0]), int(p.name.split("-")[1])) for p in files]):
            files[i].unlink(missing_ok=True)

    def read(self) -> tuple[list[Entry], int] | None:
        entries: list[Entry] = []
        try:
            for path in self._entries():
                try:
                    entries.append(loads(path.read_text()))
                except FileNotFoundError:  # dropped by the writer meanwhile: the oldest, a chain stops there
                    continue
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("payload journal %s unreadable (%s): payloads are read in full", self._dir, e)
            return None
        return entries, 0


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def written(groups: Groups, updated: set[str]) -> list[tuple[dict[str, Any], list[str]]]:
    """set_payload's groups narrowed to the ids a write found (what the journal records)."""
    return [(value, [i for i in ids if i in updated]) for value, ids in groups]


def record(append: Callable[[Entry], None], links: Links, groups: Groups) -> None:
    """Append the entry of a payload-only write (nothing when it is too big to record)."""
    entry = make_entry(links, groups) if links else None
    if entry is None:
        return
    try:
        append(entry)
    except Exception as e:  # noqa: BLE001 - the write is done: its tokens must move regardless
        # (an entry missing breaks the chain: readers do a full read, never a stale one)
        log.warning("payload journal entry not recorded (%s: %s)", type(e).__name__, e)
