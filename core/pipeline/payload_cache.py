"""A selection's payload columns kept on disk as Parquet per store revision, so a reopen needs no scroll.

Reading the payloads of every point is a scroll through the store in which the binding makes a
Python object per point (300k points: ~7 s on Edge, ~25 s at 1M), and the Explore page needs them
to colour, filter and list its map. load_payloads reads them once (store.payloads), writes the
frame under cache_dir as one Parquet file keyed by (project, space, filter, fields, revision) and
reads that file back while the space's revision is unchanged (300k rows: ~0.2 s, columnar, no
object per point). Any write to the space moves the revision, so a stale frame is never served.
After payload-only writes (tags, labels, review marks) the previous revision's file is patched
with the values the store's payload journal recorded since (core.store.journal,
core.pipeline.payload_patch) instead of read again: 1M points, ~12 s -> ~1.1 s. Older revisions of
the same selection are deleted when a new one is written, and the whole cache is trimmed to
MAX_FILES (least recently used first). A frame Parquet cannot hold (lists mixed with numbers in
one metadata field) is returned uncached.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from core.config import Settings
from core.filters import Filter
from core.pipeline.payload_patch import patch
from core.store.base import VectorStore
from core.store.journal import chain

log = logging.getLogger(__name__)

MAX_FILES = 32  # cached frames kept, all selections together (1M rows x 9 fields: ~25 MB each)
_SUFFIX = ".parquet"


def cache_folder(settings: Settings) -> Path:
    """Where the dashboard keeps payload frames: <cache dir>/payloads."""
    return settings.cache_dir / "payloads"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def entry(root: Path, project: str, space: str, flt: Filter | None, fields: Sequence[str] | None,
          revision: str) -> Path:
    """<root>/<hash(project, space, filter, fields)>/<hash(revision)>.parquet: the other revisions
    of a selection are its siblings (deleted when a new one is written)."""
    selection = _digest(project, space, repr(flt), repr(tuple(fields) if fields is not None else None))
    return root / selection / _name(revision)


def _name(revision: str) -> str:
    return f"{_digest(revision)}{_SUFFIX}"


def is_cached(store: VectorStore, project: str, space: str, flt: Filter | None = None,
              fields: Sequence[str] | None = None, cache_dir: Path | None = None) -> bool:
    """Whether load_payloads would read these payloads from the cache (no scroll): a file check."""
    if cache_dir is None:
        return False
    return entry(cache_dir, project, space, flt, fields, store.revision(project, space)).is_file()


def load_payloads(store: VectorStore, project: str, space: str, flt: Filter | None = None,
                  fields: Sequence[str] | None = None, cache_dir: Path | None = None) -> pd.DataFrame:
    """store.payloads(project, space, flt, fields), from the cache when the space's revision is
    unchanged since it was written (None cache_dir: always from the store)."""
    revision = store.revision(project, space)  # before reading: a write meanwhile shows next time
    path = entry(cache_dir, project, space, flt, fields, revision) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            frame = pd.read_parquet(path)
            os.utime(path)  # recently used: trimmed last
            return frame
        except (OSError, ValueError) as e:  # a torn or foreign file: read the store instead
            log.warning("payload cache %s unreadable (%s); reading the store", path, e)
    if path is not None:
        patched = _patched(store, project, space, flt, fields, revision, path)
        if patched is not None:
            return patched
    frame = store.payloads(project, space, flt, list(fields) if fields is not None else None)
    if path is not None and store.revision(project, space) == revision:
        _write(path, frame)
    return frame


def _patched(store: VectorStore, project: str, space: str, flt: Filter | None, fields: Sequence[str] | None,
             revision: str, path: Path) -> pd.DataFrame | None:
    """The frame at `revision` made from a cached older frame of the same selection plus the
    payload journal's writes since (core.store.journal), or None: no journal, no chain back to a
    cached frame, or a write this cannot apply exactly (the caller then reads the store)."""
    opener = getattr(store, "payload_journal", None)  # a store without one: always the full read
    read = opener(project).read() if opener is not None else None
    if read is None:
        return None
    entries, floor = read
    found = chain(entries, floor, space, revision, lambda token: path.with_name(_name(token)).is_file())
    if found is None:
        return None
    base, links = found
    try:
        frame = pd.read_parquet(path.with_name(_name(base)))
    except (OSError, ValueError) as e:
        log.warning("payload cache of revision %s unreadable (%s); reading the store", base, e)
        return None
    changed = patch(frame, links, flt, fields)
    if changed is None or not _write(path, frame):
        return None
    if changed:  # as a cache hit gives them (Parquet's lists and nulls): the changed columns, in memory
        buffer = io.BytesIO()  # (reading them back from the file would read its 1M-id index too: 0.4 s)
        frame[changed].to_parquet(buffer, index=False)
        back = pd.read_parquet(buffer)
        for column in changed:
            frame[column] = back[column].set_axis(frame.index)
    return frame


def _write(path: Path, frame: pd.DataFrame) -> bool:
    """Write atomically (a temp file renamed), then drop the selection's older revisions and trim;
    False when Parquet cannot hold the frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(temp, index=True)
        os.replace(temp, path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for unstorable columns
        temp.unlink(missing_ok=True)
        log.info("payloads of %d rows not cached (%s: %s)", len(frame), type(e).__name__, e)
        return False
    for other in path.parent.glob(f"*{_SUFFIX}"):
        if other != path:
            other.unlink(missing_ok=True)
    _trim(path.parent.parent)
    return True


def _trim(root: Path, keep: int = MAX_FILES) -> None:
    files = sorted(root.glob(f"*/*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
