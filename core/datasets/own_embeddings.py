"""Read the user's own vectors: Parquet (id + list column) or .npy (+ an ids file), checked for shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.datasets.tables import as_text, check_utf8, find_column, find_name, read_table
from core.errors import BadInputError

log = logging.getLogger(__name__)

# Tried, in order, when the default vector column "embedding" is absent.
VECTOR_COLUMNS: tuple[str, ...] = ("embedding", "embeddings", "vector", "vectors", "features", "feature")
IDS_SUFFIXES: tuple[str, ...] = (".txt", ".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")
_NPY_HEADERS = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}


BLOCK_ROWS = 16_384  # vectors per block read from a file (32 MiB at 512-d float32)


@dataclass(frozen=True)
class OwnVectors:
    """The user's vectors file, checked but not read: keys (one per row, as text), shape (n, d),
    and blocks(rows) -> consecutive (k, d) float32 blocks, read from the file on each call so an
    ingest holds one block at a time (1M x 512 is 2 GiB as one array)."""

    path: Path
    keys: list[str]
    shape: tuple[int, int]
    read_blocks: Callable[[int], Iterator[np.ndarray]]

    def blocks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """(k, d) float32 blocks of at most `rows` (None: BLOCK_ROWS) rows, in file order (NaN
        rows as they are)."""
        rows = BLOCK_ROWS if rows is None else rows
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        return self.read_blocks(rows)

    def to_array(self) -> np.ndarray:
        """All vectors as one (n, d) float32 array (filled block by block: one copy in memory)."""
        out = np.empty(self.shape, dtype=np.float32)
        done = 0
        for block in self.blocks():
            out[done:done + len(block)] = block
            done += len(block)
        if done != self.shape[0]:
            raise BadInputError(f"{self.path}: {done} vectors read, {self.shape[0]} expected (file changed?)")
        return out


def load_own_embeddings(
    path: Path | str,
    ids_path: Path | str | None = None,
    *,
    id_column: str = "id",
    vector_column: str = "embedding",
) -> tuple[list[str], np.ndarray]:
    """(keys, vectors (n, d) float32) from a Parquet file or a .npy array plus an ids file: all
    in memory (open_own_embeddings(...).to_array()); ingests use open_own_embeddings' blocks."""
    own = open_own_embeddings(path, ids_path, id_column=id_column, vector_column=vector_column)
    return own.keys, own.to_array()


def open_own_embeddings(
    path: Path | str,
    ids_path: Path | str | None = None,
    *,
    id_column: str = "id",
    vector_column: str = "embedding",
) -> OwnVectors:
    """The own vectors of a Parquet file or a .npy array plus an ids file, checked, read lazily.

    Parquet: an id column and a list / fixed-size-list column of numbers (vector_column; when
    the default is absent, "vectors", "features"... or the only list column), checked batch by
    batch (nulls, ragged rows) before anything is returned. .npy: a 2-D numeric array (its header
    parsed, never unpickled; the file size checked against it) and ids_path: a .txt with one id
    per line or a CSV / Parquet / JSONL with id_column (or a single column). Keys are the ids as
    text, to join with manifest ids / folder keys. Rows with NaN / inf are returned as they are
    (the ingest rejects them one by one). Raises BadInputError naming the file (and row) for
    ragged vectors, missing or duplicate ids, row-count mismatches, empty or truncated files.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        if ids_path is not None:
            raise BadInputError(f"{path}: a Parquet file carries its own ids; drop the ids file {ids_path}")
        own = _from_parquet(path, id_column, vector_column)
    elif suffix == ".npy":
        if ids_path is None:
            raise BadInputError(f"{path}: a .npy file needs an ids file (one id per row, same order)")
        shape, read_blocks = _from_npy(path)
        keys = _read_ids(Path(ids_path).expanduser(), id_column)
        if len(keys) != shape[0]:
            raise BadInputError(f"{path} has {shape[0]} vectors but {ids_path} has {len(keys)} ids")
        own = OwnVectors(path, keys, shape, read_blocks)
    else:
        raise BadInputError(f"{path}: own embeddings must be .parquet or .npy (+ ids), not {suffix!r}")
    _check_unique(own.keys, path if suffix != ".npy" else Path(str(ids_path)))
    log.info("%s: %d vectors of %d dims", path, own.shape[0], own.shape[1])
    return own


def _from_parquet(path: Path, id_column: str, vector_column: str) -> OwnVectors:
    try:
        parquet = pq.ParquetFile(path)
        names = list(parquet.schema_arrow.names)
        id_col = _pick(path, names, id_column)
        fallbacks = VECTOR_COLUMNS if vector_column == "embedding" else ()
        lists = [n for n in names if _is_list(parquet.schema_arrow.field(n).type)]
        vec_col = _pick(path, names, vector_column, fallbacks, lists)
        ids = parquet.read(columns=[id_col]).column(id_col).to_pylist()
    except (OSError, pa.ArrowException) as e:
        raise BadInputError(f"{path}: cannot read the Parquet file ({e})") from e
    keys: list[str] = []
    for row, value in enumerate(ids):
        key = as_text(value)
        if key is None:
            raise BadInputError(f"{path}: row {row + 1} has no id (column {id_col!r})")
        keys.append(key)
    del ids

    def read_blocks(rows: int) -> Iterator[np.ndarray]:
        done, dim = 0, None
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=[vec_col]):
                block = _list_column_to_matrix(path, vec_col, batch.column(0), done, dim)
                dim, done = block.shape[1], done + len(block)
                yield block
        except (OSError, pa.ArrowException) as e:
            raise BadInputError(f"{path}: cannot read the Parquet file ({e})") from e

    dim = 0
    for block in read_blocks(BLOCK_ROWS):  # checked whole before an ingest stores anything
        dim = block.shape[1]
    if not keys or not dim:
        raise BadInputError(f"{path}: no vectors")
    return OwnVectors(path, keys, (len(keys), dim), read_blocks)


def _pick(path: Path, names: list[str], wanted: str, fallbacks: tuple[str, ...] = (),
          lists: list[str] | None = None) -> str:
    """The column `wanted` (exact, then case-insensitive), else a fallback name, else (with
    fallbacks) the only list column; BadInputError listing the columns otherwise."""
    found = find_name(names, (wanted, *fallbacks))
    if found is None and fallbacks and lists is not None and len(lists) == 1:
        found = lists[0]
    if found is None:
        raise BadInputError(f"{path}: no column {wanted!r}; columns are: {', '.join(names)}")
    return found


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


def _list_column_to_matrix(path: Path, column: str, array: pa.Array, first_row: int = 0,
                           dim: int | None = None) -> np.ndarray:
    """One batch of a list column -> (k, d) float32; every row must be present and have the same
    length (dim: the length of the rows before this batch). Rows are numbered from first_row."""
    if not _is_list(array.type):
        raise BadInputError(f"{path}: column {column!r} holds {array.type}, not lists of numbers")
    value_type = array.type.value_type
    if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
        raise BadInputError(f"{path}: column {column!r} holds lists of {value_type}, not numbers")
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise BadInputError(f"{path}: row {first_row + row + 1} has no vector (column {column!r})")
    n = len(array)
    if n == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    expected = int(lengths[0]) if dim is None else dim
    bad = np.flatnonzero(lengths != expected)
    if len(bad) or expected == 0:
        row = int(bad[0]) if len(bad) else 0
        raise BadInputError(
            f"{path}: ragged vectors in column {column!r}: row {first_row + row + 1} has {lengths[row]} values, "
            f"row 1 has {expected}" if len(bad) else f"{path}: empty vectors in column {column!r}"
        )
    # Nulls inside a vector become NaN here; the ingest rejects those rows one by one.
    flat = array.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(n, expected)


def _from_npy(path: Path) -> tuple[tuple[int, int], Callable[[int], Iterator[np.ndarray]]]:
    """(shape, read_blocks) of a 2-D numeric .npy: the header is parsed (never unpickled) and the
    rows read block by block at their offset (np.load would hold the whole array; a memory map
    would count every page it touched in the process's memory)."""
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: the .npy file is empty (0 bytes)")
    try:
        with path.open("rb") as f:
            version = npformat.read_magic(f)
            if version not in _NPY_HEADERS:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran, dtype = _NPY_HEADERS[version](f)
            offset = f.tell()
    except EOFError as e:  # the file ends inside the header
        raise BadInputError(f"{path}: the .npy file is truncated ({e})") from e
    except ValueError as e:
        raise BadInputError(f"{path}: not a numeric .npy array, or a truncated one ({e})") from e
    except OSError as e:
        raise BadInputError(f"{path}: cannot read the .npy file ({e})") from e
    if dtype.hasobject or dtype.kind not in "fiu":
        raise BadInputError(f"{path}: not a numeric .npy array ({dtype})")
    if len(shape) != 2:
        raise BadInputError(f"{path}: expected a 2-D (n, d) array of vectors, got shape {shape}")
    n, dim = int(shape[0]), int(shape[1])
    if n == 0 or dim == 0:
        raise BadInputError(f"{path}: expected a non-empty numeric array, got {dtype} {shape}")
    if path.stat().st_size < offset + n * dim * dtype.itemsize:
        raise BadInputError(f"{path}: the .npy file is truncated (its header says {n} x {dim} {dtype})")

    def read_blocks(rows: int) -> Iterator[np.ndarray]:
        with path.open("rb") as f:
            if fortran:  # column-major: rows are not contiguous on disk (rare); read it whole
                f.seek(offset)
                whole = np.fromfile(f, dtype=dtype, count=n * dim).reshape((n, dim), order="F")
                for start in range(0, n, rows):
                    yield np.ascontiguousarray(whole[start:start + rows], dtype=np.float32)
                return
            for start in range(0, n, rows):
                f.seek(offset + start * dim * dtype.itemsize)
                k = min(rows, n - start)
                block = np.fromfile(f, dtype=dtype, count=k * dim)
                if block.size != k * dim:
                    raise BadInputError(f"{path}: the .npy file is truncated (changed while reading?)")
                yield block.reshape(k, dim).astype(np.float32, copy=False)

    return (n, dim), read_blocks


def _read_ids(path: Path, id_column: str) -> list[str]:
    """Ids, one per vector: a .txt (one per line) or a table's id column (or its only column)."""
    if path.suffix.lower() not in IDS_SUFFIXES:
        raise BadInputError(f"{path}: an ids file must be one of {', '.join(IDS_SUFFIXES)}")
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise BadInputError(f"{path}: file not found")
        check_utf8(path)
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise BadInputError(f"{path}: line {number} is empty (one id per line)")
        return [line.strip() for line in lines]
    table = read_table(path)
    single = str(table.frame.columns[0]) if len(table.frame.columns) == 1 else None
    column = find_column(table.frame, (id_column,)) or single or table.column(id_column)
    keys: list[str] = []
    for row, value in enumerate(table.frame[column].tolist()):
        key = as_text(value)
        if key is None:
            raise BadInputError(f"{path}: {table.where(row)} has no id (column {column!r})")
        keys.append(key)
    return keys


def _check_unique(keys: list[str], where: Path) -> None:
    seen: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key in seen:
            raise BadInputError(f"{where}: duplicate id {key!r} (rows {seen[key] + 1} and {row + 1})")
        seen[key] = row
