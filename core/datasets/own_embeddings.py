"""Read the user's own vectors: Parquet (id + list column) or .npy (+ an ids file), checked for shape."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.datasets.tables import as_text, check_utf8, find_column, find_name, read_table
from core.errors import BadInputError

log = logging.getLogger(__name__)

# Tried, in order, when the default vector column "embedding" is absent.
VECTOR_COLUMNS: tuple[str, ...] = ("embedding", "embeddings", "vector", "vectors", "features", "feature")
IDS_SUFFIXES: tuple[str, ...] = (".txt", ".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")


def load_own_embeddings(
    path: Path | str,
    ids_path: Path | str | None = None,
    *,
    id_column: str = "id",
    vector_column: str = "embedding",
) -> tuple[list[str], np.ndarray]:
    """(keys, vectors (n, d) float32) from a Parquet file or a .npy array plus an ids file.

    Parquet: an id column and a list / fixed-size-list column of numbers (vector_column; when
    the default is absent, "vectors", "features"... or the only list column). .npy: a 2-D
    numeric array (loaded with allow_pickle=False) and ids_path: a .txt with one id per line or
    a CSV / Parquet / JSONL with id_column (or a single column). Keys are the ids as text, to
    join with manifest ids / folder keys. Rows with NaN / inf are returned as they are (the
    ingest rejects them one by one). Raises BadInputError naming the file (and row) for ragged
    vectors, missing or duplicate ids, and row-count mismatches.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        if ids_path is not None:
            raise BadInputError(f"{path}: a Parquet file carries its own ids; drop the ids file {ids_path}")
        keys, vectors = _from_parquet(path, id_column, vector_column)
    elif suffix == ".npy":
        if ids_path is None:
            raise BadInputError(f"{path}: a .npy file needs an ids file (one id per row, same order)")
        vectors = _from_npy(path)
        keys = _read_ids(Path(ids_path).expanduser(), id_column)
        if len(keys) != len(vectors):
            raise BadInputError(f"{path} has {len(vectors)} vectors but {ids_path} has {len(keys)} ids")
    else:
        raise BadInputError(f"{path}: own embeddings must be .parquet or .npy (+ ids), not {suffix!r}")
    _check_unique(keys, path if suffix != ".npy" else Path(str(ids_path)))
    log.info("%s: %d vectors of %d dims", path, vectors.shape[0], vectors.shape[1])
    return keys, vectors


def _from_parquet(path: Path, id_column: str, vector_column: str) -> tuple[list[str], np.ndarray]:
    try:
        schema = pq.read_schema(path)
        names = list(schema.names)
        id_col = _pick(path, names, id_column)
        fallbacks = VECTOR_COLUMNS if vector_column == "embedding" else ()
        lists = [n for n in names if _is_list(schema.field(n).type)]
        vec_col = _pick(path, names, vector_column, fallbacks, lists)
        table = pq.read_table(path, columns=[id_col, vec_col])
    except (OSError, pa.ArrowException) as e:
        raise BadInputError(f"{path}: cannot read the Parquet file ({e})") from e
    ids = table.column(id_col).to_pylist()
    keys: list[str] = []
    for row, value in enumerate(ids):
        key = as_text(value)
        if key is None:
            raise BadInputError(f"{path}: row {row + 1} has no id (column {id_col!r})")
        keys.append(key)
    return keys, _list_column_to_matrix(path, vec_col, table.column(vec_col).combine_chunks())


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


def _list_column_to_matrix(path: Path, column: str, array: pa.Array) -> np.ndarray:
    """A list column -> (n, d) float32; every row must be present and have the same length."""
    if not _is_list(array.type):
        raise BadInputError(f"{path}: column {column!r} holds {array.type}, not lists of numbers")
    value_type = array.type.value_type
    if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
        raise BadInputError(f"{path}: column {column!r} holds lists of {value_type}, not numbers")
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise BadInputError(f"{path}: row {row + 1} has no vector (column {column!r})")
    n = len(array)
    if n == 0:
        raise BadInputError(f"{path}: no vectors")
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != lengths[0])
    if len(bad) or lengths[0] == 0:
        row = int(bad[0]) if len(bad) else 0
        raise BadInputError(
            f"{path}: ragged vectors in column {column!r}: row {row + 1} has {lengths[row]} values, "
            f"row 1 has {lengths[0]}" if len(bad) else f"{path}: empty vectors in column {column!r}"
        )
    # Nulls inside a vector become NaN here; the ingest rejects those rows one by one.
    flat = array.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(n, int(lengths[0]))


def _from_npy(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: the .npy file is empty (0 bytes)")
    try:
        array = np.load(path, allow_pickle=False)
    except EOFError as e:  # the file ends inside the header
        raise BadInputError(f"{path}: the .npy file is truncated ({e})") from e
    except ValueError as e:
        raise BadInputError(f"{path}: not a numeric .npy array, or a truncated one ({e})") from e
    except OSError as e:
        raise BadInputError(f"{path}: cannot read the .npy file ({e})") from e
    if not isinstance(array, np.ndarray) or array.ndim != 2:
        shape = getattr(array, "shape", "?")
        raise BadInputError(f"{path}: expected a 2-D (n, d) array of vectors, got shape {shape}")
    if array.dtype.kind not in "fiu" or array.shape[0] == 0 or array.shape[1] == 0:
        raise BadInputError(f"{path}: expected a non-empty numeric array, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


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
