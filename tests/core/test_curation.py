"""core.curation on both adapters: tags filter by element, relabel with one history entry per operation,
the original label kept, undo (and its refusal), suggestions that skip corrected items."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.curation import history, labels, tags
from core.curation.corrected import corrected_ids, drop_corrected, drop_corrected_from_store
from core.curation.points import points_of_keys
from core.errors import BadInputError, NotFoundError
from core.filters import Condition, Filter, parse_filter
from core.ids import point_id
from core.pipeline.analyse import load_analysis, run_analysis
from core.store.base import VectorStore
from core.types import LABEL, ORIGINAL_LABEL, REVIEWED, TAGS
from tests.actors import ADMIN, user
from tests.core.conftest import seed_clusters
from tests.core.test_analyse_pipeline import P as AP
from tests.core.test_analyse_pipeline import S as AS
from tests.core.test_analyse_pipeline import _seed as seed_planted

P, S = "proj", "own"


def _count(store: VectorStore, flt: Filter) -> int:
    return store.count(P, S, flt)


def _payload(store: VectorStore, ids: list[str], fields: list[str], project: str = P, space: str = S) -> pd.DataFrame:
    return store.payloads(project, space, Filter.ids(ids), fields=fields).loc[ids]


def test_tags_match_by_element_count_and_undo(store: VectorStore) -> None:
    ids, _, _ = seed_clusters(store)
    assert tags.add_tags(store, P, ids[:10], ["bad", " blurry "], actor=user("ann")) == 10
    assert tags.add_tags(store, P, ids[5:15], ["bad"], actor=user("bob"), note="second look") == 5  # 5 had it
    assert _count(store, Filter(must=(Condition(TAGS, equals="bad"),))) == 15
    assert _count(store, tags.tagged("blurry")) == 10
    assert _count(store, tags.tagged("blurry", "nope")) == 10
    assert _count(store, Filter(must=(Condition(TAGS, one_of=("bad", "blurry")),))) == 15
    assert _count(store, parse_filter(["tags=bad", "tags!=blurry"])) == 5
    assert _count(store, Filter(must=(Condition(TAGS, missing=True),))) == len(ids) - 15
    assert tags.tag_counts(store, P, S) == {"bad": 15, "blurry": 10}
    assert tags.tag_counts(store, P, S, Filter.ids(ids[:6])) == {"bad": 6, "blurry": 6}
    # Tags are read-modify-write: the second add kept "blurry" on the overlap, in order.
    assert list(_payload(store, [ids[7]], [TAGS])[TAGS].iloc[0]) == ["bad", "blurry"]
    assert tags.remove_tags(store, P, ids[:10], ["blurry"], actor=user("ann")) == 10
    assert tags.tag_counts(store, P, S) == {"bad": 15}
    newest = history.read_history(store, P)
    assert [(e.field, e.who, len(e.rows)) for e in newest] == [("tags", "ann", 10), ("tags", "bob", 5),
                                                                ("tags", "ann", 10)]
    assert newest[1].note == "second look" and newest[0].rows[0].old == ["bad", "blurry"]
    labels.undo(store, P, actor=user("ann"))  # the removal
    assert tags.tag_counts(store, P, S) == {"bad": 15, "blurry": 10}


def test_tag_input_errors_name_what_is_wrong(store: VectorStore) -> None:
    ids, _, _ = seed_clusters(store)
    with pytest.raises(BadInputError, match="1 to 100"):
        tags.add_tags(store, P, ids[:2], [""], actor=user("ann"))
    with pytest.raises(BadInputError, match="not-a-uuid"):
        tags.add_tags(store, P, ["not-a-uuid"], ["x"], actor=user("ann"))
    stranger = point_id(P, "train", "no-such-item")
    with pytest.raises(NotFoundError, match=stranger):
        tags.add_tags(store, P, [ids[0], stranger], ["x"], actor=user("ann"))
    with pytest.raises(NotFoundError, match="train/no-such-item"):
        points_of_keys(store, P, [("train", "item-0000"), ("train", "no-such-item")])
    assert history.read_history(store, P) == [], "a refused operation writes nothing"


def test_relabel_keeps_the_original_and_undo_restores(store: VectorStore) -> None:
    ids, _, _ = seed_clusters(store)  # item 0 is unlabeled (every 5th), items 1-2 are "c0"
    assert labels.preview_labels(store, P, ids[:3], [None, "c0", "x"]) == [
        labels.LabelChange(ids[2], "train", "item-0002", "c0", "x")]
    first = labels.set_labels(store, P, ids[:3], ["new", "y", "x"], actor=user("ann"), why="manual", note="fix")
    assert first is not None and [(r.old, r.new) for r in first.rows] == [(None, "new"), ("c0", "y"), ("c0", "x")]
    second = labels.set_labels(store, P, ids[:2], ["z", "w"], actor=user("bob"), why="manual")
    assert second is not None and labels.set_labels(store, P, ids[:1], ["z"], actor=user("bob"), why="manual") is None
    now = _payload(store, ids[:3], [LABEL, ORIGINAL_LABEL])
    assert list(now[LABEL]) == ["z", "w", "x"]
    # Set once, on the first change: "c0" survives the second change; item 0 had none.
    assert now[ORIGINAL_LABEL].iloc[1:].tolist() == ["c0", "c0"] and pd.isna(now[ORIGINAL_LABEL].iloc[0])
    item = history.read_history(store, P, dataset="train", key="item-0001")
    assert [(e.entry, e.rows[0].old, e.rows[0].new) for e in item] == [(second.entry, "y", "w"),
                                                                       (first.entry, "c0", "y")]
    with pytest.raises(BadInputError, match=r"train/item-0000 .*train/item-0001"):
        labels.undo(store, P, first.entry, actor=user("ann"))  # both rows were changed again by `second`
    assert labels.undo(store, P, actor=user("ann")).undoes == second.entry
    with pytest.raises(BadInputError, match="give more of the id"):
        labels.undo(store, P, first.entry[:2], actor=user("ann"))  # the start of every entry
    undo_first = labels.undo(store, P, first.entry[:-3], actor=user("ann"))  # a unique start is enough
    assert undo_first.why == "undo" and undo_first.undoes == first.entry
    now = _payload(store, ids[:3], [LABEL, ORIGINAL_LABEL])
    assert pd.isna(now[LABEL].iloc[0]) and now[LABEL].iloc[1:].tolist() == ["c0", "c0"]
    assert now[ORIGINAL_LABEL].iloc[1:].tolist() == ["c0", "c0"], "undo keeps the original label"
    with pytest.raises(BadInputError, match="Nothing to undo"):
        labels.undo(store, P, actor=user("ann"))
    with pytest.raises(BadInputError, match="already undone"):
        labels.undo(store, P, first.entry, actor=user("ann"))
    redo = labels.undo(store, P, undo_first.entry, actor=user("ann"))  # undoing an undo re-applies the entry
    assert redo.undoes == undo_first.entry and _payload(store, [ids[2]], [LABEL])[LABEL].iloc[0] == "x"
    states = {e.entry: e.undone_by for e in history.read_history(store, P)}
    assert states[first.entry] is None and states[undo_first.entry] == redo.entry
    with pytest.raises(NotFoundError, match="No history entry"):
        labels.undo(store, P, "1999", actor=user("ann"))


def test_accepting_suggestions_is_one_entry_and_drops_them_from_the_mislabels(store: VectorStore) -> None:
    planted = seed_planted(store)
    result = run_analysis(store, AP, AS, ["train", "test"], actor=ADMIN)
    likely = result.scores[result.scores["likely_mislabel"]]
    changes = labels.suggestions(store, AP, AS, datasets=["train", "test"])
    assert {c.point for c in changes} == set(likely.index[likely["suggested_label"] != likely["label"]])
    assert len(set(c.point for c in changes) & set(planted["train"][:8])) >= 4  # most flipped labels
    assert all(c.new == likely.at[c.point, "suggested_label"] and c.old == likely.at[c.point, "label"]
               and c.score == pytest.approx(likely.at[c.point, "mislabel"]) for c in changes)
    assert [c.score for c in changes] == sorted((c.score for c in changes), reverse=True)
    wider = labels.suggestions(store, AP, AS, datasets=["train", "test"], min_score=0.0)
    assert len(wider) > len(changes) and all(c.old != c.new for c in wider)
    with pytest.raises(NotFoundError, match="no analysis"):
        labels.suggestions(store, AP, AS, datasets=["train"])
    entry = labels.set_labels(store, AP, [c.point for c in changes], [c.new for c in changes], actor=user("ann"),
                              why="finding")
    assert entry is not None and len(entry.rows) == len(changes)
    assert len(history.read_history(store, AP)) == 1, "a bulk accept is one history entry"
    assert labels.suggestions(store, AP, AS, datasets=["train", "test"]) == [], "corrected items are skipped"
    reloaded = load_analysis(store, AP, AS, ["train", "test"])
    assert reloaded is not None
    reloaded_likely = reloaded.scores[reloaded.scores["likely_mislabel"]]
    assert corrected_ids(store, AP, AS) == {c.point for c in changes}
    assert drop_corrected_from_store(store, AP, reloaded_likely).index.isin(
        [c.point for c in changes]).sum() == 0
    labels.undo(store, AP, actor=user("ann"))  # the accepted suggestions
    assert {c.point for c in labels.suggestions(store, AP, AS, datasets=["train", "test"])} == {
        c.point for c in changes}, "after the undo they are suggested again"
    # A reviewed item ("keep label" in the review queue) counts as decided too.
    kept = changes[0].point
    assert tags.set_reviewed(store, AP, [kept], True, actor=user("ann")) == 1
    payloads = store.payloads(AP, AS, Filter.ids(list(likely.index)), fields=[LABEL, ORIGINAL_LABEL, REVIEWED])
    assert kept not in drop_corrected(likely, payloads).index and len(drop_corrected(likely, payloads)) == len(
        likely) - 1
    assert kept not in {c.point for c in labels.suggestions(store, AP, AS, datasets=["train", "test"])}


def test_an_edge_store_made_before_tags_gets_the_index_on_open(tmp_path: Path) -> None:
    import qdrant_edge as qe

    from core.store import EdgeStore
    from core.store import edge_shards as es

    path = tmp_path / "old"
    old = EdgeStore(path)
    ids, _, _ = seed_clusters(old)
    old.close()
    shard = es.open_shard(es.space_dir(path, P, S))  # as a store of the layout before tags was indexed
    shard.update(qe.UpdateOperation.delete_field_index(TAGS))
    assert TAGS not in shard.info().payload_schema
    shard.close()
    reopened = EdgeStore(path)
    try:
        assert tags.add_tags(reopened, P, ids[:4], ["x"], actor=user("ann")) == 4
        assert reopened.count(P, S, tags.tagged("x")) == 4
    finally:
        reopened.close()
    shard = es.open_shard(es.space_dir(path, P, S))
    try:
        assert TAGS in shard.info().payload_schema, "indexed on open, no re-ingest"
    finally:
        shard.close()


def test_a_space_ingested_after_a_fix_gets_the_fixed_label_and_tags(store: VectorStore) -> None:
    import numpy as np

    from core.pipeline.ingest_vectors import ingest_vectors
    from core.types import Item, SpaceInfo

    items = [Item(key=f"k{i}", label="cat" if i % 2 else "dog") for i in range(12)]
    rng = np.random.default_rng(0)
    ingest_vectors(store, P, "train", SpaceInfo("a", 8, "vector"), items, rng.standard_normal((12, 8)), actor=ADMIN)
    ids = [point_id(P, "train", f"k{i}") for i in range(12)]
    labels.set_labels(store, P, ids[:2], ["bird", "bird"], actor=user("ann"), why="manual")
    tags.add_tags(store, P, ids[1:3], ["check"], actor=user("ann"))
    ingest_vectors(store, P, "train", SpaceInfo("b", 4, "vector"), items, rng.standard_normal((12, 4)), actor=ADMIN)
    for space in ("a", "b"):
        frame = _payload(store, ids[:4], [LABEL, ORIGINAL_LABEL, TAGS], space=space)
        assert list(frame[LABEL]) == ["bird", "bird", "dog", "cat"], space
        assert list(frame[ORIGINAL_LABEL].iloc[:2]) == ["dog", "cat"], space
        assert store.count(P, space, tags.tagged("check")) == 2, space
