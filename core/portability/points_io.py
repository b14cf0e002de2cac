"""Points and documents as bundle files: Parquet per space and gzipped JSON lines, both streamed.

A space's points go to Parquet one store page at a time (iter_vectors), a row group per page, and
come back one row group at a time, so a 1M-point space never sits in memory whole. The payload
travels as JSON text (lossless: 1 stays an int, 1.0 a float, a missing field stays missing, nested
`meta` and lists stay as they are); `dataset` and `key` are copied beside it as plain columns so
other tools (pandas, DuckDB) can group and join a bundle without parsing JSON.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.store.base import VectorStore
from core.types import DATASET, KEY

PAGE = 2048  # points per store read / Parquet row group (~4 MB of vectors at 512-d)


def schema(dim: int) -> pa.Schema:
    """The Arrow schema of a points file: vector is a fixed-size list of dim float32."""
    return pa.schema([("id", pa.string()), ("dataset", pa.string()), ("key", pa.string()),
                      ("payload", pa.string()), ("vector", pa.list_(pa.float32(), dim))])


def _batch(ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]], dim: int) -> pa.RecordBatch:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    columns = [pa.array(ids, pa.string()),
               pa.array([_text(p.get(DATASET)) for p in payloads], pa.string()),
               pa.array([_text(p.get(KEY)) for p in payloads], pa.string()),
               pa.array([json.dumps(p, separators=(",", ":")) for p in payloads], pa.string()),
               pa.FixedSizeListArray.from_arrays(flat, dim)]
    return pa.RecordBatch.from_arrays(columns, schema=schema(dim))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def write_space(store: VectorStore, project: str, space: str, dim: int, path: Path,
                tick: Any = None) -> int:
    """Write every point of the space to path; returns the number written. tick(n) after each page."""
    written = 0
    with pq.ParquetWriter(path, schema(dim), compression="zstd") as writer:
        for ids, vectors, payloads in store.iter_vectors(project, space, batch=PAGE):
            writer.write_batch(_batch(ids, vectors, payloads, dim))
            written += len(ids)
            if tick is not None:
                tick(len(ids))
    return written


def read_space(path: Path, dim: int) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
    """(ids, vectors (n, dim) float32, payloads) per row group of a points file."""
    reader = pq.ParquetFile(path)
    for group in range(reader.num_row_groups):
        table = reader.read_row_group(group, columns=["id", "payload", "vector"])
        vectors = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        yield (table.column("id").to_pylist(), np.asarray(vectors, dtype=np.float32).reshape(-1, dim),
               [json.loads(text) for text in table.column("payload").to_pylist()])


def write_documents(store: VectorStore, project: str, path: Path) -> dict[str, int]:
    """Every document of the project as JSON lines; returns the count per kind."""
    kinds: dict[str, int] = {}
    keys = [(kind, key) for p, kind, key in store.document_index() if p == project]
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for kind, key in keys:
            doc = store.get_document(project, kind, key)
            if doc is None:  # deleted since the listing: the revision check of the export retries
                continue
            out.write(json.dumps({"kind": kind, "key": key, "doc": doc}, separators=(",", ":")) + "\n")
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def read_documents(path: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, key, doc) of each line of a documents file."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            yield str(entry["kind"]), str(entry["key"]), dict(entry["doc"])
