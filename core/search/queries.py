"""Search use cases: by vector, text, image, examples, arithmetic; filters run inside Qdrant."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from core.embedders.base import Embedder
from core.errors import BadInputError
from core.filters import Filter
from core.search.objects import kind_filter
from core.search.scores import ExampleHit, score_example_hits, single_example_hits
from core.search.vectors import (
    DEFAULT_MAX_PIXELS,
    Term,
    arithmetic_vector,
    image_query_vector,
    require_ids,
    text_query_vector,
    unit_vector,
)
from core.store.base import VectorStore
from core.types import (
    CONFIDENCE,
    DATASET,
    ITEM_KIND,
    KEY,
    LABEL,
    PREDICTION,
    SPLIT,
    TEXT,
    URI,
    Hit,
)

log = logging.getLogger(__name__)

# Payload fields every returned hit carries (None where unknown), so tables and exports line up.
DISPLAY_FIELDS: tuple[str, ...] = (DATASET, KEY, URI, TEXT, LABEL, PREDICTION, CONFIDENCE, SPLIT)


def _enrich(hits: Sequence[Hit]) -> list[Hit]:
    """Hits whose payload has every display field (None where the point has none)."""
    out = []
    for hit in hits:
        payload: dict[str, Any] = {name: None for name in DISPLAY_FIELDS}
        payload.update(hit.payload)
        out.append(Hit(id=hit.id, score=float(hit.score), payload=payload))
    return out


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")


# -- search use cases ------------------------------------------------------------------------------
def by_vector(
    store: VectorStore,
    project: str,
    space: str,
    vector: np.ndarray,
    *,
    flt: Filter | None = None,
    limit: int = 20,
    exact: bool = False,
    kind: str = ITEM_KIND,
) -> list[Hit]:
    """Nearest points of `kind` (items, or detection objects: never both in one list) to a query
    vector ((dim,) float32), filtered inside Qdrant, best first."""
    _check_limit(limit)
    flt = kind_filter(kind, flt)
    query = unit_vector(vector, "the query")
    hits = store.query(project, space, query, limit=limit, flt=flt, exact=exact)
    log.debug("query %s/%s limit=%d exact=%s filter=%s: %d hits", project, space, limit, exact, flt, len(hits))
    return _enrich(hits)


def by_text(
    store: VectorStore,
    project: str,
    space: str,
    text: str,
    *,
    embedder: Embedder | None = None,
    flt: Filter | None = None,
    limit: int = 20,
    exact: bool = False,
    kind: str = ITEM_KIND,
) -> list[Hit]:
    """Points matching a free-text description (CLIP spaces, text spaces), best first.

    embedder defaults to the model that made the space (loaded once and cached).
    """
    _check_limit(limit)
    vector = text_query_vector(store, project, space, text, embedder=embedder)
    return by_vector(store, project, space, vector, flt=flt, limit=limit, exact=exact, kind=kind)


def by_image(
    store: VectorStore,
    project: str,
    space: str,
    image: Image.Image | bytes,
    *,
    embedder: Embedder | None = None,
    flt: Filter | None = None,
    limit: int = 20,
    exact: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    kind: str = ITEM_KIND,
) -> list[Hit]:
    """Points similar to an uploaded image, embedded with the space's own model, best first."""
    _check_limit(limit)
    vector = image_query_vector(store, project, space, image, embedder=embedder, max_pixels=max_pixels)
    return by_vector(store, project, space, vector, flt=flt, limit=limit, exact=exact, kind=kind)


def by_examples(
    store: VectorStore,
    project: str,
    space: str,
    positive_ids: Sequence[str],
    negative_ids: Sequence[str] = (),
    *,
    flt: Filter | None = None,
    limit: int = 20,
    exact: bool = False,
    kind: str = ITEM_KIND,
) -> list[ExampleHit]:
    """"More like these, unlike those", best first, as ExampleHits (scores are cosines).

    One positive example: a nearest-neighbour query by its stored vector, so the score is the
    cosine similarity (an identical copy scores 1.0). Several examples or negatives: Qdrant's
    recommend query (best-score strategy) ranks, and the top hits get the cosine to their nearest
    positive example (core.search.scores). The examples themselves never appear in the results.
    Raises NotFoundError for unknown ids.
    """
    _check_limit(limit)
    flt = kind_filter(kind, flt)
    positive, negative = list(dict.fromkeys(positive_ids)), list(dict.fromkeys(negative_ids))
    if not positive:
        raise BadInputError("Give at least one positive example to search for similar points")
    if set(positive) & set(negative):
        both = ", ".join(sorted(set(positive) & set(negative)))
        raise BadInputError(f"An example cannot be both positive and negative: {both}")
    require_ids(store, project, space, positive + negative)
    if len(positive) == 1 and not negative:
        _, vectors = store.vectors(project, space, ids=positive)
        # Over-fetch by one and drop the example (Filter has no id condition), as by_arithmetic does.
        query = unit_vector(vectors[0], "the example")
        found = store.query(project, space, query, limit=limit + 1, flt=flt, exact=exact)
        hits = [h for h in found if h.id != positive[0]][:limit]
        return single_example_hits(_enrich(hits), positive[0])
    hits = store.recommend(project, space, positive, negative, limit=limit, flt=flt, exact=exact)
    return score_example_hits(store, project, space, _enrich(hits), positive, negative)


def by_arithmetic(
    store: VectorStore,
    project: str,
    space: str,
    terms: Sequence[Term],
    *,
    embedder: Embedder | None = None,
    flt: Filter | None = None,
    limit: int = 20,
    exact: bool = False,
    kind: str = ITEM_KIND,
) -> list[Hit]:
    """Embedding arithmetic ("a - b + c") over stored items and texts, then a nearest query.

    The stored items used as terms are excluded from the results (they would trivially win).
    """
    _check_limit(limit)
    flt = kind_filter(kind, flt)
    vector, seeds = arithmetic_vector(store, project, space, terms, embedder=embedder)
    # Over-fetch by the number of seeds, then drop them: Filter has no id condition.
    hits = store.query(project, space, vector, limit=limit + len(seeds), flt=flt, exact=exact)
    seed_set = set(seeds)
    return _enrich([h for h in hits if h.id not in seed_set][:limit])


@dataclass(frozen=True)
class ExactComparison:
    """Approximate (HNSW) vs exact (full scan) results of one query."""

    recall: float  # |approximate ∩ exact| / |exact|, the recall@k of the approximate search
    k: int
    approximate: list[Hit]
    exact: list[Hit]
    approximate_ms: float
    exact_ms: float


def compare_exact(search: Callable[..., list[Hit]], *args: Any, **kwargs: Any) -> ExactComparison:
    """Run one search (by_text, by_examples, ...) approximately and exactly; give recall@k.

    Example: compare_exact(by_text, store, "demo", "clip", "a dog on snow", limit=50).
    """
    kwargs.pop("exact", None)
    t0 = time.perf_counter()
    approx = search(*args, exact=False, **kwargs)
    t1 = time.perf_counter()
    truth = search(*args, exact=True, **kwargs)
    t2 = time.perf_counter()
    truth_ids = {h.id for h in truth}
    recall = len({h.id for h in approx} & truth_ids) / len(truth_ids) if truth_ids else 1.0
    return ExactComparison(recall, len(truth), approx, truth, (t1 - t0) * 1e3, (t2 - t1) * 1e3)
