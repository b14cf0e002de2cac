"""Revision tokens: a cheap value per (project, space) and per project that every write changes.

Caches (the dashboard's) key on them: reading one is a small file read (embedded store) or one
point retrieve (server), never a scan, so a page can ask on every rerun. A token is a fresh
uuid4 written after every write, never a counter: a space deleted and created again gets a new
token, not a reused "1". Writes from another process (the CLI next to the dashboard) change the
same file / point, so they are seen too. NO_REVISION is the token of what was never written.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from core.store.names import decode, encode

NO_REVISION = "0"
REVISIONS_DIR = "revisions"
_PROJECT_FILE = ".project"  # encode() never yields a '.', so no space file can be named so


def new_token() -> str:
    """A fresh revision token."""
    return uuid.uuid4().hex


class FileRevisions:
    """Revision tokens as files under <root>/revisions/<project>/<space> (embedded store).

    Written atomically (temp file + rename) by the lease holder, read without the lease.
    """

    def __init__(self, root: Path) -> None:
        self._dir = root / REVISIONS_DIR

    def _path(self, project: str, space: str | None) -> Path:
        return self._dir / encode(project) / (_PROJECT_FILE if space is None else encode(space))

    def get(self, project: str, space: str | None = None) -> str:
        """The current token of a space (or of the whole project when space is None)."""
        try:
            return self._path(project, space).read_text().strip() or NO_REVISION
        except (FileNotFoundError, NotADirectoryError):
            return NO_REVISION

    def bump(self, project: str, spaces: Iterable[str] = ()) -> None:
        """New tokens for these spaces and for the project (every write changes the project's)."""
        for space in [*spaces, None]:
            path = self._path(project, space)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{new_token()}.tmp")
            tmp.write_text(new_token())
            os.replace(tmp, path)

    def spaces(self, project: str) -> list[str]:
        """Names of the spaces that have a token (to bump them all on delete_project)."""
        folder = self._dir / encode(project)
        if not folder.is_dir():
            return []
        return [decode(p.name) for p in folder.iterdir() if not p.name.startswith(".") and not p.name.endswith(".tmp")]
