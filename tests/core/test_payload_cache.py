"""load_payloads: a selection's payload frame kept on disk as Parquet per store revision (both adapters)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.filters import Filter
from core.pipeline import payload_cache
from core.pipeline.payload_cache import is_cached, load_payloads
from core.store.base import VectorStore
from tests.actors import ADMIN, user
from tests.core.conftest import seed_clusters

ROOT = Path(__file__).resolve().parents[2]

P = "proj"


class Counting:
    """A store that counts payload reads (everything else passes through)."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        if name == "payloads":
            self.reads += 1
        return getattr(self.store, name)


def _files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.parquet"))


@pytest.mark.parametrize("flt", [None, Filter.where(split="train")])
def test_second_read_comes_from_disk_and_equals_the_store(store: VectorStore, tmp_path: Path,
                                                          flt: Filter | None) -> None:
    seed_clusters(store, P)
    counting = Counting(store)
    assert not is_cached(store, P, "own", flt, cache_dir=tmp_path)
    first = load_payloads(counting, P, "own", flt, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == 1 and is_cached(store, P, "own", flt, cache_dir=tmp_path)
    again = load_payloads(counting, P, "own", flt, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == 1  # no scroll: the Parquet file
    pd.testing.assert_frame_equal(again, store.payloads(P, "own", flt))
    pd.testing.assert_frame_equal(again, first)
    assert again["label"].isna().sum() == (24 if flt is None else 12)  # nulls kept as nulls
    assert again.index.name == "id"


def test_a_write_moves_the_revision_and_replaces_the_file(store: VectorStore, tmp_path: Path) -> None:
    ids, _, _ = seed_clusters(store, P)
    load_payloads(store, P, "own", fields=["label"], cache_dir=tmp_path)
    [old] = _files(tmp_path)
    store.set_payload(P, [ids[1]], [{"label": "renamed"}])
    counting = Counting(store)
    fresh = load_payloads(counting, P, "own", fields=["label"], cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == 0 and fresh.loc[ids[1], "label"] == "renamed"  # patched from the journal
    [new] = _files(tmp_path)  # the older revision of the same selection is gone
    assert new != old and not old.exists()


def test_fields_and_filters_are_separate_entries_and_the_cache_is_trimmed(store: VectorStore, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seed_clusters(store, P)
    monkeypatch.setattr(payload_cache, "MAX_FILES", 2)
    load_payloads(store, P, "own", fields=["label"], cache_dir=tmp_path)
    labels = load_payloads(store, P, "own", fields=["label", "split"], cache_dir=tmp_path)
    assert list(labels.columns) == ["label", "split"] and len(_files(tmp_path)) == 2
    payload_cache._trim(tmp_path, keep=1)
    assert len(_files(tmp_path)) == 1


def test_without_cache_dir_or_for_unstorable_payloads_nothing_is_written(store: VectorStore, tmp_path: Path) -> None:
    seed_clusters(store, P)
    counting = Counting(store)
    load_payloads(counting, P, "own")  # type: ignore[arg-type]
    load_payloads(counting, P, "own")  # type: ignore[arg-type]
    assert counting.reads == 2
    mixed = pd.DataFrame({"meta.x": [[1, 2], 3.5, "a"]}, index=pd.Index(["a", "b", "c"], name="id"))
    target = tmp_path / "sel" / "rev.parquet"
    payload_cache._write(target, mixed)  # Parquet cannot hold lists mixed with numbers: skipped
    assert not target.exists() and not list(target.parent.glob(".*.tmp"))


def test_a_torn_file_is_read_from_the_store_again(store: VectorStore, tmp_path: Path) -> None:
    seed_clusters(store, P)
    load_payloads(store, P, "own", cache_dir=tmp_path)
    [path] = _files(tmp_path)
    path.write_bytes(b"not parquet")
    frame = load_payloads(store, P, "own", cache_dir=tmp_path)
    assert len(frame) == 120 and np.isclose(frame["confidence"].max(), 119 / 120)


def test_a_persisted_analysis_joins_its_payloads_from_the_cache(store: VectorStore, tmp_path: Path) -> None:
    """load_analysis(cache_dir=...): the payloads it joins are read from the store once per space
    revision (a Parquet file afterwards), and the result is the one read without a cache."""
    from core.pipeline.analyse import load_analysis, run_analysis

    seed_clusters(store, P)
    run_analysis(store, P, "own", actor=ADMIN)
    counting = Counting(store)
    first = load_analysis(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    again = load_analysis(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    plain = load_analysis(store, P, "own")
    assert counting.reads == 1 and first is not None and again is not None and plain is not None
    pd.testing.assert_frame_equal(again.scores, plain.scores)
    pd.testing.assert_frame_equal(first.scores, plain.scores)


# -- the payload journal: a payload-only write patches the cached frame instead of a full read --------------


def _hit(store: VectorStore, flt: Filter | None, fields: list[str] | None, root: Path) -> pd.DataFrame:
    """What a cache hit of the current revision gives, from a fresh cache (a full read, then its file)."""
    load_payloads(store, P, "own", flt, fields, root)
    counting = Counting(store)
    frame = load_payloads(counting, P, "own", flt, fields, root)  # type: ignore[arg-type]
    assert counting.reads == 0
    return frame


def _patched_equals_full(store: VectorStore, tmp_path: Path, write: Any, flt: Filter | None = None,
                         fields: list[str] | None = None, reads: int = 0) -> pd.DataFrame:
    """Cache the selection, run write(), reload: `reads` full reads, and the frame a full read gives."""
    load_payloads(store, P, "own", flt, fields, tmp_path / "cache")
    write()
    counting = Counting(store)
    frame = load_payloads(counting, P, "own", flt, fields, tmp_path / "cache")  # type: ignore[arg-type]
    assert counting.reads == reads
    expected = _hit(store, flt, fields, tmp_path / f"fresh-{uuid.uuid4().hex}")
    # patched: what a cache hit gives; read in full: the store's frame (lists and NaN before Parquet)
    pd.testing.assert_frame_equal(frame, expected if reads == 0 else store.payloads(P, "own", flt, fields))
    again = load_payloads(counting, P, "own", flt, fields, tmp_path / "cache")  # type: ignore[arg-type]
    assert counting.reads == reads  # the patched frame was written as the current revision's file
    pd.testing.assert_frame_equal(again, expected)
    return frame


@pytest.mark.parametrize("fields", [None, ["label", "tags", "reviewed", "split"]])
def test_tags_labels_and_review_marks_patch_the_cached_frame(store: VectorStore, tmp_path: Path,
                                                              fields: list[str] | None) -> None:
    from core.curation import labels, tags

    ids, _, _ = seed_clusters(store, P)
    # the columns exist before the cache (a new column: see the next test)
    store.set_payload(P, ids[:1], [{"tags": ["seen"], "reviewed": True, "original_label": "c0"}])

    def writes() -> None:
        tags.add_tags(store, P, ids[:40], ["odd", "blurry"], actor=user("t"))
        labels.set_labels(store, P, ids[5:8], ["c9", None, "c1"], actor=user("t"), why="manual")
        tags.set_reviewed(store, P, ids[10:30], True, actor=user("t"))
        tags.remove_tags(store, P, ids[:5], ["odd"], actor=user("t"))
        store.set_payload(P, ids[50:52], [{"confidence": 2.5}, {"split": None}])

    frame = _patched_equals_full(store, tmp_path, writes, fields=fields)
    assert list(frame.loc[ids[0], "tags"]) == ["seen", "blurry"] and pd.isna(frame.loc[ids[6], "label"])
    assert fields is not None or (frame.loc[ids[6], "original_label"] == "c0"
                                  and pd.isna(frame.loc[ids[5], "original_label"]))  # item 5 had no label
    assert frame.loc[ids[7], "label"] == "c1" and bool(frame.loc[ids[12], "reviewed"])


def test_a_write_of_a_new_column_meta_or_a_filtered_field_reads_the_store(store: VectorStore, tmp_path: Path) -> None:
    from core.curation import tags

    ids, _, _ = seed_clusters(store, P)
    first, second, third = sorted(ids)[:3]  # rows 0, 1, 2 of the frame (id order)
    # a new key on row 0 precedes that row's meta.* columns in a full read: not patched
    _patched_equals_full(store, tmp_path, lambda: tags.add_tags(store, P, [first, third], ["new"], actor=user("t")),
                         reads=1)
    # later rows: every column appeared before, so the new ones go last, in the order first met
    frame = _patched_equals_full(store, tmp_path, lambda: [store.set_payload(P, [third, second], [{"zz": 1, "aa": 2}] * 2),
                                                           store.set_payload(P, [second], [{"bb": 3}])])
    assert list(frame.columns)[-3:] == ["zz", "aa", "bb"]
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, ids[:2], [{"meta.camera": "z"}] * 2), reads=1)
    by_label = Filter.where(label="c1")
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, [ids[1]], [{"label": "c2"}]), by_label, reads=1)
    # a field the selection neither shows nor tests: patched (nothing to change)
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, [ids[1]], [{"label": "c3"}]),
                         Filter.where(split="test"), ["confidence"])


def test_vector_writes_break_the_chain(store: VectorStore, tmp_path: Path) -> None:
    from core.curation import tags

    ids, vectors, _ = seed_clusters(store, P)

    def upsert_then_tag() -> None:
        tags.add_tags(store, P, ids[:2], ["x"], actor=user("t"))
        store.upsert(P, "own", ids[:1], vectors[1:2], [{"dataset": "train", "kind": "item", "key": "item-0000"}])
        tags.add_tags(store, P, ids[3:4], ["x"], actor=user("t"))

    _patched_equals_full(store, tmp_path, upsert_then_tag, reads=1)
    _patched_equals_full(store, tmp_path, lambda: store.delete_dataset(P, "train"), reads=1)


def test_a_missing_or_corrupt_journal_reads_the_store(store: VectorStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from core.store import journal

    ids, _, _ = seed_clusters(store, P)
    store.set_payload(P, ids[:1], [{"tags": []}])
    monkeypatch.setattr(journal, "loads", lambda text: journal.Entry(0, {"own": ("a", "b")}, ()))  # unusable links
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, ids[:1], [{"tags": ["a"]}]), reads=1)
    monkeypatch.setattr(journal, "loads", lambda text: json.loads("{not json"))
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, ids[:1], [{"tags": ["b"]}]), reads=1)
    monkeypatch.undo()
    monkeypatch.setattr(journal, "MAX_IDS", 1)  # a write bigger than the journal holds is not recorded
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, ids[:2], [{"tags": ["c"]}] * 2), reads=1)
    monkeypatch.undo()

    def failing(entry: Any) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(journal, "dumps", failing)  # recording fails: the write and its new revision stand
    before = store.revision(P, "own")
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, ids[:1], [{"tags": ["d"]}]), reads=1)
    assert store.revision(P, "own") != before


def test_the_journal_is_bounded_and_a_dropped_link_reads_the_store(store: VectorStore, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from core.store import journal

    ids, _, _ = seed_clusters(store, P)
    store.set_payload(P, ids[:1], [{"tags": []}])
    monkeypatch.setattr(journal, "MAX_ENTRIES", 3)

    def many() -> None:
        for i in range(5):
            store.set_payload(P, ids[i:i + 1], [{"tags": [f"t{i}"]}])

    _patched_equals_full(store, tmp_path, many, reads=1)
    read = store.payload_journal(P).read()  # type: ignore[attr-defined]
    assert read is not None and len(read[0]) == 3
    monkeypatch.setattr(journal, "RACE_NS", 0)  # the kept entries chain (a server: once no race is feared)
    _patched_equals_full(store, tmp_path, lambda: store.set_payload(P, ids[:1], [{"tags": ["z"]}]))


def test_a_write_from_another_process_patches_the_frame(tmp_path: Path) -> None:
    from core.store import EdgeStore

    root = tmp_path / "edge-store"
    store = EdgeStore(root, lock_timeout_s=20.0)
    try:
        ids, _, _ = seed_clusters(store, P)
        store.set_payload(P, ids[:1], [{"tags": []}])
        script = ("import sys; from core.store import EdgeStore; from core.curation import tags; "
                  "from core.auth import Actor, Role; s = EdgeStore(sys.argv[1], lock_timeout_s=20.0); "
                  "tags.add_tags(s, 'proj', sys.argv[2:], ['remote'], actor=Actor('cli', Role.EDITOR)); s.close()")

        def remote() -> None:
            done = subprocess.run([sys.executable, "-c", script, str(root), *ids[:7]], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr

        frame = _patched_equals_full(store, tmp_path, remote)
        assert list(frame.loc[ids[6], "tags"]) == ["remote"]
    finally:
        store.close()


def test_a_chain_stops_at_a_fork_a_gap_or_near_a_dropped_entry() -> None:
    """Two writers of a server that raced on one token both leave it: neither link is trusted."""
    from core.store.journal import RACE_NS, Entry, chain

    now = 10 * RACE_NS
    a, b, c = (Entry(now + i, {"own": pair}, ()) for i, pair in enumerate([("t0", "t1"), ("t1", "t2"), ("t1", "t3")]))
    cached = {"t0"}.__contains__
    assert chain([a], 0, "own", "t1", cached) == ("t0", [a])
    assert chain([a, b], 0, "own", "t2", cached) == ("t0", [a, b])
    assert chain([a, b, c], 0, "own", "t2", cached) is None  # t1 forked
    assert chain([b], 0, "own", "t2", cached) is None  # no link back to a cached frame
    assert chain([a, b], 0, "other", "t2", cached) is None  # another space's links
    assert chain([a, b], now, "own", "t2", cached) is None  # too close to a dropped entry
    assert chain([a, b], 0, "own", "t2", cached, max_links=1) is None
