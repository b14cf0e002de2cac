"""Relabeling stays cheap and visible: payload caches and other store handles see it at once, while the
cached vectors and the persisted analysis stay usable ("labels changed since", not a re-read of every vector)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.curation import history, labels, tags
from core.filters import Filter
from core.pipeline.analyse import load_analysis, run_analysis
from core.pipeline.freshness import vectors_changed
from core.pipeline.payload_cache import load_payloads
from core.pipeline.vector_cache import load_vectors
from core.store import EdgeStore
from core.store.base import VectorStore
from core.store.revisions import vectors_part
from core.types import LABEL, TAGS, Item
from tests.actors import ADMIN, user
from tests.core.conftest import seed_clusters
from tests.core.test_analyse_pipeline import P as AP
from tests.core.test_analyse_pipeline import S as AS
from tests.core.test_analyse_pipeline import _seed as seed_planted
from tests.core.test_vector_cache import Counting

P, S = "proj", "own"
REPO = Path(__file__).resolve().parents[2]


def test_a_relabel_keeps_cached_vectors_of_datasets_but_not_of_label_filters(store: VectorStore,
                                                                              tmp_path: Path) -> None:
    ids, _, _ = seed_clusters(store)
    counting = Counting(store)
    by_label = Filter.where(label="c1")
    before = load_vectors(counting, P, S, Filter.datasets(["train"]), cache_dir=tmp_path)  # type: ignore[arg-type]
    load_vectors(counting, P, S, by_label, cache_dir=tmp_path)  # type: ignore[arg-type]
    labels.set_labels(store, P, ids[1:3], ["c1", "c1"], actor=user("ann"), why="manual")
    assert store.revision(P, S) != before.revision
    assert vectors_part(store.revision(P, S)) == vectors_part(before.revision)
    counting.reads.clear()
    after = load_vectors(counting, P, S, Filter.datasets(["train"]), cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == [] and after.revision == store.revision(P, S), "no vector read after a relabel"
    relabeled = load_vectors(counting, P, S, by_label, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert counting.reads == ["vectors"], "a label filter's block is read again"
    assert set(ids[1:3]) <= set(relabeled.ids.tolist())


def test_the_analysis_stays_usable_and_says_labels_changed(store: VectorStore, tmp_path: Path) -> None:
    planted = seed_planted(store)
    run_analysis(store, AP, AS, ["train"], cache_dir=tmp_path, actor=ADMIN)
    doc_fresh = load_analysis(store, AP, AS, ["train"])
    assert doc_fresh is not None and not doc_fresh.stale and not doc_fresh.labels_changed
    labels.set_labels(store, AP, planted["train"][:1], ["eel"], actor=user("ann"), why="manual")
    result = load_analysis(store, AP, AS, ["train"])
    assert result is not None and result.stale and result.labels_changed
    assert result.scores.at[planted["train"][0], LABEL] == "eel", "scores join the current labels"
    _, vector = store.vectors(AP, AS, ids=planted["train"][:1])
    store.upsert(AP, AS, planted["train"][:1], vector, [Item("train-0", label="eel").payload("train")])
    moved = load_analysis(store, AP, AS, ["train"])
    assert moved is not None and moved.stale and not moved.labels_changed, "a vector write is not a relabel"
    (key,) = store.list_documents(AP, "analysis")
    assert vectors_changed(store.get_document(AP, "analysis", key) or {}, store, AP, AS)


_CLI = [sys.executable, "-m", "core", "--store"]


def test_the_cli_next_to_the_dashboard_is_seen_on_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    dashboard = EdgeStore(path, lock_timeout_s=30)
    try:
        ids, _, _ = seed_clusters(dashboard)
        cache = tmp_path / "payloads"
        first = load_payloads(dashboard, P, S, cache_dir=cache)
        assert load_payloads(dashboard, P, S, cache_dir=cache).equals(first)  # cached
        key = str(first.at[ids[1], "key"])
        out = subprocess.run([*_CLI, str(path), "label", "set", "--project", P, "--dataset", "train",
                              "--key", key, "fixed"], capture_output=True, text=True, timeout=180, cwd=REPO)
        assert out.returncode == 0, out.stderr
        assert "'c0' -> 'fixed'" in out.stdout
        again = load_payloads(dashboard, P, S, cache_dir=cache)
        assert again.at[ids[1], LABEL] == "fixed", "the payload cache follows the other process's write"
        (entry,) = history.read_history(dashboard, P)
        assert entry.rows[0].key == key and entry.why == "manual"
        tags.add_tags(dashboard, P, ids[:3], ["seen"], actor=user("dash"))
        shown = subprocess.run([*_CLI, str(path), "history", "--project", P, "--rows"], capture_output=True,
                               text=True, timeout=180, cwd=REPO)
        assert shown.returncode == 0 and "tags" in shown.stdout and "[seen]" in shown.stdout, shown.stderr
        assert list(load_payloads(dashboard, P, S, cache_dir=cache).at[ids[0], TAGS]) == ["seen"]
    finally:
        dashboard.close()
