"""Delete a dataset, an embedding space or a project together with every persisted result that
refers to it (maps, analyses, compares) and the collection entries it empties.

Why here and not in the store: the store keeps documents as opaque JSON; which document refers
to which space or dataset is the business of the use cases that write them (each writes its
`space` and `datasets`). Order: recomputable results first, then the points, then collections
(user data, pruned only once the points are really gone), so an interruption never loses a
collection entry whose point still exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from core import collections
from core.auth import Actor, Permission, require
from core.pipeline import detection_info
from core.pipeline.map_doc import MAP_KIND
from core.store.base import VectorStore

log = logging.getLogger(__name__)


@dataclass
class DeleteReport:
    """What a delete removed: points, result documents (kind, key), collections deleted (names)
    and collections kept with fewer entries (name -> entries dropped)."""

    points: int = 0
    results: list[tuple[str, str]] = field(default_factory=list)
    collections_deleted: list[str] = field(default_factory=list)
    collections_pruned: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for humans."""
        parts = [f"{self.points} point(s)"] if self.points else []
        if self.results:
            parts.append(f"{len(self.results)} saved result(s) (maps, analyses, comparisons)")
        if self.collections_deleted:
            parts.append(f"{len(self.collections_deleted)} collection(s)")
        if self.collections_pruned:
            n = sum(self.collections_pruned.values())
            parts.append(f"{n} entr{'y' if n == 1 else 'ies'} of {len(self.collections_pruned)} collection(s)")
        return "removed " + (", ".join(parts) if parts else "nothing else")


def _result_kinds() -> tuple[str, ...]:
    # Imported here: the analysis modules pull in the scientific stack (seconds), not needed
    # by the rest of this module's callers (the CLI's delete command).
    from core.pipeline.analyse import DOC_KIND as ANALYSIS_KIND
    from core.pipeline.analyse_objects import DOC_KIND as OBJECT_ANALYSIS_KIND
    from core.pipeline.compare import DOC_KIND as COMPARE_KIND
    from core.pipeline.evaluate import DOC_KIND as SCORECARD_KIND

    return (MAP_KIND, ANALYSIS_KIND, OBJECT_ANALYSIS_KIND, COMPARE_KIND, SCORECARD_KIND)


def _space_of(key: str, doc: dict[str, Any] | None) -> str:
    # Result keys are `<space>:<hash>` (space names cannot contain ':'); documents say it too.
    return str((doc or {}).get("space") or key.split(":", 1)[0])


def _delete_results(store: VectorStore, project: str, report: DeleteReport, *, space: str | None = None,
                    dataset: str | None = None) -> None:
    for kind in _result_kinds():
        for key in store.list_documents(project, kind):
            if space is not None and _space_of(key, None) != space:
                continue
            if dataset is not None:
                doc = store.get_document(project, kind, key)
                # A result written before documents named their datasets may refer to it: drop it
                # (it is recomputed on demand) rather than keep one that may describe deleted data.
                if doc is None or dataset not in doc.get("datasets", [dataset]):
                    continue
            store.delete_document(project, kind, key)
            report.results.append((kind, key))


def delete_dataset(store: VectorStore, project: str, dataset: str, *, actor: Actor) -> DeleteReport:
    """Delete a dataset's points in every space, the results computed on it, and its entries in
    collections (a collection left empty is deleted). PermissionDeniedError unless actor is an admin."""
    require(actor, Permission.DELETE, f"deleting dataset {dataset!r} of project {project!r}")
    report = DeleteReport()
    _delete_results(store, project, report, dataset=dataset)
    report.points = store.delete_dataset(project, dataset)
    store.delete_document(project, detection_info.KIND, dataset)  # a detection dataset's class ids, IoU
    for coll in collections.list_collections(store, project):
        keep = [i for i, (ds, _) in enumerate(coll.refs) if ds != dataset]
        if len(keep) == len(coll.ids):
            continue
        if not keep:
            store.delete_document(project, collections.KIND, coll.name)
            report.collections_deleted.append(coll.name)
            continue
        pruned = replace(coll, ids=[coll.ids[i] for i in keep], scores=[coll.scores[i] for i in keep],
                         refs=[coll.refs[i] for i in keep])
        store.put_document(project, collections.KIND, coll.name, pruned.to_doc())
        report.collections_pruned[coll.name] = len(coll.ids) - len(keep)
    log.info("deleted dataset %s/%s: %s", project, dataset, report.summary())
    return report


def delete_space(store: VectorStore, project: str, space: str, *, actor: Actor) -> DeleteReport:
    """Drop one space (its vectors), the results computed in it and the collections saved from it
    (other spaces and their results stay). NotFoundError for an unknown space; PermissionDeniedError
    unless actor is an admin."""
    require(actor, Permission.DELETE, f"deleting space {space!r} of project {project!r}")
    store.get_space(project, space)  # NotFoundError before anything is deleted
    report = DeleteReport()
    _delete_results(store, project, report, space=space)
    store.delete_space(project, space)
    for coll in collections.list_collections(store, project):
        if coll.space == space:
            store.delete_document(project, collections.KIND, coll.name)
            report.collections_deleted.append(coll.name)
    log.info("deleted space %s/%s: %s", project, space, report.summary())
    return report


def delete_project(store: VectorStore, project: str, *, actor: Actor) -> None:
    """Delete every space, point and document of a project (the store drops them all).
    PermissionDeniedError unless actor is an admin."""
    require(actor, Permission.DELETE, f"deleting project {project!r}")
    store.delete_project(project)
