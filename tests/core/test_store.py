"""One set of store tests run on both adapters (Qdrant Edge and qdrant-client local mode), plus
the embedded store's multi-process lease and the server adapter's connection errors."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import (
    BadInputError,
    DimensionMismatchError,
    NotFoundError,
    StoreLockedError,
    StoreUnavailableError,
)
from core.filters import Condition, Filter, parse_filter
from core.ids import object_id, point_id
from core.store import EdgeStore, ServerStore, open_store
from core.store.base import VectorStore
from core.store.names import collection_name, decode, encode, parse_collection_name
from core.types import Item, SpaceInfo
from tests.core.conftest import make_store, seed_clusters

P = "proj"
REPO = Path(__file__).resolve().parents[2]


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_ensure_space_is_idempotent_and_refuses_another_dim(store: VectorStore) -> None:
    info = SpaceInfo("clip b-32", 16, "image", model="openai/clip", layer="pooled", text_side=True)
    assert store.ensure_space(P, info) == info
    assert store.ensure_space(P, SpaceInfo("clip b-32", 16, "image")) == info, "existing info wins"
    with pytest.raises(DimensionMismatchError, match="16.*32"):
        store.ensure_space(P, SpaceInfo("clip b-32", 32, "image"))
    assert store.get_space(P, "clip b-32") == info
    assert store.list_spaces("nope") == []
    with pytest.raises(NotFoundError):
        store.get_space(P, "other")
    with pytest.raises(NotFoundError):
        store.count(P, "other")
    with pytest.raises(BadInputError, match="letters, digits"):
        store.ensure_space("bad/name", info)


def test_upsert_counts_and_reupsert_keeps_the_count(store: VectorStore) -> None:
    ids, vectors, _ = seed_clusters(store)
    assert store.count(P, "own") == len(ids) == 120
    store.upsert(P, "own", ids[:50], vectors[:50], [{"dataset": "train", "label": "x", "kind": "item"}] * 50)
    assert store.count(P, "own") == 120, "re-ingest overwrites, never duplicates"
    assert store.count(P, "own", Filter.where(label="x")) == 50
    unknown = point_id(P, "train", "never-stored")
    assert store.existing_ids(P, "own", ids[:3] + [unknown]) == set(ids[:3])
    with pytest.raises(DimensionMismatchError, match="size 8"):
        store.upsert(P, "own", ids[:1], np.ones((1, 8), np.float32), [{}])
    store.upsert(P, "own", [], np.zeros((0, 16), np.float32), [])  # nothing to do is fine
    with pytest.raises(ValueError, match="limit"):
        store.query(P, "own", vectors[0], limit=0)
    with pytest.raises(BadInputError, match="NaN"):
        store.upsert(P, "own", ids[:1], np.full((1, 16), np.nan, np.float32), [{}])


def test_payloads_frame_is_sorted_by_id_with_meta_flattened(store: VectorStore) -> None:
    ids, _, _ = seed_clusters(store)
    frame = store.payloads(P, "own")
    assert frame.index.name == "id" and list(frame.index) == sorted(ids)
    assert {"dataset", "label", "confidence", "meta.camera", "meta.flag", "meta.n"} <= set(frame.columns)
    row = frame.loc[point_id(P, "train", "item-0003")]
    assert row["meta.camera"] == "a" and row["meta.n"] == 3 and row["label"] == "c0"
    some = store.payloads(P, "own", Filter.where(split="train"), fields=["label", "meta.camera"])
    assert list(some.columns) == ["label", "meta.camera"] and len(some) == 60
    assert store.payloads(P, "own", Filter.where(label="none-such")).empty


def test_vectors_round_trip_exactly_in_order(store: VectorStore) -> None:
    ids, vectors, _ = seed_clusters(store)
    unit = _unit(vectors)
    store.upsert(P, "own", ids, unit, [{"dataset": "train", "kind": "item"}] * len(ids))
    order = [ids[7], point_id(P, "x", "missing"), ids[2]]
    got_ids, got = store.vectors(P, "own", ids=order)
    assert got_ids == [ids[7], ids[2]] and got.dtype == np.float32
    np.testing.assert_array_equal(got, unit[[7, 2]])
    all_ids, all_vectors = store.vectors(P, "own")
    assert all_ids == sorted(ids) and all_vectors.shape == (120, 16)
    batches = list(store.iter_vectors(P, "own", batch=50))
    assert [len(b[0]) for b in batches] == [50, 50, 20] and batches[0][1].shape == (50, 16)
    assert sum(len(b[2]) for b in batches) == 120


def test_vectors_of_many_pages_fill_one_block_with_progress(store: VectorStore) -> None:
    ids, vectors, _ = seed_clusters(store, per=700, dim=8)  # 2800 points: three scroll pages
    gc_was_on = gc.isenabled()
    seen: list[tuple[int, int]] = []
    got_ids, got = store.vectors(P, "own", progress=lambda done, total: seen.append((done, total)))
    assert gc.isenabled() == gc_was_on  # the collector is back as it was
    order = np.argsort(np.asarray(ids))
    assert got_ids == sorted(ids) and got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_allclose(got, _unit(vectors)[order], atol=1e-6)
    assert seen == [(1024, 2800), (2048, 2800), (2800, 2800)]
    again_ids, again = store.vectors(P, "own", ids=ids[::-1] * 2)  # any order, repeats kept
    assert again_ids == ids[::-1] * 2
    np.testing.assert_allclose(again, _unit(vectors)[::-1].tolist() * 2, atol=1e-6)


def test_row_block_grows_when_more_points_than_counted_arrive() -> None:
    from core.store.common import RowBlock

    block = RowBlock(3, expected=2)  # a write between the count and the scroll: more points
    block.add(["b", "a"], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    block.add(["c"], np.ones((1, 3)))
    ids, rows = block.sorted_by_id()
    assert ids == ["a", "b", "c"] and rows.shape == (3, 3)
    np.testing.assert_array_equal(rows, [[4, 5, 6], [1, 2, 3], [1, 1, 1]])
    fewer = RowBlock(3, expected=5)  # points deleted meanwhile: trimmed in place
    fewer.add(["x"], [[1.0, 0.0, 0.0]])
    assert fewer.finish()[1].shape == (1, 3)


def test_nearest_neighbours_come_from_the_same_planted_cluster(store: VectorStore) -> None:
    ids, vectors, clusters = seed_clusters(store)
    index = {pid: i for i, pid in enumerate(ids)}
    for probe in (0, 45, 100):
        hits = store.query(P, "own", vectors[probe], limit=10)
        assert hits[0].id == ids[probe] and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert all(clusters[index[h.id]] == clusters[probe] for h in hits)
        assert hits[0].payload["key"] == f"item-{probe:04d}"


# Point ids of seed_clusters' items 0, 3, 4, 50, 119 (meta.flag is true for 0 and 4).
SOME_IDS = [point_id(P, "train", f"item-{i:04d}") for i in (0, 3, 4, 50, 119)]
FILTERS = {
    "equals": Filter.where(label="c1"),
    "one_of": Filter(must=(Condition("label", one_of=("c0", "c2")),)),
    "range": Filter(must=(Condition("confidence", gte=0.25, lte=0.5),)),
    "missing": Filter(must=(Condition("label", missing=True),)),
    "present": Filter(must_not=(Condition("label", missing=True),)),
    "nested": Filter.where(**{"meta.camera": "a"}),
    "bool": Filter.where(**{"meta.flag": True}),
    "int": Filter.where(**{"meta.n": 7}),
    "not": parse_filter(["split!=train", "label in c0,c3"]),
    "none": Filter(must=(Condition("label", one_of=()),)),
    "ids": Filter.ids(SOME_IDS),
    "not_ids": Filter(must_not=Filter.ids(SOME_IDS).must),
    "ids_and_bool": Filter.ids(SOME_IDS).and_(Filter.where(**{"meta.flag": True})),
    "parsed_ids": parse_filter([f"id in {SOME_IDS[0]},{SOME_IDS[1].upper()}", "split=train"]),
}


def _expected(frame: pd.DataFrame, name: str) -> set[str]:
    masks = {
        "equals": frame["label"] == "c1",
        "one_of": frame["label"].isin(["c0", "c2"]),
        "range": frame["confidence"].between(0.25, 0.5),
        "missing": frame["label"].isna(),
        "present": frame["label"].notna(),
        "nested": frame["meta.camera"] == "a",
        "bool": frame["meta.flag"] == True,  # noqa: E712
        "int": frame["meta.n"] == 7,
        "not": (frame["split"] != "train") & frame["label"].isin(["c0", "c3"]),
        "none": frame["label"] == "never",
        "ids": frame.index.isin(SOME_IDS),
        "not_ids": ~frame.index.isin(SOME_IDS),
        "ids_and_bool": frame.index.isin(SOME_IDS) & (frame["meta.flag"] == True),  # noqa: E712
        "parsed_ids": frame.index.isin(SOME_IDS[:2]) & (frame["split"] == "train"),
    }
    return set(frame.index[masks[name]])


def test_filtered_queries_never_leave_the_filter(store: VectorStore) -> None:
    ids, vectors, _ = seed_clusters(store)
    frame = store.payloads(P, "own")
    for name, flt in FILTERS.items():
        expected = _expected(frame, name)
        assert name == "none" or 0 < len(expected) < len(ids), f"{name}: a filter that selects"
        assert store.count(P, "own", flt) == len(expected), name
        assert set(store.payloads(P, "own", flt).index) == expected, name
        for exact in (False, True):
            hits = store.query(P, "own", vectors[0], limit=200, flt=flt, exact=exact)
            assert {h.id for h in hits} == expected, (name, exact)
        assert set(store.vectors(P, "own", flt=flt)[0]) == expected, name


def test_the_id_condition_matches_nothing_for_no_ids_and_refuses_non_ids(store: VectorStore) -> None:
    ids, vectors, _ = seed_clusters(store)
    nothing = Filter.ids([])
    assert store.count(P, "own", nothing) == 0 and store.payloads(P, "own", nothing).empty
    assert store.query(P, "own", vectors[0], limit=5, flt=nothing) == []
    assert store.count(P, "own", Filter(must_not=nothing.must)) == len(ids)
    found, block = store.vectors(P, "own", flt=Filter.ids(ids[:3]))
    assert found == sorted(ids[:3]) and block.shape == (3, vectors.shape[1])
    for clause in ("id=item-0001", "id>=3", "id is missing", "id in "):
        with pytest.raises(BadInputError, match="id"):
            parse_filter([clause])
    with pytest.raises(ValueError, match="UUID"):
        Condition("id", equals="item-0001")


def test_an_unquoted_number_in_a_parsed_filter_matches_text_labels_and_numbers(store: VectorStore) -> None:
    """`--filter label=9` must find the demo's text label "9" (folders and CSVs give text) and a
    numeric 9 in metadata; a quoted '9' is the text only."""
    info = store.ensure_space(P, SpaceInfo("own", 4, "vector"))
    rows = [("text-9", "9", 1), ("number-9", None, 9), ("other", "90", 9.5)]
    ids = [point_id(P, "train", key) for key, _, _ in rows]
    payloads = [Item(key, label=label, meta={"n": n}).payload("train") for key, label, n in rows]
    store.upsert(P, info.name, ids, np.eye(4, dtype=np.float32)[:3], payloads)
    assert set(store.payloads(P, "own", parse_filter(["label=9"])).index) == {ids[0]}
    assert set(store.payloads(P, "own", parse_filter(["meta.n=9"])).index) == {ids[1]}
    assert set(store.payloads(P, "own", parse_filter(["label='9'"])).index) == {ids[0]}
    assert set(store.payloads(P, "own", parse_filter(["label in 9,90"])).index) == {ids[0], ids[2]}
    assert set(store.payloads(P, "own", parse_filter(["label!=9"])).index) == {ids[1], ids[2]}


def test_exact_and_approximate_rankings_match_numpy_cosine(store: VectorStore) -> None:
    ids, vectors, _ = seed_clusters(store, k=3, per=40, dim=24, seed=3)
    store.optimize(P, "own")
    unit = _unit(vectors)
    rng = np.random.default_rng(7)
    for q in rng.standard_normal((3, 24)).astype(np.float32):
        truth = [ids[i] for i in np.argsort(-(unit @ _unit(q)))[:10]]
        exact = store.query(P, "own", q, limit=10, exact=True, with_payload=False)
        approx = store.query(P, "own", q, limit=10)
        assert [h.id for h in exact] == truth == [h.id for h in approx]
        assert exact[0].payload == {}
        np.testing.assert_allclose([h.score for h in exact], np.sort(unit @ _unit(q))[::-1][:10], atol=1e-5)
    # Points written after optimize() (unindexed segment) are found by default queries too.
    late = [point_id(P, "late", str(i)) for i in range(5)]
    store.upsert(P, "own", late, vectors[:5] * 1.01 + 0.01, [{"dataset": "late", "kind": "item"}] * 5)
    assert store.query(P, "own", vectors[0] * 1.01 + 0.01, limit=1)[0].id == late[0]


def test_recommend_moves_toward_positives_and_away_from_negatives(store: VectorStore) -> None:
    ids, vectors, clusters = seed_clusters(store)
    index = {pid: i for i, pid in enumerate(ids)}
    pos, neg = ids[0], ids[35]  # clusters 0 and 1
    hits = store.recommend(P, "own", [pos], limit=10)
    assert pos not in {h.id for h in hits}, "examples are excluded"
    assert all(clusters[index[h.id]] == 0 for h in hits)
    # Best-score: a candidate nearer a negative than every positive scores below all others.
    mixed = store.recommend(P, "own", [pos, vectors[70]], [neg], limit=120, exact=True)
    ranks = [clusters[index[h.id]] for h in mixed]
    assert 1 not in ranks[:80] and set(ranks[-29:]) == {1}
    only_c2 = store.recommend(P, "own", [pos], [neg], limit=5, flt=Filter.where(label="c2"))
    assert all(h.payload["label"] == "c2" for h in only_c2) and len(only_c2) == 5
    with pytest.raises(NotFoundError):
        store.recommend(P, "own", [point_id(P, "x", "ghost")])


def test_set_payload_updates_every_space_and_merges_meta(store: VectorStore) -> None:
    ids, vectors, _ = seed_clusters(store)
    store.ensure_space(P, SpaceInfo("half", 16, "vector"))
    store.upsert(P, "half", ids[:60], vectors[:60], store.payloads(P, "own").loc[ids[:60]].pipe(
        lambda f: [{"dataset": "train", "kind": "item", "meta": {"camera": c}} for c in f["meta.camera"]]))
    ghost = point_id(P, "train", "ghost")
    n = store.set_payload(P, [ids[0], ids[100], ghost], [{"label": "fixed", "meta.reviewed": True}] * 3)
    assert n == 2
    for space in ("own", "half"):
        frame = store.payloads(P, space)
        assert frame.loc[ids[0], "label"] == "fixed" and frame.loc[ids[0], "meta.reviewed"] == True  # noqa: E712
        assert frame.loc[ids[0], "meta.camera"] == "a", "other meta keys are kept"
    assert store.payloads(P, "own").loc[ids[100], "label"] == "fixed"
    assert store.count(P, "half") == 60, "set_payload never creates points"


def test_delete_dataset_and_listings(store: VectorStore) -> None:
    seed_clusters(store, dataset="train")
    seed_clusters(store, dataset="prod", per=10)
    seed_clusters(store, project="other", dataset="x", per=5)
    assert store.list_projects() == ["other", P]
    obj = object_id(P, "prod", "item-0000", "label", 0)
    store.upsert(P, "own", [obj], np.ones((1, 16), np.float32), [{"dataset": "prod", "kind": "object"}])
    infos = {d.name: d.counts for d in store.list_datasets(P)}
    assert infos == {"prod": {"own": 40}, "train": {"own": 120}}, "objects are not counted as items"
    assert store.delete_dataset(P, "prod") == 41, "items and their objects go"
    assert [d.name for d in store.list_datasets(P)] == ["train"] and store.count(P, "own") == 120
    store.ensure_space(P, SpaceInfo("second", 4, "vector"))
    assert [s.name for s in store.list_spaces(P)] == ["own", "second"]
    store.delete_space(P, "second")
    assert [s.name for s in store.list_spaces(P)] == ["own"]
    store.put_document(P, "map", "m", {"a": 1})
    store.delete_project(P)
    assert store.list_projects() == ["other"] and store.get_document(P, "map", "m") is None
    assert store.count("other", "own") == 20


def test_documents_put_get_list_delete_including_a_large_one(store: VectorStore) -> None:
    assert store.get_document(P, "map", "umap") is None and store.list_documents(P, "map") == []
    coords = np.random.default_rng(0).random((100_000, 2)).astype(np.float32)
    big = {"coords": coords, "ids": [f"id-{i}" for i in range(100_000)], "params": {"k": 15}}
    store.put_document(P, "map", "umap", big)
    store.put_document(P, "map", "pca", {"x": [1, 2]})
    store.put_document("other", "map", "tsne", {"x": 0})
    got = store.get_document(P, "map", "umap")
    assert got is not None and got["params"] == {"k": 15} and len(got["ids"]) == 100_000
    np.testing.assert_array_equal(np.asarray(got["coords"], np.float32), coords)
    assert store.list_documents(P, "map") == ["pca", "umap"]
    store.put_document(P, "map", "umap", {"small": True})
    assert store.get_document(P, "map", "umap") == {"small": True}, "replaced, no stale chunks"
    assert store.delete_document(P, "map", "umap") is True
    assert store.delete_document(P, "map", "umap") is False
    assert store.list_documents(P, "map") == ["pca"] and store.list_documents("other", "map") == ["tsne"]


def test_the_revision_changes_on_every_write_and_only_then(store: VectorStore) -> None:
    assert store.revision(P, "own") == store.revision(P) == "0"  # never written
    ids, vectors, _ = seed_clusters(store)
    store.ensure_space(P, SpaceInfo("other", 16, "vector"))
    last: dict[str, str] = {}

    def moved() -> set[str]:
        """Which tokens changed since the last call ("" is the project's)."""
        now = {name: store.revision(P, name or None) for name in ("own", "other", "")}
        changed = {name for name in now if last and now[name] != last[name]}
        last.update(now)
        return changed

    moved()
    store.count(P, "own"), store.payloads(P, "own"), store.query(P, "own", vectors[0], limit=3)
    store.list_datasets(P), store.get_document(P, "map", "x"), store.vectors(P, "own", ids=ids[:3])
    assert moved() == set(), "reads change nothing"
    store.upsert(P, "own", ids[:2], vectors[:2], [{"dataset": "train", "kind": "item"}] * 2)
    assert moved() == {"own", ""}
    store.set_payload(P, ids[:1], [{"label": "relabelled"}])  # same counts: only the revision tells
    assert moved() == {"own", "other", ""}
    store.put_document(P, "map", "k", {"x": 1})
    assert moved() == {""}, "documents move the project's token only"
    store.delete_document(P, "map", "k")
    assert moved() == {""}
    store.delete_dataset(P, "train")
    assert moved() == {"own", "other", ""}
    old_other = store.revision(P, "other")
    store.delete_space(P, "other")
    assert moved() == {"other", ""}
    store.ensure_space(P, SpaceInfo("other", 8, "vector"))  # recreated: a new token, not the old one
    assert moved() == {"other", ""} and store.revision(P, "other") != old_other
    store.delete_project(P)
    assert moved() == {"own", "other", ""}
    assert store.revision("unknown project", "x") == "0"


@pytest.mark.parametrize("kind", ["edge", "server-local"])
def test_everything_persists_across_close_and_reopen(kind: str, tmp_path: Path) -> None:
    first = make_store(kind, tmp_path / "db")
    ids, vectors, _ = seed_clusters(first)
    first.put_document(P, "analysis", "a", {"scores": [0.5]})
    first.optimize(P, "own")
    first.close()
    first.close()  # twice is fine
    again = make_store(kind, tmp_path / "db")
    try:
        assert again.count(P, "own") == 120 and again.get_space(P, "own").dim == 16
        assert again.get_document(P, "analysis", "a") == {"scores": [0.5]}
        assert again.query(P, "own", vectors[5], limit=1)[0].id == ids[5]
    finally:
        again.close()


def test_names_encode_reversibly_into_collection_names() -> None:
    for name in ["plain", "with space", "a_b", "ünï.cödé", "x__y", "_lead"]:
        assert decode(encode(name)) == name and "__" not in encode(name)
        assert parse_collection_name(collection_name(name, "s p")) == (name, "s p")
    assert parse_collection_name("es__documents") is None


def test_open_store_follows_the_settings(tmp_path: Path) -> None:
    from core.config import load_settings

    store = open_store(load_settings(qdrant_path=str(tmp_path / "q")))
    try:
        assert isinstance(store, EdgeStore) and str(tmp_path / "q") in store.describe()
    finally:
        store.close()


def test_a_local_mode_folder_in_use_raises_store_locked(tmp_path: Path) -> None:
    first = ServerStore(path=str(tmp_path / "local"))
    try:
        with pytest.raises(StoreLockedError, match="local"):
            ServerStore(path=str(tmp_path / "local"))
    finally:
        first.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_fails_fast_naming_the_url_not_the_key() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        ServerStore(url=url, api_key="secret-key-123", timeout=2)
    assert time.monotonic() - start < 5
    assert url in str(info.value) and "secret-key-123" not in str(info.value)


_CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, {repo!r})
    from core.store import EdgeStore
    from core.ids import object_id, point_id
    store = EdgeStore({path!r}, lock_timeout_s=20)
    mode = sys.argv[1]
    if mode == "write":
        ids = [point_id("proj", "cli", f"k{{i}}") for i in range(7)]
        vecs = np.random.default_rng(1).standard_normal((7, 16)).astype(np.float32)
        store.upsert("proj", "own", ids, vecs, [{{"dataset": "cli", "kind": "item"}}] * 7)
        print("wrote", store.count("proj", "own"), flush=True)
    else:
        with store.hold("a long ingest"):
            print("holding", flush=True)
            time.sleep(float(sys.argv[2]))
    store.close()
""")


def test_a_second_process_gets_the_store_handed_over_and_sees_fresh_data(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    store = EdgeStore(path, lock_timeout_s=20)
    try:
        seed_clusters(store)  # this process holds the lease, idle
        revision = store.revision(P, "own")
        script = _CHILD.format(repo=str(REPO), path=str(path))
        out = subprocess.run([sys.executable, "-c", script, "write"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "wrote 127" in out.stdout
        assert store.count(P, "own") == 127, "the writer's points are visible here, no stale read"
        assert store.revision(P, "own") != revision, "another process's write moves the revision"
        assert [d.name for d in store.list_datasets(P)] == ["cli", "train"]
    finally:
        store.close()


def test_a_busy_store_raises_store_locked_naming_folder_and_pid(tmp_path: Path) -> None:
    path = tmp_path / "busy"
    seed = EdgeStore(path)
    seed_clusters(seed)
    seed.close()
    script = _CHILD.format(repo=str(REPO), path=str(path))
    child = subprocess.Popen([sys.executable, "-c", script, "hold", "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding"
        store = EdgeStore(path, lock_timeout_s=0.5)
        assert store.revision(P, "own") != "0", "reading the revision needs no lease"
        with pytest.raises(StoreLockedError) as info:
            store.count(P, "own")
        message = str(info.value)
        assert str(path) in message and f"pid={child.pid}" in message and "a long ingest" in message
        assert "Qdrant server" in message
        store.close()
    finally:
        child.kill()
        child.wait()
    reopened = EdgeStore(path, lock_timeout_s=5)
    try:
        assert reopened.count(P, "own") == 120, "a killed holder leaves no stale lock"
    finally:
        reopened.close()


def test_two_instances_in_one_process_share_by_hand_over(tmp_path: Path) -> None:
    a = EdgeStore(tmp_path / "s", lock_timeout_s=10)
    b = EdgeStore(tmp_path / "s", lock_timeout_s=10)
    try:
        ids, _, _ = seed_clusters(a)
        assert b.count(P, "own") == 120
        a.set_payload(P, ids[:1], [{"label": "z"}])
        assert b.count(P, "own", Filter.where(label="z")) == 1
    finally:
        a.close()
        b.close()


def _row_by_row(records: list[tuple[str, dict]], fields: list[str] | None = None) -> pd.DataFrame:
    """The frame payload_frame built before it went by column: one flattened dict per point."""
    from core.store.common import flatten

    records = sorted(records, key=lambda r: r[0])
    frame = pd.DataFrame([flatten(p) for _, p in records], index=pd.Index([r[0] for r in records], name="id"))
    if fields is not None:
        frame = frame.reindex(columns=fields)
    frame.index.name = "id"
    return frame


@pytest.mark.parametrize("fields", [None, ["label", "meta.n", "absent", "n"], ["meta.late"]])
def test_payload_columns_build_the_row_by_row_frame(fields: list[str] | None) -> None:
    """PayloadColumns (pages -> one list per column) gives exactly the frame of a row-by-row build:
    dtypes inferred per column (ints, floats with gaps, bools, lists, None), columns in order of first
    appearance, keys and meta keys first met on later pages, NaN where a point lacks a field, id order."""
    from core.store.common import PayloadColumns, payload_frame

    rng = np.random.default_rng(3)
    records: list[tuple[str, dict]] = []
    for i in rng.permutation(300):
        payload: dict = {"label": f"c{i % 4}", "n": int(i), "score": None if i % 7 == 0 else float(i) / 3,
                         "flag": bool(i % 2), "tags": [int(i)] if i % 5 == 0 else None}
        if i > 200:
            payload["late"] = "x"
        payload["meta"] = {"n": int(i), **({"late": i} if i % 50 == 0 else {})} if i % 3 else None
        records.append((f"{i:04d}-id", payload))
    want = _row_by_row(records, fields)
    pd.testing.assert_frame_equal(payload_frame(records, fields), want)
    for pages, check_like in ((sorted(records), False), (records, True)):  # in id order (as scrolled), or not
        columns = PayloadColumns()
        for start in range(0, len(pages), 64):
            columns.add([r[0] for r in pages[start:start + 64]], [r[1] for r in pages[start:start + 64]])
        pd.testing.assert_frame_equal(columns.frame(fields), want, check_like=check_like)
    pd.testing.assert_frame_equal(PayloadColumns().frame(fields), _row_by_row([], fields))
    # a top-level key spelled like a flattened meta column: the row-by-row rules (meta wins)
    odd = [*records[:10], ("zz", {"meta.n": "top", "label": "q"}), ("zy", {"meta.n": "top", "meta": {"n": 1}})]
    pd.testing.assert_frame_equal(payload_frame(odd, fields), _row_by_row(odd, fields))


def test_payload_columns_on_pages_of_uniform_payloads_and_uuid_texts() -> None:
    """Pages whose points all carry the same keys take a one-pass path: the frame is still the
    row-by-row one when pages differ (a meta key, a missing key, empty payloads, one key only)."""
    import uuid

    from core.store.common import PayloadColumns, uuid_texts

    def page(start: int, stop: int, make: Callable[[int], dict]) -> list[tuple[str, dict]]:
        return [(f"{i:04d}", make(i)) for i in range(start, stop)]

    records = (page(0, 64, lambda i: {"a": i, "b": None, "meta": {}})
               + page(64, 128, lambda i: {"a": i, "meta": {"x": i}})
               + page(128, 192, lambda i: {"b": "s", "meta": {}})
               + page(192, 256, lambda i: {})
               + page(256, 320, lambda i: {"c": 1.5})
               + page(320, 384, lambda i: {"a": i, "b": "t", "c": 2.0, "meta": None}))
    for fields in (None, ["meta.x", "a", "c"]):
        columns = PayloadColumns()
        for start in range(0, len(records), 64):
            columns.add([r[0] for r in records[start:start + 64]], [r[1] for r in records[start:start + 64]])
        pd.testing.assert_frame_equal(columns.frame(fields), _row_by_row(records, fields))
    ids = [uuid.uuid4() for _ in range(50)]
    assert uuid_texts(ids) == [str(i) for i in ids] and uuid_texts([]) == []
    assert uuid_texts([3, ids[0]]) == ["3", str(ids[0])]
