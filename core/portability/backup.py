"""backup_store / restore_store: every project of a store as one folder of project bundles, and back.

One design for both adapters: a backup is a folder with backup.json and one project bundle
(core.portability.manifest) per project. On the embedded store this is the consistent copy taken
without stopping the dashboard: each bundle is read page by page under the store's lease (the
dashboard waits for one page at most, never for the whole copy, which a copy of the store folder
under the lease would need) and checked against the project's revision (a project written during
its export is exported again). On a server, Qdrant's own snapshots are per collection and land on
the server's disk (qdrant-client's local mode has none), so the bundle is the backup there too:
portable between the two adapters and across embedscope versions that read its format.

A restore verifies every bundle first, refuses projects that exist unless replace, and goes through
one Undo (core.portability.importing): a failure part-way deletes what it wrote and imports the
replaced projects back, so a restore into a running deployment is all or nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core import __version__
from core.auth import Actor, Permission, require
from core.errors import BadInputError, StoreTooNewError
from core.portability import manifest as mf
from core.portability.export import export_project
from core.portability.importing import Undo, apply
from core.store.base import VectorStore
from core.store.names import encode
from core.store.schema import SCHEMA_VERSION
from core.types import Progress

log = logging.getLogger(__name__)
BACKUP_FORMAT = "embedscope-backup"
BACKUP_VERSION = 1
BACKUP_FILE = "backup.json"


@dataclass(frozen=True)
class BackupReport:
    """What a backup or restore did: the folder, the projects (with their points), seconds."""

    path: Path
    projects: dict[str, int]
    seconds: float


def backup_store(store: VectorStore, dest: Path, *, actor: Actor, progress: Progress | None = None) -> BackupReport:
    """Write every project of the store into the new folder dest (BadInputError when it exists).
    progress(done, total) counts projects."""
    require(actor, Permission.BACKUP, f"backing up {store.describe()}")
    dest = Path(dest)
    if dest.exists():
        raise BadInputError(f"{dest} exists already: choose a new folder for the backup")
    started = time.perf_counter()
    projects = sorted(set(store.list_projects()) | {p for p, _, _ in store.document_index()})
    partial = dest.with_name(f"{dest.name}.partial-{uuid.uuid4().hex[:8]}")
    partial.mkdir(parents=True)
    try:
        entries, points = [], {}
        for done, project in enumerate(projects, start=1):
            folder = f"projects/{encode(project)}"
            report = export_project(store, project, partial / folder, actor=actor)
            entries.append({"project": project, "folder": folder})
            points[project] = sum(report.points.values())
            if progress is not None:
                progress(done, len(projects))
        mf.write_json(partial / BACKUP_FILE, {
            "format": BACKUP_FORMAT, "format_version": BACKUP_VERSION, "store_schema": SCHEMA_VERSION,
            "embedscope_version": __version__, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": store.describe(), "made_by": actor.name, "projects": entries})
        os.replace(partial, dest)  # a backup folder exists complete or not at all
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("backed up %d projects of %s to %s", len(projects), store.describe(), dest)
    return BackupReport(dest, points, time.perf_counter() - started)


def read_backup(src: Path) -> dict[str, mf.Manifest]:
    """The project bundles of a backup folder, by project, each verified (BadInputError /
    StoreTooNewError naming what is wrong)."""
    path = Path(src) / BACKUP_FILE
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != BACKUP_FORMAT:
            raise ValueError(f"format is {raw.get('format')!r}, not {BACKUP_FORMAT!r}")
        version = int(raw["format_version"])
        if version > BACKUP_VERSION:  # checked before its layout: a newer one may differ
            raise StoreTooNewError(f"The backup {src} has format version {version}, written by a newer "
                                   f"embedscope; this one reads up to version {BACKUP_VERSION}.")
        entries = [str(e["folder"]) for e in raw["projects"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInputError(f"{src} is not an embedscope backup ({path}: {e})") from e
    bundles: dict[str, mf.Manifest] = {}
    for entry in entries:
        folder = mf.inside(Path(src), entry)
        manifest = mf.read_manifest(folder)
        mf.verify(manifest)
        bundles[manifest.project] = manifest
    return bundles


def restore_store(store: VectorStore, src: Path, *, actor: Actor, replace: bool = False,
                  progress: Progress | None = None) -> BackupReport:
    """Import every project of the backup src. Projects that exist are refused (BadInputError naming
    them, nothing written) unless replace; projects not in the backup are left alone. All or nothing."""
    require(actor, Permission.RESTORE, f"restoring {src} into {store.describe()}")
    started = time.perf_counter()
    bundles = read_backup(Path(src))
    existing = sorted(set(bundles) & (set(store.list_projects()) | {p for p, _, _ in store.document_index()}))
    if existing and not replace:
        raise BadInputError(f"{store.describe()} holds projects of this backup already ({', '.join(existing)}): "
                            "restore with --replace to replace them, or into an empty store")
    undo = Undo(store, actor)
    points: dict[str, int] = {}
    try:
        for done, (project, manifest) in enumerate(sorted(bundles.items()), start=1):
            undo.make_room(project, replace)
            counts, _, _ = apply(store, manifest, project)
            points[project] = sum(counts.values())
            if progress is not None:
                progress(done, len(bundles))
        undo.commit()
    except BaseException:
        undo.undo()
        raise
    finally:
        undo.discard()
    log.info("restored %d projects from %s into %s", len(bundles), src, store.describe())
    return BackupReport(Path(src), points, time.perf_counter() - started)
