"""export_project: one project of a store (points of every space, every document) as a bundle folder.

The export reads through the store's paged APIs (the embedded store's lease is taken per page, so
the dashboard keeps answering meanwhile) and checks the project's revision before and after: a
write in between would make the bundle a mix of two states, so the export starts again (up to
ATTEMPTS times) and otherwise refuses with a message, never leaving a bundle that looks complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import __version__
from core.auth import Actor, Permission, require
from core.errors import BadInputError, CoreError, NotFoundError
from core.portability import manifest as mf
from core.portability import points_io
from core.store import common
from core.store.base import VectorStore
from core.store.schema import SCHEMA_VERSION
from core.types import Progress

log = logging.getLogger(__name__)
ATTEMPTS = 3


@dataclass(frozen=True)
class ExportReport:
    """What export_project wrote: the bundle folder, points per space, documents, bytes, seconds."""

    path: Path
    points: dict[str, int]
    documents: int
    bytes: int
    seconds: float


def project_exists(store: VectorStore, project: str) -> bool:
    """True when the store holds a space or a document of the project."""
    return project in store.list_projects() or any(p == project for p, _, _ in store.document_index())


def export_project(store: VectorStore, project: str, dest: Path, *, actor: Actor,
                   progress: Progress | None = None) -> ExportReport:
    """Write the project to the bundle folder dest (which must not exist yet; its parent is created).

    progress(done, total) counts points written, then documents. Raises NotFoundError for an unknown
    project, BadInputError when dest exists, CoreError when the project kept changing meanwhile.
    """
    require(actor, Permission.EXPORT, f"exporting project {project!r}")
    dest = Path(dest)
    if dest.exists():
        raise BadInputError(f"{dest} exists already: choose a new folder for the bundle")
    if not project_exists(store, project):
        raise NotFoundError(f"Project {project!r} does not exist in {store.describe()}")
    started = time.perf_counter()
    for attempt in range(1, ATTEMPTS + 1):
        partial = dest.with_name(f"{dest.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            raw = _write(store, project, partial, actor, progress)
            if raw is not None:
                os.replace(partial, dest)  # the bundle appears complete or not at all
                break
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
        log.info("project %r changed during export attempt %d: exporting again", project, attempt)
    else:
        raise CoreError(f"Project {project!r} changed during each of {ATTEMPTS} export attempts (someone is "
                        "writing to it): export again when it is quiet")
    points = {s["doc"]["name"]: int(s["points"]) for s in raw["spaces"]}
    size = sum(int(f["bytes"]) for f in raw["files"].values())
    report = ExportReport(dest, points, int(raw["documents"]["count"]), size, time.perf_counter() - started)
    log.info("exported project %r to %s: %d points, %d documents, %.1f MB in %.1f s", project, dest,
             sum(points.values()), report.documents, size / 1e6, report.seconds)
    return report


def _write(store: VectorStore, project: str, root: Path, actor: Actor,
           progress: Progress | None) -> dict[str, Any] | None:
    """Write the bundle into root; its manifest, or None when the project changed meanwhile."""
    before = store.revision(project)
    (root / mf.POINTS_DIR).mkdir(parents=True)
    spaces = store.list_spaces(project)
    totals = {s.name: store.count(project, s.name) for s in spaces}
    total, done = sum(totals.values()), [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], max(total, done[0]))

    entries = []
    for info in spaces:
        revision = store.revision(project, info.name)
        file = mf.points_file(info.name)
        written = points_io.write_space(store, project, info.name, info.dim, root / file, tick)
        entries.append({"doc": common.space_doc(info), "file": file, "points": written, "revision": revision})
    kinds = points_io.write_documents(store, project, root / mf.DOCUMENTS_FILE)
    if store.revision(project) != before:
        return None
    files = {str(p.relative_to(root)): mf.file_record(p) for p in sorted(root.rglob("*")) if p.is_file()}
    raw = {
        "format": mf.BUNDLE_FORMAT, "format_version": mf.FORMAT_VERSION, "store_schema": SCHEMA_VERSION,
        "embedscope_version": __version__, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exported_by": actor.name, "source": store.describe(), "project": project, "spaces": entries,
        "datasets": [{"name": d.name, "counts": dict(d.counts)} for d in store.list_datasets(project)],
        "documents": {"file": mf.DOCUMENTS_FILE, "count": sum(kinds.values()), "kinds": kinds},
        "files": files,
    }
    mf.write_json(root / mf.MANIFEST, raw)
    return raw
