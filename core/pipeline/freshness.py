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

REVISION_FIELD = "revision"


def stamped(doc: dict[str, Any], revision: str) -> dict[str, Any]:
    """doc with the revision it describes (a copy)."""
    return {**doc, REVISION_FIELD: revision}


def is_stale(doc: dict[str, Any], store: VectorStore, project: str, space: str) -> bool:
    """True when the space was written since doc was computed (or doc predates revisions)."""
    return doc.get(REVISION_FIELD) != store.revision(project, space)
