"""Property tests of the persisted and parsed forms: maps, analysis frames, compare sides, names, ids.

* a StoredMap survives to_doc -> the store -> from_doc bit for bit (float32 coords, NaN included);
* an analysis / compare table survives frame_to_doc -> the store -> doc_to_frame (floats to 6
  significant digits, missing values, booleans, ints, unicode text; and every column's dtype);
* CompareSide.parse reads back every side's name and the typeable "dataset:split";
* store names encode reversibly into collection names;
* point ids and readable item keys never raise and are stable for any text or file name.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.errors import BadInputError
from core.ids import object_id, point_id, readable_key
from core.pipeline.analysis_io import doc_to_frame, frame_to_doc
from core.pipeline.compare_sides import SPLIT_MARK, CompareSide
from core.pipeline.map_doc import MAP_KIND, StoredMap, from_doc, map_key, to_doc
from core.store.base import VectorStore
from core.store.names import collection_name, decode, encode, parse_collection_name, validate_name
from tests.core.conftest import make_store

P = "props"
FAST = settings(max_examples=200, deadline=None, database=None)
STORE = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

any_text = st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates included
utf8_text = st.text(st.characters(codec="utf-8"))
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                      st.floats(allow_nan=False, allow_infinity=False), utf8_text)
json_dicts = st.dictionaries(st.text(max_size=8), st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10), max_size=4)


def _valid(name: str) -> bool:
    try:
        validate_name(name)
    except BadInputError:
        return False
    return True


names = st.from_regex(r"[\w\-. ]{1,100}", fullmatch=True).filter(_valid)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorStore]:
    """One embedded store for the module: documents go through real JSON storage."""
    root: Path = tmp_path_factory.mktemp("roundtrips")
    opened = make_store("edge", root / "edge")
    try:
        yield opened
    finally:
        opened.close()


# -- maps -----------------------------------------------------------------------------------------
@st.composite
def stored_maps(draw: st.DrawFn) -> StoredMap:
    n = draw(st.integers(0, 40))
    d = draw(st.integers(1, 6))
    f32 = hnp.from_dtype(np.dtype(np.float32))  # NaN, inf, -0.0 and subnormals included
    pca = draw(st.booleans())
    return StoredMap(
        ids=draw(st.lists(utf8_text, min_size=n, max_size=n)),
        coords=draw(hnp.arrays(np.float32, (n, 2), elements=f32)),
        fitted=draw(hnp.arrays(np.bool_, (n,))),
        method=draw(st.sampled_from(["umap", "pca", "tsne"])),
        params=draw(json_dicts), resolved=draw(json_dicts),
        pca_mean=draw(hnp.arrays(np.float32, (d,), elements=f32)) if pca else None,
        pca_components=draw(hnp.arrays(np.float32, (2, d), elements=f32)) if pca else None,
        seconds=draw(st.floats(0, 1e5)),
    )


def _same_bits(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@STORE
@given(stored=stored_maps(), datasets=st.lists(names, min_size=1, max_size=3, unique=True))
def test_maps_round_trip_bit_for_bit_through_the_store(store: VectorStore, stored: StoredMap,
                                                       datasets: list[str]) -> None:
    key = map_key("space", datasets, stored.method, stored.params, None)
    store.put_document(P, MAP_KIND, key, to_doc(stored, "space", datasets, None))
    doc = store.get_document(P, MAP_KIND, key)
    assert doc is not None
    back = from_doc(doc, stored.method, stored.params, key)
    assert back is not None
    assert back.ids == stored.ids and back.method == stored.method and back.params == stored.params
    assert back.resolved == stored.resolved and back.seconds == round(stored.seconds, 3)
    assert _same_bits(back.coords, stored.coords) and back.coords.shape == (len(stored.ids), 2)
    assert back.fitted.dtype == np.bool_ and np.array_equal(back.fitted, stored.fitted)
    assert _same_bits(back.pca_mean, stored.pca_mean) and _same_bits(back.pca_components, stored.pca_components)
    # Another method or other params: the persisted map is not reused (refit).
    other = "pca" if stored.method != "pca" else "umap"
    assert from_doc(doc, other, stored.params, key) is None
    assert from_doc(doc, stored.method, {**stored.params, "__changed": 1}, key) is None


@FAST
@given(datasets=st.lists(names, min_size=1, max_size=4, unique=True), params=json_dicts, seed=st.randoms())
def test_map_key_ignores_dataset_and_parameter_order(datasets: list[str], params: dict[str, Any],
                                                     seed: Any) -> None:
    shuffled = datasets[:]
    seed.shuffle(shuffled)
    reordered = dict(reversed(list(params.items())))
    assert map_key("s", shuffled, "umap", reordered, None) == map_key("s", datasets, "umap", params, None)
    assert map_key("s", datasets, "umap", params, None) != map_key("s", datasets, "pca", params, None)


# -- analysis frames ------------------------------------------------------------------------------
FLOATS = st.one_of(st.floats(allow_nan=True), st.sampled_from([1.234567e-9, 4e-7, 123456.789, -0.0]))
TEXT = st.one_of(st.sampled_from(["cat", "Ünï", "日本", "", "=1+2", "a b"]), utf8_text)


def _column(kind: str, n: int, draw: st.DrawFn) -> pd.Series:
    """One column of n rows of a kind found in analysis tables."""
    maybe = st.booleans()  # whether a row is missing (nullable kinds)
    if kind == "float64":
        return pd.Series(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype="float64")
    if kind == "float32":
        return pd.Series(draw(st.lists(st.floats(width=32), min_size=n, max_size=n)), dtype="float32")
    if kind == "int64":
        return pd.Series(draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)), dtype="int64")
    if kind == "Int64":
        values = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
        return pd.Series([None if draw(maybe) else v for v in values], dtype="Int64")
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype="bool")
    if kind == "boolean":
        values = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        return pd.Series([None if draw(maybe) else v for v in values], dtype="boolean")
    if kind == "text":
        return pd.Series([None if draw(maybe) else draw(TEXT) for _ in range(n)], dtype=object)
    return pd.Series([draw(st.lists(utf8_text, max_size=3)) for _ in range(n)], dtype=object)  # id lists


KINDS = ["float64", "float32", "int64", "Int64", "bool", "boolean", "text", "lists"]


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 8))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    columns = draw(st.lists(utf8_text, min_size=len(kinds), max_size=len(kinds), unique=True))
    index = draw(st.lists(utf8_text, min_size=n, max_size=n, unique=True))
    frame = pd.DataFrame({name: _column(kind, n, draw) for name, kind in zip(columns, kinds, strict=True)})
    frame.index = pd.Index(index, name=draw(st.sampled_from(["id", None, "group"])), dtype=object)
    return frame


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _same_value(before: Any, after: Any) -> bool:
    """One cell after a round trip: floats to 6 significant digits, everything else exactly."""
    if isinstance(before, (list, np.ndarray)):
        return isinstance(after, list) and list(before) == after
    if _missing(before) or _missing(after):
        return _missing(before) and _missing(after)
    if isinstance(before, (bool, np.bool_)):
        return isinstance(after, (bool, np.bool_)) and bool(after) == bool(before)
    if isinstance(before, (float, np.floating)):
        return (not isinstance(after, (bool, np.bool_)) and isinstance(after, (int, float, np.number))
                and (after == before or math.isclose(after, before, rel_tol=5e-6)))
    if isinstance(before, (int, np.integer)):
        return not isinstance(after, (bool, np.bool_)) and after == before
    return type(after) is type(before) and after == before


def _through_store(store: VectorStore, frame: pd.DataFrame) -> pd.DataFrame:
    store.put_document(P, "analysis", "frame", {"table": frame_to_doc(frame)})
    doc = store.get_document(P, "analysis", "frame")
    assert doc is not None
    return doc_to_frame(doc["table"])


@STORE
@given(frame=frames())
def test_analysis_frames_keep_their_values_through_the_store(store: VectorStore, frame: pd.DataFrame) -> None:
    back = _through_store(store, frame)
    assert list(back.columns) == list(frame.columns) and back.index.name == frame.index.name
    assert list(back.index) == list(frame.index)
    for name in frame.columns:
        for row, (before, after) in enumerate(zip(frame[name].astype(object), back[name].astype(object), strict=True)):
            assert _same_value(before, after), (name, frame[name].dtype, row, before, after)


def _family(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "text"


@STORE
@given(frame=frames())
def test_analysis_frames_keep_every_column_dtype_through_the_store(store: VectorStore, frame: pd.DataFrame) -> None:
    # A column read back must stay usable as what it was: an all-NaN score column is still float
    # (not None objects), a nullable int / bool column keeps its type and exact values, and an
    # empty table keeps its column types.
    back = _through_store(store, frame)
    for name in frame.columns:
        assert _family(back[name].dtype) == _family(frame[name].dtype), (name, frame[name].dtype, back[name].dtype)
        if isinstance(frame[name].dtype, pd.Int64Dtype):
            assert back[name].astype(object).tolist() == frame[name].astype(object).tolist(), name


# -- compare sides --------------------------------------------------------------------------------
splits = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


@FAST
@given(dataset=names, split=st.one_of(st.none(), splits))
def test_compare_sides_parse_back_from_their_names(dataset: str, split: str | None) -> None:
    side = CompareSide(dataset, split)
    assert CompareSide.parse(side.name) == side
    assert CompareSide.parse(str(side)) == side


@FAST
@given(dataset=names, split=splits)
def test_compare_sides_parse_the_typeable_dataset_colon_split(dataset: str, split: str) -> None:
    # A split value holding the display mark itself parses only in the display form (see report).
    assume(SPLIT_MARK not in split)
    assert CompareSide.parse(f"{dataset}:{split}") == CompareSide(dataset, split)
    assert CompareSide.parse(dataset) == CompareSide(dataset)


# -- store names ----------------------------------------------------------------------------------
@FAST
@given(project=names, space=names)
def test_names_encode_reversibly_into_collection_names(project: str, space: str) -> None:
    for name in (project, space):
        encoded = encode(name)
        assert decode(encoded) == name and "__" not in encoded
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in encoded), encoded
    assert parse_collection_name(collection_name(project, space)) == (project, space)


@FAST
@given(a=any_text, b=any_text)
def test_reading_any_collection_name_never_raises(a: str, b: str) -> None:
    for text in (a, f"es__{a}__{b}"):  # a server may hold collections embedscope did not make
        parsed = parse_collection_name(text)
        assert parsed is None or (isinstance(parsed, tuple) and len(parsed) == 2)


# -- ids and item keys ----------------------------------------------------------------------------
ID_NAMESPACE = uuid.UUID("6f1d2c7e-5b1a-4c52-9a0e-3f5e8d2b7c41")  # core.ids; a change re-ids every store


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@FAST
@given(project=any_text, dataset=any_text, key=any_text)
def test_point_ids_never_raise_and_are_stable_for_any_text(project: str, dataset: str, key: str) -> None:
    pid = point_id(project, dataset, key)
    assert pid == point_id(project, dataset, key) and str(uuid.UUID(pid)) == pid
    assert object_id(project, dataset, key, "label", 0) == object_id(project, dataset, key, "label", 0)
    name = f"{project}/{dataset}/{key}"
    if _is_utf8(name):  # ids of valid text are what they always were: stores made before keep theirs
        assert pid == str(uuid.uuid5(ID_NAMESPACE, name))


@FAST
@given(text=any_text)
def test_readable_keys_are_utf8_and_leave_valid_text_alone(text: str) -> None:
    key = readable_key(text)
    assert _is_utf8(key)  # payloads, CSV files and messages can hold it
    assert readable_key(key) == key
    assert key == text or not _is_utf8(text)


def _not_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@FAST
@given(names=st.lists(st.binary(min_size=1, max_size=12).filter(_not_utf8), min_size=2, max_size=5, unique=True))
@example(names=[b"\xe9%E9", b"%E9\xe9"])  # random bytes rarely spell an escape themselves
def test_distinct_undecodable_file_names_get_distinct_item_keys_and_ids(names: list[bytes]) -> None:
    # os.fsdecode keeps bytes that are not UTF-8 as lone surrogates (Linux); the ingest derives the
    # item key with readable_key and the point id from that key, so two such files of one folder
    # must not share a key. (A valid name that spells another's escape, "caf%E9.jpg" next to
    # b"caf\xe9.jpg", cannot be told apart while valid names stay unchanged: the ingest rejects the
    # second as a duplicate key, by name.)
    keys = [readable_key(os.fsdecode(name)) for name in names]
    assert len(set(keys)) == len(names), dict(zip(names, keys, strict=True))
    assert len({point_id(P, "d", k) for k in keys}) == len(names)


def test_json_cannot_hold_what_readable_key_removes() -> None:
    # Why readable_key exists: the documents area and payloads are JSON in UTF-8.
    with pytest.raises(UnicodeEncodeError):
        json.dumps("caf\udce9.jpg", ensure_ascii=False).encode("utf-8")
    assert readable_key("caf\udce9.jpg") == "caf%E9.jpg"
