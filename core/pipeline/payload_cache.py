"""A selection's payload columns kept on disk as Parquet per store revision, so a reopen needs no scroll.

Reading the payloads of every point is a scroll through the store in which the binding makes a
Python object per point (300k points: ~7 s on Edge, ~25 s at 1M), and the Explore page needs them
to colour, filter and list its map. load_payloads reads them once (store.payloads), writes the
frame under cache_dir as one Parquet file keyed by (project, space, filter, fields, revision) and
reads that file back while the space's revision is unchanged (300k rows: ~0.2 s, columnar, no
object per point). Any write to the space moves the revision, so a stale frame is never served;
older revisions of the same selection are deleted when a new one is written, and the whole cache
is trimmed to MAX_FILES (least recently used first). A frame Parquet cannot hold (lists mixed
with numbers in one metadata field) is returned uncached.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from core.config import Settings
from core.filters import Filter
from core.store.base import VectorStore

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
    return root / selection / f"{_digest(revision)}{_SUFFIX}"


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
    frame = store.payloads(project, space, flt, list(fields) if fields is not None else None)
    if path is not None and store.revision(project, space) == revision:
        _write(path, frame)
    return frame


def _write(path: Path, frame: pd.DataFrame) -> None:
    """Write atomically (a temp file renamed), then drop the selection's older revisions and trim."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(temp, index=True)
        os.replace(temp, path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for unstorable columns
        temp.unlink(missing_ok=True)
        log.info("payloads of %d rows not cached (%s: %s)", len(frame), type(e).__name__, e)
        return
    for other in path.parent.glob(f"*{_SUFFIX}"):
        if other != path:
            other.unlink(missing_ok=True)
    _trim(path.parent.parent)


def _trim(root: Path, keep: int = MAX_FILES) -> None:
    files = sorted(root.glob(f"*/*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
