"""Revision tokens: a cheap value per (project, space) and per project that every write changes.

Caches (the dashboard's) key on them: reading one is a small file read (embedded store) or one
point retrieve (server), never a scan, so a page can ask on every rerun. A token is a fresh
uuid4 written after every write, never a counter: a space deleted and created again gets a new
token, not a reused "1". Writes from another process (the CLI next to the dashboard) change the
same file / point, so they are seen too. NO_REVISION is the token of what was never written.

A space's token has two parts, "<vectors>.<payload>": a payload-only write (set_payload of labels,
tags, review state) keeps the vectors part and renews the payload part, so a result that depends
on the vectors alone (a cached vector block, a map) can tell "labels changed" from "vectors
changed" (vectors_part). Tokens written before had one part: their vectors part is the whole token.

Documents also have a token per (project, kind) (document_revision): a cache of what one kind of
document holds (the maps, the analyses) need not be rebuilt when another kind is written (a history
entry, a collection), as it would be if keyed on the project's token.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core.store.names import decode, encode
from core.types import DATASET, KIND

NO_REVISION = "0"
REVISIONS_DIR = "revisions"
_PROJECT_FILE = ".project"  # encode() never yields a '.', so no space file can be named so
_KIND_PREFIX = ".kind-"  # + encode(kind): a document kind's token (document_revision)
JOURNAL_DIR = ".journal"  # the payload journal (core.store.journal), next to the space files


SEPARATOR = "."  # between the vectors part and the payload part of a space's token
# set_payload values touching these fields change which points a dataset / items filter selects:
# such a write counts as a vectors write (what vector caches keyed on vectors_part rely on).
SELECTING_FIELDS = (DATASET, KIND)


def new_token() -> str:
    """A fresh revision token."""
    return uuid.uuid4().hex


def vectors_part(token: str) -> str:
    """The part of a space's token that only writes of vectors (or of which points exist) renew."""
    return token.split(SEPARATOR, 1)[0]


def payload_token(current: str) -> str:
    """The token after a payload-only write of a space whose token is `current`."""
    return f"{vectors_part(current)}{SEPARATOR}{new_token()}"


def payload_only(values: Iterable[dict[str, Any]]) -> bool:
    """Whether set_payload values leave the vectors part alone (none touches SELECTING_FIELDS)."""
    return not any(field in value for value in values for field in SELECTING_FIELDS)


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

    def bump(self, project: str, spaces: Iterable[str] = (), *, payload_only: bool = False,
             before_write: Callable[[dict[str, tuple[str, str]]], None] | None = None) -> None:
        """New tokens for these spaces and for the project (every write changes the project's);
        payload_only: the spaces keep their vectors part (see the module docstring). before_write
        gets each space's (token before, token after) before any token is written (the journal)."""
        keys = [*spaces, None]
        before = [self.get(project, space) for space in keys]
        tokens = [payload_token(old) if payload_only and space is not None else new_token()
                  for space, old in zip(keys, before, strict=True)]
        if before_write is not None:
            before_write({s: (b, t) for s, b, t in zip(keys, before, tokens, strict=True) if s is not None})
        for space, token in zip(keys, tokens, strict=True):
            _write(self._path(project, space), token)

    def _kind_path(self, project: str, kind: str) -> Path:
        return self._dir / encode(project) / f"{_KIND_PREFIX}{encode(kind)}"

    def document_revision(self, project: str, kind: str) -> str:
        """The current token of the project's documents of one kind."""
        try:
            return self._kind_path(project, kind).read_text().strip() or NO_REVISION
        except (FileNotFoundError, NotADirectoryError):
            return NO_REVISION

    def bump_documents(self, project: str, kinds: Iterable[str]) -> None:
        """New tokens for these document kinds of the project (after a document write)."""
        for kind in kinds:
            _write(self._kind_path(project, kind), new_token())

    def journal_folder(self, project: str) -> Path:
        """Where the project's payload journal lives (core.store.journal; hidden from spaces())."""
        return self._dir / encode(project) / JOURNAL_DIR

    def spaces(self, project: str) -> list[str]:
        """Names of the spaces that have a token (to bump them all on delete_project)."""
        folder = self._dir / encode(project)
        if not folder.is_dir():
            return []
        return [decode(p.name) for p in folder.iterdir() if not p.name.startswith(".") and not p.name.endswith(".tmp")]


def _write(path: Path, token: str) -> None:
    """Write a token atomically (a reader without the lease sees the old or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{new_token()}.tmp")
    tmp.write_text(token)
    os.replace(tmp, path)
