"""load_payloads: a selection's payload frame kept on disk as Parquet per store revision (both adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.filters import Filter
from core.pipeline import payload_cache
from core.pipeline.payload_cache import is_cached, load_payloads
from core.store.base import VectorStore
from tests.core.conftest import seed_clusters

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
    assert counting.reads == 1 and fresh.loc[ids[1], "label"] == "renamed"
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
    run_analysis(store, P, "own")
    counting = Counting(store)
    first = load_analysis(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    again = load_analysis(counting, P, "own", cache_dir=tmp_path)  # type: ignore[arg-type]
    plain = load_analysis(store, P, "own")
    assert counting.reads == 1 and first is not None and again is not None and plain is not None
    pd.testing.assert_frame_equal(again.scores, plain.scores)
    pd.testing.assert_frame_equal(first.scores, plain.scores)
