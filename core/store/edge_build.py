"""Build a space's HNSW index in a child process on a copy of its Edge shard, then swap the copy in.

Why (measured, 30k x 512-d): EdgeShard.optimize() holds the GIL for the whole build, so a thread
of the dashboard's process building the index froze every page for minutes (one query answered
in 50 s). A child process cannot open the live shard either (Edge locks its WAL per process), so:

1. under the store's lease: close the shard (close flushes), copy its folder to
   <root>/.index-builds/<id>/shard, note the space's revision;
2. outside the lease: `python -m core.store.edge_build <copy>` optimizes the copy, while this
   process keeps answering searches on the live shard (exact scans of the unindexed segments);
3. under the lease: if the space's revision is unchanged (no write meanwhile, from any process),
   swap the folders and drop the old one; otherwise discard the copy (the writes win; build again).

A build whose process died leaves its <id> folder behind: EdgeStore removes it on open unless a
live build holds its lock file (flock, shared by the parent thread and the child).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import StoreUnavailableError
from core.store import edge_shards as es

if TYPE_CHECKING:
    from core.store.edge import EdgeStore

log = logging.getLogger(__name__)
BUILDS_DIR = ".index-builds"
LOCK_NAME = "building.lock"


def _lock(work: Path) -> int:
    """A shared flock on work/building.lock: held while the build (parent or child) lives."""
    fd = os.open(work / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def clean_stale_builds(root: Path) -> list[tuple[Path, int]]:
    """Remove build folders no live build holds (their process died); returns (path, bytes)."""
    base = root / BUILDS_DIR
    removed: list[tuple[Path, int]] = []
    for work in sorted(base.iterdir()) if base.is_dir() else []:
        fd = os.open(work / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644) if work.is_dir() else None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a build is running there
        finally:
            if fd is not None:
                os.close(fd)
        size = es.folder_size(work)
        shutil.rmtree(work) if work.is_dir() else work.unlink()
        removed.append((work, size))
    return removed


def run_child(copy: Path) -> None:
    """Optimize the shard at `copy` in a child process (waiting releases the GIL)."""
    done = subprocess.run([sys.executable, "-m", "core.store.edge_build", str(copy)], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2], check=False)
    if done.returncode != 0:
        raise StoreUnavailableError(f"Building the search index of {copy} failed (exit {done.returncode}): "
                                    f"{done.stderr.strip()[-500:]}")


def build_on_copy(store: EdgeStore, project: str, space: str) -> bool:
    """Steps 1-3 of the module docstring; True when the indexed copy replaced the shard."""
    work = store.root / BUILDS_DIR / uuid.uuid4().hex
    work.mkdir(parents=True)
    fd = _lock(work)
    try:
        live, copy = es.space_dir(store.root, project, space), work / "shard"
        with store.hold("index build (copying the space)"):
            revision = store.revision(project, space)
            store.close_space(project, space)
            shutil.copytree(live, copy, ignore=shutil.ignore_patterns(es.TEMP_DIR))
        log.info("building the search index of %s/%s in a child process", project, space)
        run_child(copy)
        with store.hold("index build (swapping the indexed copy in)"):
            if store.revision(project, space) != revision or not live.is_dir():
                log.warning("%s/%s changed while its index was built: the build is discarded", project, space)
                return False
            store.close_space(project, space)
            os.replace(live, work / "old")
            os.replace(copy, live)
        log.info("search index of %s/%s swapped in", project, space)
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)


def main(path: str) -> None:
    """The child: optimize the shard at `path` (a copy no other process opens), then close it."""
    work = Path(path).parent
    fd = _lock(work)
    try:
        shard = es.open_shard(Path(path))
        shard.optimize()
        shard.close()
    finally:
        os.close(fd)


if __name__ == "__main__":
    main(sys.argv[1])
