"""When to build a space's HNSW index: after large ingests, never on a request path."""

from __future__ import annotations

import logging

from core.store.base import VectorStore

log = logging.getLogger(__name__)

# Below this many points an exact scan answers in a few ms (Edge: ~6 ms at 10k × 512-d,
# benchmarks/search.py), so building HNSW would cost minutes for nothing.
INDEX_THRESHOLD = 20_000


def build_index_if_large(
    store: VectorStore, project: str, space: str, threshold: int = INDEX_THRESHOLD
) -> bool:
    """Build the approximate index of a space holding more than `threshold` points.

    Slow (minutes at 100k points on 2 cores): call it from the CLI after an ingest or from a
    background job, never while a user waits on a page. Returns True when it ran.
    """
    count = store.count(project, space)
    if count <= threshold:
        log.debug("index not needed for %s/%s: %d points", project, space, count)
        return False
    log.info("building the search index of %s/%s (%d points); this can take minutes", project, space, count)
    store.optimize(project, space)
    return True
