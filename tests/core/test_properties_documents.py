"""Property tests: the documents area round-trips JSON documents cut at chunk boundaries, on both adapters.

CHUNK_CHARS is patched to 50 characters so that small documents span many chunks. Documents are
padded so that their JSON text is exactly around k * CHUNK_CHARS long, or so that an escaped
character (a multi-byte one, an astral one, a lone surrogate, a quote) straddles a chunk boundary.
They hold nested lists / dicts, unicode, numpy arrays and numpy scalars. A second put replaces the
first and leaves exactly the new document's chunks behind; delete leaves none.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.filters import Condition, Filter
from core.store import documents
from core.store.base import VectorStore
from tests.core.conftest import STORE_KINDS, make_store, same_typed

P, KIND = "props", "proptest"
CHUNK = 50
# Characters whose JSON escape is longer than one character (json.dumps escapes non-ASCII).
SPECIAL = ["é", "日", "😀", "\udc80", "\\", '"', "\n", "\x00", "a"]

numpy_leaves = st.one_of(
    st.floats(width=32, allow_nan=False).map(np.float32),
    st.integers(-(2**62), 2**62).map(np.int64),
    st.booleans().map(np.bool_),
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.int32, np.bool_]), hnp.array_shapes(max_dims=2, max_side=4),
               elements={"allow_nan": False}),
)
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                   st.text(st.characters(codec=None, exclude_categories=()), max_size=12), numpy_leaves)
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=25)
keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


def _plain(value: Any) -> Any:
    """What a document reads back as: numpy values as plain JSON values, tuples as lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _text(doc: dict[str, Any]) -> str:
    """The JSON text the documents area cuts into chunks (same separators as DocumentArea.put)."""
    return json.dumps(_plain(doc), separators=(",", ":"))


@st.composite
def boundary_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A document whose text is k*CHUNK (+-2) long, or has an escaped character across a boundary."""
    body = draw(json_values)
    special = draw(st.sampled_from(SPECIAL))
    n = len(_text({"body": body, "pad": ""}))
    pad_at = n - 2  # the padding's text starts before the closing `"}`
    if draw(st.booleans()):  # total length right at a multiple of CHUNK
        target = max(n, (math.ceil(n / CHUNK) + draw(st.integers(0, 2))) * CHUNK + draw(st.integers(-2, 2)))
        doc = {"body": body, "pad": "a" * (target - n)}
        assert len(_text(doc)) == target
        return doc
    escaped = len(json.dumps(special)) - 2
    before = draw(st.integers(0, escaped))  # how much of the escape lies before the boundary
    boundary = (math.ceil((pad_at + before) / CHUNK) + draw(st.integers(0, 1))) * CHUNK
    pad = "a" * (boundary - before - pad_at) + special + "a" * draw(st.integers(0, 3))
    doc = {"body": body, "pad": pad}
    assert _text(doc)[boundary - before : boundary - before + escaped] == json.dumps(special)[1:-1]
    return doc


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VectorStore]]:
    """One store of each kind, with CHUNK_CHARS patched small for the whole module."""
    root: Path = tmp_path_factory.mktemp("documents")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(documents, "CHUNK_CHARS", CHUNK)
        opened = {kind: make_store(kind, root / "edge" if kind == "edge" else None) for kind in STORE_KINDS}
        try:
            yield opened
        finally:
            for store in opened.values():
                store.close()


def _chunk_count(store: VectorStore, key: str) -> int:
    """Chunk points of one document, whatever their version (stale ones included)."""
    flt = Filter(must=(Condition(documents.PROJECT, equals=P), Condition(documents.KIND, equals=KIND),
                       Condition(documents.KEY, equals=key), Condition(documents.ROLE, equals=documents.CHUNK)))
    hold = getattr(store, "hold", None)  # the Edge store reads its shards under its lease
    with hold("test") if hold else contextlib.nullcontext():
        return len(store.doc_scroll(flt))  # type: ignore[attr-defined]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, first=boundary_docs(), second=boundary_docs())
def test_documents_round_trip_at_chunk_boundaries_and_replace_cleanly(
        stores: dict[str, VectorStore], key: str, first: dict[str, Any], second: dict[str, Any]) -> None:
    assert documents.CHUNK_CHARS == CHUNK
    for kind, store in stores.items():
        for doc in (first, second):  # the second put replaces the first
            store.put_document(P, KIND, key, doc)
            got = store.get_document(P, KIND, key)
            assert got is not None and same_typed(got, _plain(doc)), (kind, len(_text(doc)))
            assert key in store.list_documents(P, KIND), kind
            assert _chunk_count(store, key) == math.ceil(len(_text(doc)) / CHUNK), (kind, "stale chunks left")
        assert store.delete_document(P, KIND, key) is True
        assert store.get_document(P, KIND, key) is None and key not in store.list_documents(P, KIND), kind
        assert _chunk_count(store, key) == 0, kind


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(keys, min_size=2, max_size=4, unique=True), doc=boundary_docs())
def test_documents_with_distinct_unicode_keys_stay_apart(
        stores: dict[str, VectorStore], names: list[str], doc: dict[str, Any]) -> None:
    # e.g. "é" composed and decomposed are two keys: keyword matching is exact, never normalised.
    for kind, store in stores.items():
        for i, name in enumerate(names):
            store.put_document(P, KIND, name, {**doc, "i": i})
        assert set(names) <= set(store.list_documents(P, KIND)), kind
        for i, name in enumerate(names):
            assert store.get_document(P, KIND, name) == _plain({**doc, "i": i}), (kind, name)
            store.delete_document(P, KIND, name)


def test_composed_and_decomposed_keys_are_two_documents(stores: dict[str, VectorStore]) -> None:
    for kind, store in stores.items():
        store.put_document(P, KIND, "caf\u00e9", {"v": 1})
        store.put_document(P, KIND, "cafe\u0301", {"v": 2})
        assert store.get_document(P, KIND, "caf\u00e9") == {"v": 1}, kind
        assert store.get_document(P, KIND, "cafe\u0301") == {"v": 2}, kind
        assert store.delete_document(P, KIND, "caf\u00e9") and store.delete_document(P, KIND, "cafe\u0301")
