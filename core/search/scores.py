"""Readable scores of example searches: cosines to the examples instead of Qdrant's squashed recommend score.

Qdrant's best-score recommend ranks a point by its cosine to the nearest positive example when that
beats its cosine to every negative one (else by minus the cosine to the nearest negative), then
squashes the value with a "scaled fast sigmoid" 0.5 * (x / (1 + |x|) + 1): an identical copy of a
positive scores 0.75 and the whole useful range 0.8..1.0 lands in 0.72..0.75. The ranking is right,
the number is not readable. Here the hits keep Qdrant's order and get the cosines back, computed
from the vectors of the top hits (MAX_SCORED at most) and the examples.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.linalg import l2_normalise
from core.store.base import VectorStore
from core.types import Hit

log = logging.getLogger(__name__)

# Hits whose vectors are read to compute cosines (the dashboard shows at most 240); hits past it
# get their score decoded from Qdrant's (exact for its formula) and no nearest-positive cosine.
MAX_SCORED = 1000


@dataclass(frozen=True)
class ExampleHit(Hit):
    """A hit of an example search. score: Qdrant's best-score rule on the cosine scale (the cosine
    to the nearest positive example; minus the cosine to the nearest negative one when that is
    closer). nearest_positive: cosine to the closest positive example (1.0 = identical), NaN when
    not computed; nearest_positive_id: that example; nearest_negative: cosine to the closest
    negative example (None without negatives)."""

    nearest_positive: float = math.nan
    nearest_positive_id: str = ""
    nearest_negative: float | None = None


def decode_recommend_score(score: float) -> float:
    """Qdrant's best-score recommend score back on the cosine scale (inverse of its scaled fast
    sigmoid s = 0.5 * (x / (1 + |x|) + 1), applied with a minus sign when a negative example wins)."""
    squashed = 2.0 * abs(score) - 1.0  # x / (1 + |x|), in (-1, 1)
    cosine = squashed / (1.0 - abs(squashed))
    return cosine if score >= 0 else -cosine


def best_score(nearest_positive: np.ndarray, nearest_negative: np.ndarray | None) -> np.ndarray:
    """Qdrant's best-score rule without the squashing: the nearest positive's cosine where it beats
    the nearest negative's, else minus the nearest negative's. (n,) arrays -> (n,) float32."""
    if nearest_negative is None:
        return nearest_positive.astype(np.float32)
    return np.where(nearest_positive > nearest_negative, nearest_positive, -nearest_negative).astype(np.float32)


def single_example_hits(hits: Sequence[Hit], example: str) -> list[ExampleHit]:
    """Hits of a nearest-neighbour query by one example's vector: the score is already the cosine."""
    return [ExampleHit(h.id, float(h.score), h.payload, float(h.score), example, None) for h in hits]


def score_example_hits(
    store: VectorStore,
    project: str,
    space: str,
    hits: Sequence[Hit],
    positive: Sequence[str],
    negative: Sequence[str] = (),
) -> list[ExampleHit]:
    """Recommend hits (Qdrant's order kept) with cosines to the examples, read from the vectors of
    the examples and of the top MAX_SCORED hits (two retrieves by id, never a scan)."""
    if not positive:
        raise ValueError("score_example_hits needs at least one positive example")
    top = [h.id for h in hits[:MAX_SCORED]]
    example_ids, example_vectors = store.vectors(project, space, ids=[*positive, *negative])
    hit_ids, hit_vectors = store.vectors(project, space, ids=top)
    examples = dict(zip(example_ids, l2_normalise(example_vectors), strict=True))
    pos_ids = [i for i in positive if i in examples]
    neg_ids = [i for i in negative if i in examples]
    if not pos_ids or not hit_ids:
        log.warning("example vectors or hit vectors missing in %s/%s: scores left as Qdrant's", project, space)
        return [_decoded(h) for h in hits]
    units = l2_normalise(hit_vectors)
    to_pos = units @ np.stack([examples[i] for i in pos_ids]).T  # (hits, positives)
    near_pos, which = to_pos.max(axis=1), to_pos.argmax(axis=1)
    near_neg = (units @ np.stack([examples[i] for i in neg_ids]).T).max(axis=1) if neg_ids else None
    scores = best_score(near_pos, near_neg)
    row = {pid: n for n, pid in enumerate(hit_ids)}
    out = []
    for hit in hits:
        n = row.get(hit.id)
        if n is None:  # past MAX_SCORED (or deleted meanwhile)
            out.append(_decoded(hit))
            continue
        negative_cos = None if near_neg is None else float(near_neg[n])
        out.append(ExampleHit(hit.id, float(scores[n]), hit.payload, float(near_pos[n]),
                              pos_ids[int(which[n])], negative_cos))
    return out


def best_cosine(hits: Sequence[Hit]) -> float | None:
    """The best hit's cosine to the query: the highest nearest-positive cosine of example hits, the
    first score otherwise (hits of by_vector / by_text / by_image are cosines, best first).
    None without hits or cosines."""
    if not hits:
        return None
    if isinstance(hits[0], ExampleHit):
        known = [h.nearest_positive for h in hits if isinstance(h, ExampleHit) and math.isfinite(h.nearest_positive)]
        return max(known) if known else None
    return float(hits[0].score)


def _decoded(hit: Hit) -> ExampleHit:
    return ExampleHit(hit.id, decode_recommend_score(hit.score), hit.payload)
