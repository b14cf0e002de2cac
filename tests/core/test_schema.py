"""Versioned storage: the schema stamp checked at open, `embedscope migrate` on a store written by
the previous layout (a committed fixture), the one checked document loader, required `kind`.

The fixtures under tests/fixtures/legacy_v1 were written by the code of commit 2995c26 (the layout
before schema versions) with tests/fixtures/legacy_v1/make_fixture.py: 50 points in 2 datasets and
2 spaces (10 of them without `kind`, as its own-vector path could write), a PCA map, an analysis
and a collection, plus expected.json (what that code read back).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import collections
from core.__main__ import main
from core.errors import StoreOutdatedError, StoreTooNewError
from core.filters import Condition, Filter
from core.ids import point_id
from core.pipeline import analyse, maps
from core.pipeline.map_doc import MAP_FORMAT, MAP_KIND, from_doc
from core.store import schema
from core.store.base import VectorStore
from core.store.documents import FORMAT, load_versioned
from core.store.migrate import migrate
from core.types import KIND, SpaceInfo
from tests.actors import ADMIN
from tests.core.conftest import STORE_KINDS, make_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1"
P = "legacy"


def _unpack(kind: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The legacy store of one adapter, unpacked under tmp_path, and what the old code read back."""
    name = "legacy-edge.tar.gz" if kind == "edge" else "legacy-server.tar.gz"
    with tarfile.open(FIXTURES / name) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "store", json.loads((tmp_path / "expected.json").read_text())


def _open(kind: str, path: Path, check_schema: bool = True) -> VectorStore:
    if kind == "edge":
        from core.store import EdgeStore

        return EdgeStore(path, lock_timeout_s=10.0, check_schema=check_schema)
    from core.store import ServerStore

    return ServerStore(path=str(path), check_schema=check_schema)


def _snapshot(store: VectorStore) -> dict[str, Any]:
    """Everything a migration must keep, in comparable form."""
    spaces = {}
    for space in ("own", "wide"):
        ids, vectors = store.vectors(P, space)
        frame = store.payloads(P, space)
        spaces[space] = (ids, vectors, frame.astype(object).where(frame.notna(), None).to_dict("index"))
    return spaces


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_store_of_the_previous_layout_migrates_keeping_every_point_map_and_collection(
        kind: str, tmp_path: Path) -> None:
    path, expected = _unpack(kind, tmp_path)
    with pytest.raises(StoreOutdatedError, match="embedscope migrate"):
        _open(kind, path)
    store = _open(kind, path, check_schema=False)
    try:
        assert store.schema_version() == 1
        before = _snapshot(store)
        dry = migrate(store, dry_run=True, actor=ADMIN)
        assert dry.changed and any("kind='item' set on 10 point(s)" in line for line in dry.changes), dry.changes
        assert store.schema_version() == 1 and _snapshot(store).keys() == before.keys()
        assert store.count(P, "own", Filter(must=(Condition(KIND, missing=True),))) == 10  # dry run wrote nothing
        revision = store.revision(P, "own")
        report = migrate(store, actor=ADMIN)
        assert report.changed and report.from_version == 1 and report.to_version == schema.SCHEMA_VERSION
        assert store.revision(P, "own") != revision
        again = migrate(store, actor=ADMIN)
        assert not again.changed and "nothing to migrate" in again.summary()
    finally:
        store.close()

    store = _open(kind, path)  # opens normally now
    try:
        after = _snapshot(store)
        assert store.schema_version() == schema.SCHEMA_VERSION
        assert {d.name: d.counts for d in store.list_datasets(P)} == {
            "train": {"own": 30, "wide": 30}, "prod": {"own": 20, "wide": 20}}
        for space, (ids, vectors, payloads) in after.items():
            old = expected["spaces"][space]
            assert ids == old["ids"] == before[space][0]
            np.testing.assert_array_equal(vectors, before[space][1])  # migration moves no bit
            # (qdrant-client's local mode re-normalises cosine vectors when it reloads a folder: 1 ulp)
            np.testing.assert_allclose(vectors, np.asarray(old["vectors"], dtype=np.float32), rtol=0, atol=1e-6)
            for pid, payload in payloads.items():
                assert payload == {**old["payloads"][pid], KIND: "item"}, pid
        _check_documents(store, expected)
    finally:
        store.close()


def _check_documents(store: VectorStore, expected: dict[str, Any]) -> None:
    """The map, analysis and collection of the fixture read through today's code, unchanged."""
    docs = expected["documents"]
    (map_key,) = docs[MAP_KIND]
    stored = store.get_document(P, MAP_KIND, map_key)
    assert stored is not None and stored[FORMAT] == 1
    old_map = from_doc(docs[MAP_KIND][map_key], "pca", stored["params"])
    new_map = from_doc(stored, "pca", stored["params"])
    assert old_map is not None and new_map is not None
    np.testing.assert_array_equal(new_map.coords, old_map.coords)
    reopened = maps.get_map(store, P, "own", None, method="pca", actor=ADMIN)
    assert not reopened.fitted and reopened.placed == 0  # the persisted layout is reused, not refitted
    assert reopened.ids == old_map.ids
    np.testing.assert_array_equal(reopened.coords, old_map.coords)
    (coll_name,) = docs["collection"]
    coll = collections.get(store, P, coll_name)
    assert coll.ids == docs["collection"][coll_name]["ids"] and coll.missing == []
    assert coll.description == "legacy picks"
    (analysis_key, analysis_doc), = docs["analysis"].items()
    kept = store.get_document(P, "analysis", analysis_key)
    assert kept is not None and kept["summary"] == analysis_doc["summary"], "migration keeps the analysis"
    # ... but today's code recomputes a format-1 analysis rather than show it (ANALYSIS_UPGRADES: its
    # thresholds need label probabilities that format 1 never stored), and never deletes it by reading
    assert analyse.ANALYSIS_UPGRADES[1](dict(kept)) is None
    assert analyse.load_analysis(store, P, "own", ["train"]) is None
    for kind, key in [(k, key) for k in docs for key in docs[k]]:
        doc = store.get_document(P, kind, key)
        # get_map above re-saved the map in today's format, stamped with the space's revision
        assert doc is not None and doc[FORMAT] == (MAP_FORMAT if kind == MAP_KIND else 1), (kind, key)
    assert {s.name: s.dim for s in store.list_spaces(P)} == {"own": 8, "wide": 12}


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_store_of_a_newer_layout_is_refused_naming_both_versions(kind: str, tmp_path: Path) -> None:
    path = tmp_path / kind
    store = _open(kind, path)
    store.ensure_space(P, SpaceInfo("own", 4, "vector"))
    store.write_schema_version(schema.SCHEMA_VERSION + 1)
    with pytest.raises(StoreTooNewError, match=f"version {schema.SCHEMA_VERSION + 1}.*up to version "
                                               f"{schema.SCHEMA_VERSION}"):
        migrate(store, actor=ADMIN)
    store.close()
    with pytest.raises(StoreTooNewError, match="newer embedscope"):
        _open(kind, path)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_new_store_is_stamped_with_the_current_version(kind: str, tmp_path: Path) -> None:
    store = _open(kind, tmp_path / kind)
    try:
        assert store.schema_version() == schema.SCHEMA_VERSION
        assert not migrate(store, actor=ADMIN).changed
    finally:
        store.close()
    memory = make_store(kind)
    try:
        assert memory.schema_version() == schema.SCHEMA_VERSION
    finally:
        memory.close()


def test_the_cli_migrates_once_and_then_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _unpack("edge", tmp_path)

    def cli(*argv: str) -> tuple[int, str, str]:
        code = main(["--store", str(path), *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, _, err = cli("list")
    assert code == 1 and "embedscope migrate" in err and "version 1" in err
    code, out, _ = cli("migrate", "--dry-run")
    assert code == 0 and "would change: legacy/own: kind='item'" in out and "would migrate" in out
    code, out, _ = cli("migrate")
    assert code == 0 and "changed: legacy/own: kind='item' set on 10 point(s)" in out
    code, out, _ = cli("migrate")
    assert code == 0 and "changed:" not in out and "nothing to migrate" in out
    code, out, _ = cli("list", "--json")
    assert code == 0 and json.loads(out)["projects"][0]["name"] == P


# -- the one checked document loader ------------------------------------------------------------

def test_load_versioned_upgrades_older_formats_and_refuses_newer_ones() -> None:
    steps: dict[int, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
        1: lambda d: {**d, "b": d["a"] * 2}, 2: lambda d: {**d, "c": 3}}
    assert load_versioned("map", "k", {"a": 1}, 3, steps) == {"a": 1, "b": 2, "c": 3, FORMAT: 3}
    assert load_versioned("map", "k", {"a": 1, FORMAT: 3}, 3) == {"a": 1, FORMAT: 3}
    assert load_versioned("map", "k", None, 3) is None
    assert load_versioned("map", "k", {FORMAT: 1}, 2, {1: lambda d: None}) is None  # stale: recompute
    with pytest.raises(StoreTooNewError, match=r"map document 'own:ab'.*format 5.*up to format 2"):
        load_versioned("map", "own:ab", {FORMAT: 5}, 2)
    with pytest.raises(ValueError, match="no upgrade of analysis documents from format 1"):
        load_versioned("analysis", "k", {}, 2)


def test_every_reader_refuses_a_document_of_a_newer_format(store: VectorStore) -> None:
    space = SpaceInfo("own", 4, "vector")
    store.ensure_space(P, space)
    ids = [point_id(P, "d", str(i)) for i in range(12)]
    vectors = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    store.upsert(P, "own", ids, vectors, [{"dataset": "d", "key": str(i), "kind": "item"} for i in range(12)])
    collections.save(store, P, "c", ids[:3], space="own", actor=ADMIN)
    maps.get_map(store, P, "own", None, method="pca", actor=ADMIN)
    for kind in ("collection", MAP_KIND):
        (key,) = store.list_documents(P, kind)
        store.put_document(P, kind, key, {**(store.get_document(P, kind, key) or {}), FORMAT: 99})
    with pytest.raises(StoreTooNewError, match="collection document 'c'.*format 99"):
        collections.get(store, P, "c")
    with pytest.raises(StoreTooNewError, match="map document 'own:.*format 99"):
        maps.get_map(store, P, "own", None, method="pca", actor=ADMIN)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_space_descriptor_of_a_newer_format_is_refused(kind: str, tmp_path: Path) -> None:
    store = _open(kind, tmp_path / kind)
    space = SpaceInfo("own", 4, "vector", model="m")
    store.ensure_space(P, space)
    assert store.get_document(P, "_space", "own") == {**space.to_dict(), FORMAT: 1}
    store.put_document(P, "_space", "own", {**space.to_dict(), FORMAT: 99})
    store.close()
    store = _open(kind, tmp_path / kind)
    try:
        with pytest.raises(StoreTooNewError, match="_space document 'own'.*format 99"):
            store.get_space(P, "own")
    finally:
        store.close()


# -- `kind` is required -----------------------------------------------------------------------

def test_points_without_a_valid_kind_are_refused(store: VectorStore) -> None:
    store.ensure_space(P, SpaceInfo("own", 4, "vector"))
    pid = point_id(P, "d", "x")
    one = np.ones((1, 4), np.float32)
    for payload in ({"dataset": "d"}, {"dataset": "d", "kind": "thing"}, {"dataset": "d", "kind": None}):
        with pytest.raises(ValueError, match="kind"):
            store.upsert(P, "own", [pid], one, [payload])
    assert store.count(P, "own") == 0
    store.upsert(P, "own", [pid], one, [{"dataset": "d", "kind": "object"}])
    with pytest.raises(ValueError, match="kind"):
        store.set_payload(P, [pid], [{"kind": "box"}])
    assert store.payloads(P, "own")[KIND].tolist() == ["object"]
