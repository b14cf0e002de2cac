"""Whether a persisted result (analysis, comparison) still describes the data it was computed on.

A result document records the space's store revision (VectorStore.revision) read before its
data was loaded. Any later write to the space (an ingest, a label changed from the CLI, a
deletion) changes the revision, so a page can tell "out of date" from a file read instead of
re-reading every vector to recompute the fingerprint. A write to another dataset of the same
space also marks it out of date: recomputing then finds the fingerprint unchanged, reuses the
result and only records the new revision.
"""

from __future__ import annotations

from typing import Any

from core.store.base import VectorStore
from core.store.revisions import vectors_part

REVISION_FIELD = "revision"


def stamped(doc: dict[str, Any], revision: str) -> dict[str, Any]:
    """doc with the revision it describes (a copy)."""
    return {**doc, REVISION_FIELD: revision}


def is_stale(doc: dict[str, Any], store: VectorStore, project: str, space: str) -> bool:
    """True when the space was written since doc was computed (or doc predates revisions)."""
    return doc.get(REVISION_FIELD) != store.revision(project, space)


def vectors_changed(doc: dict[str, Any], store: VectorStore, project: str, space: str) -> bool:
    """True when points or vectors of the space were written since doc was computed (an ingest, a
    deletion); False when only payloads changed (labels, tags, review marks: set_payload keeps the
    revision's vectors part, core.store.revisions). A result that is stale but not vectors_changed
    is "labels changed since": still usable as it is (its map, neighbours, clusters and outlier
    scores hold; corrected items leave the mislabel list through core.curation.corrected), and a
    recompute reads the vectors from the cache instead of the store."""
    recorded = doc.get(REVISION_FIELD)
    return recorded is None or vectors_part(str(recorded)) != vectors_part(store.revision(project, space))


def labels_changed(doc: dict[str, Any], store: VectorStore, project: str, space: str) -> bool:
    """True when only payloads (labels, tags, review marks) were written since doc was computed."""
    return is_stale(doc, store, project, space) and not vectors_changed(doc, store, project, space)
