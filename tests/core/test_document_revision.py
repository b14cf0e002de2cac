"""The per-kind documents token (VectorStore.document_revision) of both adapters: what the dashboard's
map and analysis caches key on instead of the project's token, which every write moves."""

from __future__ import annotations

from pathlib import Path

from core.store.base import VectorStore
from core.types import SpaceInfo
from tests.core.conftest import make_store, seed_clusters

P = "proj"
KINDS = ("map", "analysis", "history")


def test_a_document_kind_token_moves_on_writes_of_that_kind_only(store: VectorStore) -> None:
    assert {store.document_revision(P, kind) for kind in KINDS} == {"0"}  # never written
    ids, vectors, _ = seed_clusters(store)
    store.ensure_space(P, SpaceInfo("other", 16, "vector"))
    last: dict[str, str] = {}

    def moved() -> set[str]:
        """Which kinds' tokens changed since the last call."""
        now = {kind: store.document_revision(P, kind) for kind in KINDS}
        changed = {kind for kind in now if last and now[kind] != last[kind]}
        last.update(now)
        return changed

    moved()
    assert store.document_revision(P, "map") == "0", "point writes leave documents' tokens alone"
    store.upsert(P, "own", ids[:2], vectors[:2], [{"dataset": "train", "kind": "item"}] * 2)
    store.set_payload(P, ids[:1], [{"label": "relabelled"}])
    store.get_document(P, "map", "m"), store.list_documents(P, "map")
    assert moved() == set()
    project = store.revision(P)
    store.put_document(P, "map", "m", {"x": 1})
    assert moved() == {"map"} and store.revision(P) != project
    store.put_document(P, "history", "h", {"who": "me"})  # another kind: the maps' token stays
    assert moved() == {"history"}
    store.put_document("another", "map", "m", {"x": 2})  # another project
    assert moved() == set()
    assert store.delete_document(P, "map", "m")
    assert moved() == {"map"}
    store.put_document(P, "analysis", "a", {"x": 3})
    assert moved() == {"analysis"}
    store.delete_project(P)  # its documents are gone: their kinds' tokens are new, not back to "0"
    assert {"analysis", "history"} <= moved()
    assert "0" not in (last["analysis"], last["history"]) and store.document_revision("unknown", "map") == "0"


def test_another_process_sees_the_token_move(tmp_path: Path) -> None:
    writer = make_store("edge", tmp_path / "db")
    writer.put_document(P, "map", "m", {"x": 1})
    before = writer.document_revision(P, "map")
    writer.close()
    reader = make_store("edge", tmp_path / "db")
    try:
        assert reader.document_revision(P, "map") == before != "0"  # persisted, read from the folder
        reader.put_document(P, "map", "m", {"x": 2})
        assert reader.document_revision(P, "map") != before
    finally:
        reader.close()
