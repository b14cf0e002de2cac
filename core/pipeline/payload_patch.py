"""Apply payload journal entries (core.store.journal) to a cached payload frame, exactly as a full read would show them.

A full read (core.store.common.PayloadColumns) infers each column's dtype from its values and
orders columns by first appearance: by point in id order, then by key within the point's payload
(Qdrant keeps keys in write order, a new key last, nested meta flattened after the top-level keys).
patch() reproduces both or refuses (None): values for `meta` or for a field the selection's filter
tests (the selection itself could change), and a new column whose place is not certain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.filters import Filter
from core.store.journal import Entry
from core.types import META


def patch(frame: pd.DataFrame, links: Sequence[Entry], flt: Filter | None,
          fields: Sequence[str] | None) -> list[str] | None:
    """Apply the entries' values (oldest first) to frame in place -> the columns changed, or None
    when they cannot be applied exactly (the caller then reads the store)."""
    tested = {c.field.split(".", 1)[0] for c in (*flt.must, *flt.must_not)} if flt is not None else set()
    columns: dict[str, np.ndarray] = {}
    new: dict[str, tuple[int, int, int]] = {}  # new column -> (first row, write, place in the value)
    for seq, (value, ids) in enumerate((v, i) for link in links for v, i in link.groups):
        if any(k == META or k.startswith(f"{META}.") or k in tested for k in value):
            return None
        keys = [k for k in value if fields is None or k in fields]
        if not keys:
            continue
        rows = frame.index.get_indexer(pd.Index(ids))
        rows = rows[rows >= 0]  # points outside the selection (another dataset) stay outside
        if not len(rows):
            continue
        for place, key in enumerate(keys):
            if key not in columns:
                if key in frame.columns:
                    columns[key] = frame[key].to_numpy(dtype=object, copy=True)
                else:  # fields is None: a key no point of the selection had
                    columns[key] = np.full(len(frame), np.nan, dtype=object)
                    new[key] = (len(frame), seq, place)
            if key in new and int(rows.min()) < new[key][0]:
                new[key] = (int(rows.min()), seq, place)
            column = columns[key]
            for row in rows:  # one by one: a list value must land whole in its cell
                column[row] = value[key]
    if new and not _new_columns_last(frame, min(first for first, _, _ in new.values())):
        return None
    # from a list, as a full read: pandas infers the same dtype; new columns last, as first met
    for key in [*(k for k in columns if k not in new), *sorted(new, key=new.__getitem__)]:
        frame[key] = pd.Series(columns[key].tolist(), index=frame.index)
    return list(columns)


def _new_columns_last(frame: pd.DataFrame, first_row: int) -> bool:
    """Whether a full read puts keys first met at first_row after every existing column. Columns
    are in order of first appearance, so it is enough that the last one appears in an earlier row;
    only a non-null value proves where (a null one hides it). A new key follows its point's older
    top-level keys but precedes its meta ones: a column first met in the same row could follow it."""
    if frame.shape[1] == 0:
        return True
    return bool(frame.iloc[:first_row, -1].notna().any())
