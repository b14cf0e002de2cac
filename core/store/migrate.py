"""Upgrade a store written by an older layout to core.store.schema.SCHEMA_VERSION, in place.

One step per version (STEPS[n] turns layout n into n + 1), run in order by migrate(); each step
is idempotent and only writes what is missing, and the version is recorded after each step, so
an interrupted migration resumes and a second run changes nothing. Open the store with
check_schema=False to migrate it (open_store(settings, check_schema=False)).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from core.auth import Actor, Permission, require
from core.filters import without_kind
from core.store import schema
from core.store.base import VectorStore
from core.store.documents import FORMAT, LEGACY_FORMAT
from core.types import ITEM_KIND, KIND

log = logging.getLogger(__name__)

# Document kinds of layout 1 whose key is `<space>:<hash>` (results computed in one space).
_V1_RESULT_KINDS = ("map", "analysis", "compare")


@dataclass
class MigrationReport:
    """What migrate() changed (or, with dry_run, would change): one line per change."""

    where: str
    from_version: int
    to_version: int
    dry_run: bool
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        """One line for humans."""
        if self.from_version == self.to_version:
            return f"{self.where} is at storage layout version {self.to_version}: nothing to migrate"
        verb = "would migrate" if self.dry_run else "migrated"
        return f"{verb} {self.where} from layout version {self.from_version} to {self.to_version}"


def _backfill_kind(store: VectorStore, report: MigrationReport) -> None:
    """Layout 1 could store points without `kind`: they are items (objects always had one)."""
    lacking = without_kind()
    for project in store.list_projects():
        done: set[str] = set()  # set_payload writes every space: an id is fixed once per project
        for space in store.list_spaces(project):
            found = store.payloads(project, space.name, flt=lacking, fields=[KIND]).index
            ids = [str(i) for i in found if str(i) not in done]
            done.update(ids)
            if not ids:
                continue
            if not report.dry_run:
                store.set_payload(project, ids, [{KIND: ITEM_KIND}] * len(ids))
            report.changes.append(f"{project}/{space.name}: kind={ITEM_KIND!r} set on {len(ids)} point(s) without one")


def _stamp_documents(store: VectorStore, report: MigrationReport) -> None:
    """Record format 1 on every document (layout 1 wrote none) and the space of results; drop
    results of spaces that no longer exist (layout 1 kept maps after delete_space)."""
    spaces = {p: {s.name for s in store.list_spaces(p)} for p in store.list_projects()}
    stamped: Counter[tuple[str, str]] = Counter()
    for project, kind, key in store.document_index():
        space = key.split(":", 1)[0] if kind in _V1_RESULT_KINDS and ":" in key else None
        if space is not None and space not in spaces.get(project, set()):
            if not report.dry_run:
                store.delete_document(project, kind, key)
            report.changes.append(f"{project}: {kind} {key!r} deleted (its space {space!r} no longer exists)")
            continue
        doc = store.get_document(project, kind, key)
        if doc is None or (FORMAT in doc and (space is None or "space" in doc)):
            continue
        doc = {**doc, FORMAT: doc.get(FORMAT, LEGACY_FORMAT), **({"space": space} if space else {})}
        if not report.dry_run:
            store.put_document(project, kind, key, doc)
        stamped[(project, kind)] += 1
    for (project, kind), n in sorted(stamped.items()):
        report.changes.append(f"{project}: format recorded on {n} {kind} document(s)")


def _v1_to_v2(store: VectorStore, report: MigrationReport) -> None:
    _backfill_kind(store, report)
    _stamp_documents(store, report)


STEPS: dict[int, Callable[[VectorStore, MigrationReport], None]] = {1: _v1_to_v2}


def migrate(store: VectorStore, *, actor: Actor, dry_run: bool = False) -> MigrationReport:
    """Run every step from the store's layout version to SCHEMA_VERSION (none when current).

    StoreTooNewError for a store of a newer layout. dry_run: report, write nothing (any role).
    PermissionDeniedError, before anything is read, unless actor is an admin (or dry_run).
    """
    if not dry_run:
        require(actor, Permission.MIGRATE, f"migrating {store.describe()}")
    found = store.schema_version()
    if found > schema.SCHEMA_VERSION:
        schema.check_version(found, store.describe())
    report = MigrationReport(store.describe(), found, schema.SCHEMA_VERSION, dry_run)
    for version in range(found, schema.SCHEMA_VERSION):
        STEPS[version](store, report)
        if not dry_run:
            store.write_schema_version(version + 1)
        log.info("store layout %d -> %d%s: %d change(s)", version, version + 1, " (dry run)" if dry_run else "",
                 len(report.changes))
    return report
