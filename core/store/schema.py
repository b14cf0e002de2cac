"""The store-level schema version: which layout a store was written with, checked when it is opened.

Version 1 is the layout before the version was recorded (points could lack `kind`, documents
carried no format). A store made now is stamped with SCHEMA_VERSION when it is created; opening
an older one raises StoreOutdatedError (run `embedscope migrate`, see core.store.migrate), a
newer one StoreTooNewError. Where the stamp lives is the adapter's business (Edge: a small file
in the store folder; server: one point in the documents collection).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.errors import StoreOutdatedError, StoreTooNewError, StoreUnavailableError

SCHEMA_VERSION = 2
LEGACY_VERSION = 1  # a store holding data but no stamp was written before stamps existed
SCHEMA_FIELD = "schema"


def check_version(found: int, where: str) -> None:
    """Raise unless a store at `where` (for humans) with schema `found` can be used as it is."""
    if found < SCHEMA_VERSION:
        raise StoreOutdatedError(
            f"The store at {where} uses storage layout version {found}; this embedscope needs "
            f"version {SCHEMA_VERSION}. Run `embedscope migrate` (or press Migrate on the dashboard) "
            "to upgrade it in place: every point, map and collection is kept."
        )
    if found > SCHEMA_VERSION:
        raise StoreTooNewError(
            f"The store at {where} uses storage layout version {found}, written by a newer embedscope; "
            f"this one reads up to version {SCHEMA_VERSION}. Upgrade embedscope to use this store."
        )


def read_stamp_file(path: Path) -> int | None:
    """The version recorded in a stamp file ({"schema": n}), None when there is none."""
    try:
        return int(json.loads(path.read_text())[SCHEMA_FIELD])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreUnavailableError(f"Cannot read the store's layout version in {path}: {e}") from e


def write_stamp_file(path: Path, version: int) -> None:
    """Record the version in a stamp file, atomically (a reader never sees half a file)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({SCHEMA_FIELD: int(version)}))
        os.replace(tmp, path)
    except OSError as e:
        raise StoreUnavailableError(f"Cannot write the store's layout version to {path}: {e}") from e
