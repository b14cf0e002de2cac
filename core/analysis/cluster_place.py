"""Placing items outside a clustered sample: a vote of their placed kNN neighbours, in rounds."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy.sparse import csr_matrix

from core.linalg import l2_normalise

NOISE = -1  # cluster id of noise (also core.analysis.clusters.NOISE)
UNSET = -2  # not yet placed (propagation)
_PLACE_ROUNDS = 12
_BLOCK_ROWS = 65_536  # rows per block of the centroid fallback


class Rows(Protocol):
    """What the clustering reads of the vectors: shape and rows by integer index (a numpy array,
    or two sets seen as one without a stacked copy, as compare does)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, rows: np.ndarray, /) -> np.ndarray: ...


def place_by_neighbours(labels: np.ndarray, idx: np.ndarray, sims: np.ndarray,
                        vectors: Rows) -> np.ndarray:
    """Fill the unplaced entries (-2) of labels from the kNN graph: each takes the label (a
    cluster, or noise) with the most similarity among its placed neighbours, in rounds, so
    items next to placed items are placed first and their neighbours next. Items no round
    reaches take the nearest cluster centroid by cosine. labels: (n,) int64, modified and returned.
    """
    for _ in range(_PLACE_ROUNDS):
        todo = np.flatnonzero(labels == UNSET)
        if todo.size == 0:
            return labels
        rows, votes = _vote(labels[idx[todo]], sims[todo])
        if rows.size == 0:
            break
        labels[todo[rows]] = votes  # placed together: a round reads only earlier rounds
    todo = np.flatnonzero(labels == UNSET)
    if todo.size:
        labels[todo] = _nearest_centroid(labels, vectors, todo)
    return labels


def _vote(nb: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of neighbour labels nb (u, k) with weights w, the label of most summed weight
    among placed neighbours (ties: the smaller label). Returns (rows with a vote, their labels)."""
    row, col = np.nonzero(nb != UNSET)
    if row.size == 0:
        return row, row
    keys, inverse = np.unique(np.stack([row, nb[row, col]], axis=1), axis=0, return_inverse=True)
    score = np.bincount(inverse.ravel(), weights=np.maximum(w[row, col], 0) + 1e-6)
    best = np.lexsort((keys[:, 1], -score, keys[:, 0]))
    first = np.r_[True, keys[best[1:], 0] != keys[best[:-1], 0]]
    return keys[best[first], 0], keys[best[first], 1]


def _nearest_centroid(labels: np.ndarray, vectors: Rows, rows: np.ndarray) -> np.ndarray:
    """Cluster of the nearest normalised cluster mean for each of rows (noise when none)."""
    placed = np.flatnonzero(labels >= 0)
    if placed.size == 0:
        return np.full(rows.size, NOISE, dtype=np.int64)
    names = np.unique(labels[placed])
    cent = np.zeros((names.size, vectors.shape[1]), dtype=np.float64)
    for start in range(0, placed.size, _BLOCK_ROWS):
        chunk = placed[start:start + _BLOCK_ROWS]
        # one-hot (clusters x rows) times the rows: the sums per cluster in one product
        onehot = csr_matrix((np.ones(chunk.size), (np.searchsorted(names, labels[chunk]), np.arange(chunk.size))),
                            shape=(names.size, chunk.size))
        cent += onehot @ vectors[chunk].astype(np.float64)
    cent = l2_normalise(cent)
    out = np.empty(rows.size, dtype=np.int64)
    for start in range(0, rows.size, _BLOCK_ROWS):
        out[start:start + _BLOCK_ROWS] = names[np.argmax(vectors[rows[start:start + _BLOCK_ROWS]] @ cent.T, axis=1)]
    return out
