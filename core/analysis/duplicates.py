"""Near-duplicate groups from the kNN graph, and duplicates that cross datasets (leakage)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Cosine similarity at or above which two items count as near-duplicates. Re-encoded or resized
# copies of one image sit above ~0.98 in typical vision embeddings; distinct photos of one
# subject rarely do.
DEFAULT_THRESHOLD = 0.98
# ... and closer than this fraction of the median nearest-neighbour distance. A classifier's
# penultimate layer packs a whole class tight (the demo's MLP space: median nearest-neighbour
# cosine distance 0.015, so 73% of items have a neighbour above 0.98); the relative rule keeps
# "duplicate" meaning "far closer than neighbours usually are" in every space.
DEFAULT_RELATIVE = 0.2


def duplicate_cutoff(nn_sims: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                     relative: float = DEFAULT_RELATIVE) -> float:
    """The cosine similarity at or above which two items are near-duplicates in this set:
    the stricter of `threshold` and 1 - relative * median nearest-neighbour distance.
    nn_sims: (n,) each item's similarity to its nearest other item."""
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
    if relative <= 0:
        raise ValueError(f"relative must be > 0, got {relative}")
    typical = float(np.median(1.0 - nn_sims)) if nn_sims.size else 0.0
    return max(threshold, 1.0 - max(relative * typical, 1e-6))


def duplicate_groups(
    idx: np.ndarray, sims: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
    relative: float = DEFAULT_RELATIVE,
) -> np.ndarray:
    """Group id per item (-1 = no near-duplicate), groups numbered by decreasing size.

    Every kNN edge with similarity >= duplicate_cutoff(...) joins its two ends; groups are the connected
    components (union-find) of those edges, so A~B and B~C put A, B, C in one group even when
    A and C fall just under the threshold. A group larger than k+1 is still found whole as long
    as its members chain together through their k nearest neighbours.
    idx, sims: (n, k) kNN graph. Returns (n,) int64.
    """
    cutoff = duplicate_cutoff(sims[:, 0], threshold, relative)
    n, k = idx.shape
    rows = np.repeat(np.arange(n), k)
    keep = sims.ravel() >= cutoff
    graph = coo_matrix(
        (np.ones(int(keep.sum()), dtype=np.int8), (rows[keep], idx.ravel()[keep])), shape=(n, n)
    )
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    groups = np.full(n, -1, dtype=np.int64)
    multi = np.flatnonzero(sizes > 1)
    # Renumber components with >1 member: biggest first, ties by first member, so ids are stable.
    first = np.full(sizes.size, n)
    np.minimum.at(first, comp, np.arange(n))
    order = multi[np.lexsort((first[multi], -sizes[multi]))]
    new_id = np.full(sizes.size, -1, dtype=np.int64)
    new_id[order] = np.arange(order.size)
    groups[:] = new_id[comp]
    return groups


def cross_dataset_groups(groups: np.ndarray, dataset_codes: np.ndarray) -> np.ndarray:
    """True for items whose duplicate group spans more than one dataset (train/test leakage).

    groups: (n,) from duplicate_groups; dataset_codes: (n,) int. Returns (n,) bool.
    """
    in_group = groups >= 0
    if not in_group.any():
        return np.zeros(groups.shape, dtype=bool)
    pairs = np.unique(np.stack([groups[in_group], dataset_codes[in_group]], axis=1), axis=0)
    spans = np.bincount(pairs[:, 0], minlength=int(groups.max()) + 1)
    return in_group & (spans[np.where(in_group, groups, 0)] > 1)


def group_members(groups: np.ndarray) -> list[np.ndarray]:
    """Member indices of each group, in group-id order. groups: (n,) int -> list of (m,) int."""
    valid = np.flatnonzero(groups >= 0)
    order = valid[np.argsort(groups[valid], kind="stable")]
    bounds = np.searchsorted(groups[order], np.arange(int(groups.max(initial=-1)) + 2))
    return [order[bounds[g] : bounds[g + 1]] for g in range(len(bounds) - 1)]
