"""Saved collections and export: persistence, no silent overwrite, current payloads, CSV/JSONL, the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import collections, export, search
from core.errors import BadInputError, NotFoundError
from core.filters import Filter
from core.ids import point_id
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN

P = "proj"
SPACE = SpaceInfo(name="own", dim=8, modality="vector")
STATED = ["id", "uri", "label", "prediction", "score", "dataset", "key", "split"]


def _seed(store: VectorStore, n: int = 60) -> list[str]:
    store.ensure_space(P, SPACE)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, SPACE.dim)).astype(np.float32)
    items = [
        ("prod" if i % 2 else "train", Item(key=f"img/{i:03d}.png", uri=f"/data/img/{i:03d}.png",
                                          label=None if i % 2 else "cat", prediction="dog",
                                          split="production" if i % 2 else "train",
                                          meta={"camera": "a"}))
        for i in range(n)
    ]
    ids = [point_id(P, ds, it.key) for ds, it in items]
    store.upsert(P, SPACE.name, ids, vectors, [it.payload(ds) for ds, it in items])
    return ids


@pytest.fixture
def seeded(store: VectorStore) -> tuple[VectorStore, list[str]]:
    return store, _seed(store)


def _hits(store: VectorStore, ids: list[str]) -> list:
    return search.by_examples(store, P, "own", [ids[0]], flt=Filter.where(split="production"), limit=10)


def test_save_and_load_a_search_result_with_current_payloads(seeded) -> None:
    store, ids = seeded
    hits = _hits(store, ids)
    query = {"type": "examples", "positive": [ids[0]], "filter": ["split=production"]}
    saved = collections.save_hits(store, P, "hard cases", hits, actor=ADMIN, space="own", query=query,
                                  description="to label")
    assert saved.ids == [h.id for h in hits]
    # Labels that arrive later show up when the collection is loaded (payloads are read live).
    store.set_payload(P, [hits[0].id], [{"label": "fox"}])
    loaded = collections.load(store, P, "hard cases")
    assert loaded.ids == saved.ids and loaded.query == query and loaded.description == "to label"
    assert list(loaded.items.index) == saved.ids
    assert loaded.items.loc[hits[0].id, "label"] == "fox"
    np.testing.assert_allclose(loaded.items["score"], [h.score for h in hits], rtol=1e-6)
    assert loaded.items["split"].eq("production").all() and loaded.missing == []
    assert [c.name for c in collections.list(store, P)] == ["hard cases"]


def test_save_refuses_silent_overwrite_and_bad_names(seeded) -> None:
    store, ids = seeded
    collections.save(store, P, "batch-1", ids[:3], space="own", actor=ADMIN)
    with pytest.raises(BadInputError, match="already exists"):
        collections.save(store, P, "batch-1", ids[3:6], space="own", actor=ADMIN)
    assert collections.load(store, P, "batch-1").ids == ids[:3], "the old data is untouched"
    collections.save(store, P, "batch-1", ids[3:6], space="own", overwrite=True, actor=ADMIN)
    assert collections.load(store, P, "batch-1").ids == ids[3:6]
    for bad in ("", "..", "../etc", "a/b", "x" * 101, " spaces-only-ok? "):  # core.store.names' rule
        with pytest.raises(BadInputError, match="collection name"):
            collections.save(store, P, bad, ids[:1], space="own", actor=ADMIN)
    with pytest.raises(BadInputError, match="empty"):
        collections.save(store, P, "nothing", [], space="own", actor=ADMIN)


def test_explore_selection_ids_rename_delete_and_missing_points(seeded) -> None:
    store, ids = seeded
    selection = [ids[4], ids[5], ids[4]]  # duplicates keep their first place
    coll = collections.save(store, P, "selection", selection, space="own", actor=ADMIN)
    assert coll.ids == [ids[4], ids[5]] and coll.refs == [("train", "img/004.png"), ("prod", "img/005.png")]
    with pytest.raises(NotFoundError, match="not in space"):
        collections.save(store, P, "ghost", [point_id(P, "train", "nope")], space="own", actor=ADMIN)
    collections.save(store, P, "other", ids[:2], space="own", actor=ADMIN)
    with pytest.raises(BadInputError, match="already exists"):
        collections.rename(store, P, "selection", "other", actor=ADMIN)
    collections.rename(store, P, "selection", "renamed", actor=ADMIN)
    assert collections.list_collections(store, P)[0].name == "other"
    assert {c.name for c in collections.list_collections(store, P)} == {"other", "renamed"}
    store.delete_dataset(P, "prod")
    loaded = collections.load(store, P, "renamed")
    assert loaded.missing == [ids[5]] and loaded.items.loc[ids[4], "key"] == "img/004.png"
    collections.delete(store, P, "renamed", actor=ADMIN)
    with pytest.raises(NotFoundError):
        collections.load(store, P, "renamed")
    with pytest.raises(NotFoundError):
        collections.delete(store, P, "renamed", actor=ADMIN)


def test_collections_persist_across_close_and_reopen(tmp_path: Path) -> None:
    from core.store import EdgeStore

    store = EdgeStore(tmp_path / "qdrant")
    ids = _seed(store)
    collections.save(store, P, "keep", ids[:4], space="own", scores=[0.9, 0.8, None, 0.5], actor=ADMIN)
    store.close()
    reopened = EdgeStore(tmp_path / "qdrant")
    try:
        coll = collections.load(reopened, P, "keep")
        assert coll.ids == ids[:4] and coll.scores == [0.9, 0.8, None, 0.5]
        assert coll.items["key"].tolist() == [f"img/{i:03d}.png" for i in range(4)]
    finally:
        reopened.close()


def test_export_csv_and_jsonl_open_in_pandas_with_the_stated_columns(seeded, tmp_path: Path) -> None:
    store, ids = seeded
    hits = _hits(store, ids)
    collections.save_hits(store, P, "queue", hits, space="own", actor=ADMIN)
    csv_bytes = collections.export_csv(store, P, "queue", tmp_path / "out" / "queue.csv")
    assert (tmp_path / "out" / "queue.csv").read_bytes() == csv_bytes
    jsonl_bytes = collections.export_jsonl(store, P, "queue")
    for frame in (pd.read_csv(io.BytesIO(csv_bytes)), pd.read_json(io.BytesIO(jsonl_bytes), lines=True)):
        assert list(frame.columns[: len(STATED)]) == STATED
        assert frame["id"].tolist() == [h.id for h in hits]
        assert frame["uri"].str.startswith("/data/img/").all() and frame["dataset"].eq("prod").all()
        assert frame["label"].isna().all(), "unlabeled points export an empty label"
    first = json.loads(jsonl_bytes.splitlines()[0])
    assert first["label"] is None and first["score"] == pytest.approx(hits[0].score)
    # A plain result set exports the same way, with extra metadata columns on request.
    frame = export.hits_frame(hits, extra=["meta.camera"])
    assert frame["meta.camera"].eq("a").all() and list(frame.columns[: len(STATED)]) == STATED
    with pytest.raises(BadInputError, match=".csv or .jsonl"):
        export.write(frame, tmp_path / "x.xlsx")


def _cli(argv: list[str]) -> int:
    from core.__main__ import main

    return main(argv)


def test_cli_search_writes_the_file_and_saves_a_collection(tmp_path: Path, capsys) -> None:
    from core.config import load_settings
    from core.store import open_store

    store = open_store(load_settings())  # the on-disk embedded store of this test's data dir
    ids = _seed(store)
    store.close()
    out = tmp_path / "found.csv"
    argv = ["search", "--project", P, "--space", "own", "--like", f"train:img/000.png,{ids[2]}",
            "--unlike", ids[3], "--filter", "split=production", "--filter", "label is missing",
            "--limit", "7", "--out", str(out), "--save-as", "cli-run"]
    assert _cli(argv) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 7 and frame["split"].eq("production").all() and frame["label"].isna().all()
    assert not {ids[0], ids[2], ids[3]} & set(frame["id"])
    assert _cli(argv) == 1, "the collection name is taken: refused, nothing overwritten"
    assert "already exists" in capsys.readouterr().err
    assert _cli(["search", "--project", P, "--space", "own", "--text", "a cat"]) == 1
    assert "text side" in capsys.readouterr().err
    assert _cli(["search", "--project", P, "--space", "own", "--like", ids[5], "--limit", "3"]) == 0
    assert "score" in capsys.readouterr().out
    assert _cli(["search", "--project", P, "--space", "own", "--plus", ids[5], "--minus", ids[6]]) == 0
    assert _cli(["search", "--project", P, "--unlike", ids[1], "--like", ids[2], "--out", "x.txt"]) == 1
    assert _cli(["search", "--project", P, "--minus", ids[1], "--text", "dog"]) == 2
    assert _cli(["collections", "--project", P, "list"]) == 0
    assert "cli-run\t7 points" in capsys.readouterr().out
    assert _cli(["collections", "--project", P, "export", "cli-run", "--out", str(tmp_path / "c.jsonl")]) == 0
    assert pd.read_json(tmp_path / "c.jsonl", lines=True)["id"].tolist() == frame["id"].tolist()
    assert _cli(["collections", "--project", P, "delete", "cli-run"]) == 0
    assert _cli(["collections", "--project", P, "show", "cli-run"]) == 1
    reopened = open_store(load_settings())
    try:
        assert collections.list_collections(reopened, P) == []
    finally:
        reopened.close()
