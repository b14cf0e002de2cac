"""import_project: a bundle into a store, all or nothing.

Why roll back rather than import into a staging name and rename: neither adapter can rename a
project (a Qdrant collection cannot be renamed, and point ids and documents carry the project's
name), so a staged import would have to be copied a second time. Instead the bundle is verified
whole first (every file's size and sha256, every Parquet file's rows and columns: a damaged bundle
writes nothing), and once writing starts an Undo records what it did: a project that did not
exist is deleted again on any failure (counts that differ at the end included), and a project
being replaced (replace=True) was first exported to a rollback bundle, which is imported back.
While an import runs, readers (the dashboard) see the project fill up; the end state is the whole
bundle or what was there before.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from core.auth import Actor, Permission, require
from core.errors import BadInputError, CoreError
from core.portability import manifest as mf
from core.portability import points_io, remap
from core.portability.export import export_project, project_exists
from core.store.base import VectorStore
from core.store.names import validate_name
from core.types import Progress, SpaceInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    """What import_project wrote: the project, points per space, documents, those left out, seconds."""

    project: str
    points: dict[str, int]
    documents: int
    skipped_documents: int
    seconds: float
    replaced: bool = False


@dataclass
class Undo:
    """What an import (or a restore of several projects) wrote, and how to take it back."""

    store: VectorStore
    actor: Actor
    work_dir: Path | None = None
    created: list[str] = field(default_factory=list)
    saved: dict[str, Path] = field(default_factory=dict)
    _folder: Path | None = None

    def make_room(self, target: str, replace: bool) -> bool:
        """Prepare to write target: BadInputError when it exists and not replace; with replace, keep
        a rollback bundle of it, then delete it. Returns True when a project was replaced."""
        existed = project_exists(self.store, target)
        if existed and not replace:
            raise BadInputError(f"Project {target!r} exists already in {self.store.describe()}: import under "
                                "another name (--project NEW) or replace it (--replace)")
        if existed:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="embedscope-rollback-", dir=self.work_dir))
            saved = self._folder / f"project-{len(self.saved)}"
            export_project(self.store, target, saved, actor=self.actor)
            self.saved[target] = saved
        self.created.append(target)  # before the delete: a delete that fails half-way is undone too
        if existed:
            self.store.delete_project(target)
        return existed

    def undo(self) -> None:
        """Delete what was written; import the replaced projects back. A rollback that fails leaves
        the project absent (never half there) and keeps its bundle, saying where (import it by hand)."""
        for target in reversed(self.created):
            try:
                self.store.delete_project(target)
                if target in self.saved:
                    apply(self.store, mf.read_manifest(self.saved[target]), target)
                    del self.saved[target]  # only now: a failed rollback keeps its bundle
                log.warning("import rolled back: project %r is as it was", target)
            except Exception:
                log.exception("rolling back project %r failed; its previous state is in %s (import it "
                              "with `embedscope import-project`)", target, self.saved.get(target))
                self._delete_quietly(target)  # absent rather than half there
        self.created.clear()

    def _delete_quietly(self, target: str) -> None:
        try:
            self.store.delete_project(target)
        except Exception:
            log.exception("could not delete what the failed rollback of project %r wrote", target)

    def commit(self) -> None:
        """Everything was written and checked: nothing to take back."""
        self.created.clear()
        self.saved.clear()

    def discard(self) -> None:
        """Remove the rollback bundles (kept when a rollback failed: the log names them)."""
        if self._folder is not None and not self.saved:
            shutil.rmtree(self._folder, ignore_errors=True)


def import_project(store: VectorStore, bundle: Path, *, actor: Actor, project: str | None = None,
                   replace: bool = False, progress: Progress | None = None,
                   work_dir: Path | None = None) -> ImportReport:
    """Import the bundle folder as `project` (default: its own name).

    Refuses (BadInputError, nothing written) an existing project unless replace, a damaged bundle,
    and (StoreTooNewError) a bundle of a newer format. progress(done, total) counts points, then
    documents. work_dir: where a replaced project's rollback bundle is kept (default: the temp dir).
    """
    require(actor, Permission.IMPORT_PROJECT, f"importing a project from {bundle}")
    manifest = mf.read_manifest(Path(bundle))
    target = validate_name(project or manifest.project, "project name")
    mf.verify(manifest)
    started = time.perf_counter()
    undo = Undo(store, actor, work_dir)
    try:
        replaced = undo.make_room(target, replace)
        points, documents, skipped = apply(store, manifest, target, progress)
        undo.commit()
    except BaseException:
        undo.undo()
        raise
    finally:
        undo.discard()
    report = ImportReport(target, points, documents, skipped, time.perf_counter() - started, replaced)
    log.info("imported %s as project %r: %d points, %d documents in %.1f s", bundle, target,
             sum(points.values()), documents, report.seconds)
    return report


def apply(store: VectorStore, manifest: mf.Manifest, target: str,
          progress: Progress | None = None) -> tuple[dict[str, int], int, int]:
    """Write the verified bundle into the (absent) project target; (points per space, documents
    written, documents left out). CoreError when the counts read back differ from the manifest."""
    rename = target != manifest.project
    ids = _id_map(manifest, target) if rename else {}
    total, done = manifest.total_points + manifest.documents, 0
    for space in manifest.spaces:
        store.ensure_space(target, SpaceInfo.from_dict(space.doc))
        for pids, vectors, payloads in points_io.read_space(manifest.path(space.file), space.dim):
            if ids:
                pids = [ids.get(p, p) for p in pids]
                payloads = [remap.walk(p, remap.id_swap(ids)) for p in payloads]
            store.upsert(target, space.name, pids, vectors, payloads)
            done += len(pids)
            if progress is not None:
                progress(done, total)
    swap = remap.revision_swap((s.revision, store.revision(target, s.name)) for s in manifest.spaces)
    if rename:
        swap = remap.chain(remap.id_swap(ids), swap)
    written = skipped = 0
    for kind, key, doc in points_io.read_documents(manifest.path(mf.DOCUMENTS_FILE)):
        done += 1
        if rename and kind in remap.DERIVED_KINDS:
            skipped += 1  # computed again on first use (its bytes depend on the old ids)
            continue
        store.put_document(target, kind, key, remap.walk(doc, swap))
        written += 1
        if progress is not None:
            progress(done, total)
    return _check(store, manifest, target, written), written, skipped


def _id_map(manifest: mf.Manifest, target: str) -> dict[str, str]:
    refs: list[tuple[str, str | None, str | None]] = []
    for space in manifest.spaces:
        table = pq.read_table(manifest.path(space.file), columns=["id", "dataset", "key"])
        refs.extend(zip(*(table.column(c).to_pylist() for c in ("id", "dataset", "key")), strict=True))
    return remap.id_map(manifest.project, target, refs)


def _check(store: VectorStore, manifest: mf.Manifest, target: str, documents: int) -> dict[str, int]:
    """Points per space as the store counts them; CoreError naming the first difference."""
    counts = {s.name: store.count(target, s.name) for s in manifest.spaces}
    for space in manifest.spaces:
        if counts[space.name] != space.points:
            raise CoreError(f"Import of project {target!r} stopped: space {space.name!r} holds "
                            f"{counts[space.name]} points after the import, the bundle {space.points}")
    stored = sum(1 for p, _, _ in store.document_index() if p == target)
    if stored < documents:
        raise CoreError(f"Import of project {target!r} stopped: {stored} documents stored, {documents} written")
    return counts
