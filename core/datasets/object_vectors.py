"""Read own object vectors (Parquet: id + vector column; .npy + ids) block by block, naming bad rows instead of failing."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.datasets.own_embeddings import BLOCK_ROWS, VECTOR_COLUMNS, open_own_embeddings
from core.datasets.tables import as_text, find_name
from core.errors import BadInputError, DimensionMismatchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VectorBlock:
    """Consecutive rows of a vectors file: first_row (1-based row number of keys[0]), keys (None: no
    id), vectors (k, dim) float32 (the rows in `bad` hold NaN), bad: position -> why it has no vector."""

    first_row: int
    keys: list[str | None]
    vectors: np.ndarray
    bad: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectVectorsFile:
    """A checked vectors file, read again on each blocks() call (one block in memory at a time)."""

    path: Path
    rows: int
    dim: int
    read: Callable[[int], Iterator[VectorBlock]]

    def blocks(self, rows: int = BLOCK_ROWS) -> Iterator[VectorBlock]:
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        return self.read(rows)


def open_object_vectors(path: Path | str, ids_path: Path | str | None = None, *, id_column: str = "id",
                        vector_column: str = "embedding", dim: int | None = None) -> ObjectVectorsFile:
    """Own vectors of detection objects (or images), keyed by id, with row-level problems left to the caller.

    Parquet: an id column and a list column of numbers (vector_column, else "vectors",
    "features"... or the only list column). A row without an id or a vector, or whose length is
    not `dim` (None: the most common length in the file), is named in its block's `bad`, not
    raised: one bad row must not sink a file of a million objects. Repeated ids and NaN values
    are left to the ingest (it names them). .npy + ids: core.datasets.open_own_embeddings (one
    shape for every row; its checks raise) whose width must be `dim` when given.
    BadInputError naming the file for what no row can fix (missing file or column, not lists of
    numbers, no vectors, a .npy without ids); DimensionMismatchError when no row has `dim` values.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() == ".npy":
        return _npy(path, ids_path, id_column, dim)
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise BadInputError(f"{path}: object vectors must be .parquet or .npy (+ ids), not {path.suffix!r}")
    if ids_path is not None:
        raise BadInputError(f"{path}: a Parquet file carries its own ids; drop the ids file {ids_path}")
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    id_col, vec_col = _columns(path, id_column, vector_column)
    lengths = _lengths(path, vec_col)
    if not lengths:
        raise BadInputError(f"{path}: no vectors (column {vec_col!r} is empty or all null)")
    if dim is not None and dim not in lengths:  # a whole file of the wrong size: one error, not a reject per row
        raise DimensionMismatchError(f"{path}: no vector has {dim} values (the space's size); the file's are "
                                     f"{', '.join(str(n) for n, _ in lengths.most_common(3))}-d")
    width = dim if dim is not None else lengths.most_common(1)[0][0]
    rows = pq.ParquetFile(path).metadata.num_rows
    log.info("%s: %d rows, %d-d vectors expected", path, rows, width)

    def read(size: int) -> Iterator[VectorBlock]:
        done = 0
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=size, columns=[id_col, vec_col]):
                yield _block(done + 1, batch.column(0), batch.column(1), width)
                done += batch.num_rows
        except (OSError, pa.ArrowException) as e:
            raise BadInputError(f"{path}: cannot read the Parquet file ({e})") from e

    return ObjectVectorsFile(path, rows, width, read)


def _columns(path: Path, id_column: str, vector_column: str) -> tuple[str, str]:
    """(id column, vector column) of the file's schema; BadInputError listing the columns otherwise."""
    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (OSError, pa.ArrowException) as e:
        raise BadInputError(f"{path}: cannot read the Parquet file ({e})") from e
    names = list(schema.names)
    lists = [n for n in names if _is_list(schema.field(n).type)]
    id_col = find_name(names, (id_column,))
    fallbacks = VECTOR_COLUMNS if vector_column == "embedding" else ()
    vec_col = find_name(names, (vector_column, *fallbacks)) or (lists[0] if fallbacks and len(lists) == 1 else None)
    for wanted, found in ((id_column, id_col), (vector_column, vec_col)):
        if found is None:
            raise BadInputError(f"{path}: no column {wanted!r}; columns are: {', '.join(names)}")
    assert id_col is not None and vec_col is not None
    kind = schema.field(vec_col).type
    if not _is_list(kind) or not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise BadInputError(f"{path}: column {vec_col!r} holds {kind}, not lists of numbers")
    return id_col, vec_col


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


def _lengths(path: Path, column: str) -> Counter[int]:
    """How many rows have each vector length (null rows not counted), one pass over the column."""
    counts: Counter[int] = Counter()
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BLOCK_ROWS, columns=[column]):
            found = pc.list_value_length(batch.column(0)).drop_null().to_numpy(zero_copy_only=False)
            values, times = np.unique(found[found > 0], return_counts=True)
            counts.update(dict(zip(values.tolist(), times.tolist(), strict=True)))
    except (OSError, pa.ArrowException) as e:
        raise BadInputError(f"{path}: cannot read the Parquet file ({e})") from e
    return counts


def _block(first_row: int, ids: pa.Array, vectors: pa.Array, dim: int) -> VectorBlock:
    """One batch: keys as text, a (k, dim) matrix with NaN rows where the vector is missing or of another length."""
    keys = [as_text(value) for value in ids.to_pylist()]
    lengths = pc.list_value_length(vectors).to_numpy(zero_copy_only=False)
    bad: dict[int, str] = {at: "no id" for at, key in enumerate(keys) if key is None}
    out = np.full((len(keys), dim), np.nan, dtype=np.float32)
    good = np.zeros(len(keys), dtype=bool)
    for at, length in enumerate(lengths):
        if at in bad:
            continue
        if length is None or (isinstance(length, float) and np.isnan(length)):
            bad[at] = "no vector"
        elif int(length) != dim:
            bad[at] = f"vector has {int(length)} values, not {dim}"
        else:
            good[at] = True
    if good.any():
        chosen = vectors.filter(pa.array(good))
        flat = chosen.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        out[good] = flat.reshape(-1, dim)  # nulls inside a vector are NaN here: the ingest names them
    return VectorBlock(first_row, keys, out, bad)


def _npy(path: Path, ids_path: Path | str | None, id_column: str, dim: int | None) -> ObjectVectorsFile:
    own = open_own_embeddings(path, ids_path, id_column=id_column)
    n, width = own.shape
    if dim is not None and width != dim:
        raise DimensionMismatchError(f"{path}: vectors have {width} dims, the space holds {dim}-d vectors")

    def read(size: int) -> Iterator[VectorBlock]:
        done = 0
        for block in own.blocks(size):
            yield VectorBlock(done + 1, list(own.keys[done:done + len(block)]), block)
            done += len(block)

    return ObjectVectorsFile(path, n, width, read)
