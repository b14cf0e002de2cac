"""Near-duplicate detection objects (one object boxed twice, one crop repeated across images) and leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis import duplicates as dup
from core.analysis.knn import knn_graph
from core.types import DATASET, SOURCE, SPLIT

DUPLICATE_COLUMNS = ["group", "size", "source", "ids", "datasets", "leakage"]


def object_duplicates(vectors: np.ndarray, frame: pd.DataFrame, *, k: int = 10, seed: int = 0,
                      threshold: float = dup.DEFAULT_THRESHOLD,
                      relative: float = dup.DEFAULT_RELATIVE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per object: duplicate_group (-1 = none), leakage; one row per group: DUPLICATE_COLUMNS).

    Label boxes and predicted boxes are grouped apart: a prediction matched to its label is the same
    object by design, not a duplicate. Within each source the rule is the image analysis' own
    (core.analysis.duplicates on a kNN graph: O(n k) memory, no n x n matrix), so two labels of one
    object, or one crop pasted in several images, share a group; a group spanning datasets or splits leaks.
    vectors: (n, d) unit rows in frame's order; frame: the objects' payloads (SOURCE, DATASET, SPLIT if any).
    Groups are numbered biggest first over both sources."""
    n = len(frame)
    groups = np.full(n, -1, dtype=np.int64)
    leakage = np.zeros(n, dtype=bool)
    sources = frame[SOURCE].astype(str).to_numpy()
    split = frame[SPLIT] if SPLIT in frame.columns else pd.Series([None] * n, index=frame.index)
    origin = np.unique([f"{d}\x1f{s}" for d, s in zip(frame[DATASET], split, strict=True)], return_inverse=True)[1]
    found: list[tuple[str, np.ndarray]] = []
    for source in sorted(set(sources)):
        rows = np.flatnonzero(sources == source)
        if rows.size < 2:
            continue
        idx, sims = knn_graph(vectors[rows], min(k, rows.size - 1), seed=seed)
        local = dup.duplicate_groups(idx, sims, threshold, relative)
        leakage[rows] = dup.cross_dataset_groups(local, origin[rows])
        found += [(source, rows[m]) for m in dup.group_members(local)]
    # biggest first, then by first member: stable numbers across runs
    found.sort(key=lambda f: (-f[1].size, int(f[1].min())))
    ids = frame.index.to_numpy(dtype=object)
    datasets = frame[DATASET].astype(str).to_numpy()
    table = []
    for g, (source, members) in enumerate(found):
        groups[members] = g
        table.append({"group": g, "size": int(members.size), "source": source,
                      "ids": [str(v) for v in ids[members]], "datasets": sorted(set(datasets[members])),
                      "leakage": bool(leakage[members[0]])})
    per_object = pd.DataFrame({"duplicate_group": groups, "leakage": leakage}, index=frame.index.rename("id"))
    return per_object, pd.DataFrame(table, columns=DUPLICATE_COLUMNS)
