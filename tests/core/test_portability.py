"""Project bundles and backups between the two real adapters: Edge -> server (local mode) -> Edge, identical."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import collections as colls
from core.auth import Actor, PermissionDeniedError, Role
from core.curation import history, labels, tags
from core.errors import BadInputError, StoreTooNewError
from core.ids import point_id
from core.pipeline import analyse, compare, evaluate, map_doc
from core.pipeline.analyse import load_analysis, run_analysis
from core.pipeline.maps import get_map
from core.portability import backup_store, export_project, import_project, remap, restore_store
from core.portability import manifest as mf
from core.store import EdgeStore, ServerStore
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.core.conftest import same_typed

P = "cams"
ADMIN = Actor("ann", Role.ADMIN)


def build_project(store: VectorStore) -> dict[str, list[str]]:
    """2 datasets in a model space "emb" (16-d), train also in an own-vectors space "own" (8-d);
    tags and a relabel (history), a collection, a persisted map and analysis."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 16)) * 2
    store.ensure_space(P, SpaceInfo("emb", 16, "image", model="tiny/clip", layer="pooled", text_side=True))
    store.ensure_space(P, SpaceInfo("own", 8, "vector", description="the user's vectors"))
    ids: dict[str, list[str]] = {}
    for ds, n in (("train", 60), ("test", 40)):
        which = rng.integers(0, 4, n)
        vectors = (centres[which] + 0.3 * rng.standard_normal((n, 16))).astype(np.float32)
        items = [Item(key=f"{ds}/{i}.png", uri=f"/data/{ds}/{i}.png", label=f"c{which[i]}", confidence=i / n,
                      split=ds, meta={"camera": "a" if i % 2 else "b", "n": i, "night": i % 3 == 0})
                 for i in range(n)]
        ids[ds] = [point_id(P, ds, it.key) for it in items]
        store.upsert(P, "emb", ids[ds], vectors, [it.payload(ds) for it in items])
        if ds == "train":
            store.upsert(P, "own", ids[ds], rng.standard_normal((n, 8)).astype(np.float32),
                         [it.payload(ds) for it in items])
    get_map(store, P, "emb", None, method="pca", actor=ADMIN)
    run_analysis(store, P, "emb", ["train", "test"], actor=ADMIN)
    tags.add_tags(store, P, ids["train"][:10], ["blurry"], actor=ADMIN)
    labels.set_labels(store, P, ids["test"][:3], ["c9", None, "c1"], actor=ADMIN, why="manual")
    colls.save(store, P, "review", ids["train"][5:15], actor=ADMIN, space="emb", description="to check")
    return ids


def snapshot(store: VectorStore, project: str) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """Every space (descriptor, id -> (vector, payload)) and every document of the project, with
    recorded revision tokens written as the space they stand for (tokens differ between stores)."""
    spaces: dict[str, Any] = {}
    swap = remap.revision_swap((store.revision(project, s.name), f"<{s.name}>") for s in store.list_spaces(project))
    for info in store.list_spaces(project):
        rows = {}
        for ids, vectors, payloads in store.iter_vectors(project, info.name):
            rows.update({i: (v, p) for i, v, p in zip(ids, vectors, payloads, strict=True)})
        spaces[info.name] = (info, rows)
    docs = {(kind, key): remap.walk(store.get_document(project, kind, key), swap)
            for p, kind, key in store.document_index() if p == project}
    return spaces, docs


def assert_same(a: tuple[dict[str, Any], dict[Any, Any]], b: tuple[dict[str, Any], dict[Any, Any]]) -> None:
    assert a[0].keys() == b[0].keys()
    for name, (info, rows) in a[0].items():
        other_info, other_rows = b[0][name]
        assert info == other_info and rows.keys() == other_rows.keys()
        for pid, (vector, payload) in rows.items():
            np.testing.assert_allclose(vector, other_rows[pid][0], rtol=1e-6, atol=1e-7)
            assert same_typed(payload, other_rows[pid][1]), (pid, payload, other_rows[pid][1])
    assert a[1].keys() == b[1].keys()
    for key, doc in a[1].items():
        assert doc == b[1][key], key


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built once in a closed Edge store folder (each test works on a copy)."""
    root = tmp_path_factory.mktemp("portability") / "template"
    store = EdgeStore(root, lock_timeout_s=10.0)
    build_project(store)
    store.close()
    return root


@pytest.fixture
def edge(built: Path, tmp_path: Path) -> Any:
    shutil.copytree(built, tmp_path / "laptop")
    store = EdgeStore(tmp_path / "laptop", lock_timeout_s=10.0)
    yield store
    store.close()


def test_edge_to_server_and_back_is_identical(edge: EdgeStore, tmp_path: Path) -> None:
    original = snapshot(edge, P)
    kinds = {kind for kind, _ in original[1]}
    assert {"map", "analysis", "history", "collection", "_space"} <= kinds
    export_project(edge, P, tmp_path / "b1", actor=ADMIN)
    manifest = json.loads((tmp_path / "b1" / mf.MANIFEST).read_text())
    assert manifest["project"] == P and {s["doc"]["name"]: s["points"] for s in manifest["spaces"]} == \
        {"emb": 100, "own": 60}
    assert {d["name"] for d in manifest["datasets"]} == {"train", "test"}
    server = ServerStore(path=str(tmp_path / "team"))
    try:
        report = import_project(server, tmp_path / "b1", actor=ADMIN)
        assert report.points == {"emb": 100, "own": 60} and report.skipped_documents == 0
        assert_same(original, snapshot(server, P))
        export_project(server, P, tmp_path / "b2", actor=ADMIN)
    finally:
        server.close()
    back = EdgeStore(tmp_path / "laptop2", lock_timeout_s=10.0)
    try:
        import_project(back, tmp_path / "b2", actor=ADMIN)
        assert_same(original, snapshot(back, P))
        # Results stay current after the move: the map is reused, the analysis not stale.
        assert get_map(back, P, "emb", None, method="pca", actor=ADMIN).fitted is False
        loaded = load_analysis(back, P, "emb", ["train", "test"])
        assert loaded is not None and loaded.stale is False
        assert [e.who for e in history.read_history(back, P)] == ["ann", "ann"]
    finally:
        back.close()


def test_import_under_a_new_name_gives_that_names_ids(edge: EdgeStore, tmp_path: Path) -> None:
    export_project(edge, P, tmp_path / "b", actor=ADMIN)
    report = import_project(edge, tmp_path / "b", actor=ADMIN, project="cams copy")
    assert report.skipped_documents == 2  # the map and the analysis: computed again on first use
    ids = sorted(edge.payloads("cams copy", "emb").index)
    payloads = edge.payloads("cams copy", "emb")
    assert ids == sorted(point_id("cams copy", d, k) for d, k in zip(payloads["dataset"], payloads["key"],
                                                                          strict=True))
    coll = colls.get(edge, "cams copy", "review", with_items=False)
    assert set(coll.ids) <= set(ids) and len(coll.ids) == 10
    rows = [r.point for e in history.read_history(edge, "cams copy") for r in e.rows]
    assert rows and set(rows) <= set(ids)
    assert snapshot(edge, P)[0].keys() == {"emb", "own"}  # the original is untouched


def test_existing_project_is_refused_unless_replaced_and_a_failed_replace_rolls_back(
        edge: EdgeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export_project(edge, P, tmp_path / "b", actor=ADMIN)
    tags.add_tags(edge, P, [point_id(P, "test", "test/0.png")], ["after-export"], actor=ADMIN)
    before = snapshot(edge, P)
    with pytest.raises(BadInputError, match="exists already.*--replace"):
        import_project(edge, tmp_path / "b", actor=ADMIN)
    assert_same(before, snapshot(edge, P))

    calls = {"n": 0}
    real_upsert = edge.upsert

    def failing_upsert(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the first page went in, then the disk "fills up"
            raise OSError("No space left on device")
        real_upsert(*args, **kwargs)

    monkeypatch.setattr(edge, "upsert", failing_upsert)
    with pytest.raises(OSError, match="No space"):
        import_project(edge, tmp_path / "b", actor=ADMIN, replace=True, work_dir=tmp_path)
    monkeypatch.setattr(edge, "upsert", real_upsert)
    assert_same(before, snapshot(edge, P))  # the replaced project is back, tag included
    assert not list(tmp_path.glob("embedscope-rollback-*"))  # its rollback bundle is removed

    import_project(edge, tmp_path / "b", actor=ADMIN, replace=True)
    assert edge.count(P, "emb") == 100 and tags.tag_counts(edge, P, "emb").get("after-export") is None


def test_a_rollback_that_fails_too_keeps_the_replaced_project_in_a_bundle(
        edge: EdgeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export_project(edge, P, tmp_path / "b", actor=ADMIN)
    before = snapshot(edge, P)
    real_upsert = edge.upsert

    def broken_upsert(*args: Any, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(edge, "upsert", broken_upsert)
    with pytest.raises(OSError, match="No space"):
        import_project(edge, tmp_path / "b", actor=ADMIN, replace=True, work_dir=tmp_path)
    monkeypatch.setattr(edge, "upsert", real_upsert)
    kept = list(tmp_path.glob("embedscope-rollback-*/project-0"))
    assert len(kept) == 1 and P not in edge.list_projects()
    import_project(edge, kept[0], actor=ADMIN)  # what the log says to do
    assert_same(before, snapshot(edge, P))


def test_a_write_during_export_makes_it_start_again(edge: EdgeStore, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_iter, pid, writes = edge.iter_vectors, point_id(P, "test", "test/1.png"), []

    def iter_with_a_write(*args: Any, **kwargs: Any) -> Any:
        if not writes:  # someone tags an item while the first attempt reads the points
            writes.append(tags.add_tags(edge, P, [pid], ["mid-export"], actor=ADMIN))
        return real_iter(*args, **kwargs)

    monkeypatch.setattr(edge, "iter_vectors", iter_with_a_write)
    export_project(edge, P, tmp_path / "b", actor=ADMIN)
    monkeypatch.setattr(edge, "iter_vectors", real_iter)
    assert writes == [1] and not list(tmp_path.glob("b.partial-*"))
    target = EdgeStore(tmp_path / "other", lock_timeout_s=10.0)
    try:
        import_project(target, tmp_path / "b", actor=ADMIN)
        assert_same(snapshot(edge, P), snapshot(target, P))  # the tag and its history entry both
    finally:
        target.close()


def test_damaged_partial_or_newer_bundles_write_nothing(edge: EdgeStore, tmp_path: Path) -> None:
    export_project(edge, P, tmp_path / "b", actor=ADMIN)
    target = EdgeStore(tmp_path / "other", lock_timeout_s=10.0)
    try:
        damaged = tmp_path / "damaged"
        _copy(tmp_path / "b", damaged)
        points = damaged / mf.points_file("own")
        points.write_bytes(points.read_bytes()[: points.stat().st_size // 2])
        with pytest.raises(BadInputError, match="damaged.*own"):
            import_project(target, damaged, actor=ADMIN)
        partial = tmp_path / "partial"
        _copy(tmp_path / "b", partial)
        (partial / mf.MANIFEST).unlink()
        with pytest.raises(BadInputError, match="not an embedscope project bundle"):
            import_project(target, partial, actor=ADMIN)
        newer = tmp_path / "newer"
        _copy(tmp_path / "b", newer)
        _edit_manifest(newer, lambda m: m.update(format_version=mf.FORMAT_VERSION + 1))
        with pytest.raises(StoreTooNewError, match="newer embedscope"):
            import_project(target, newer, actor=ADMIN)
        escaping = tmp_path / "escaping"
        _copy(tmp_path / "b", escaping)
        _edit_manifest(escaping, lambda m: m["files"].update({"../b/manifest.json": {"bytes": 1, "sha256": ""}}))
        with pytest.raises(BadInputError, match="outside itself"):
            import_project(target, escaping, actor=ADMIN)
        assert target.list_projects() == [] and target.document_index() == []
    finally:
        target.close()


def test_backup_and_restore_while_the_dashboard_holds_the_store(edge: EdgeStore, tmp_path: Path) -> None:
    dashboard = edge  # the dashboard process's store: it keeps reading while the CLI works
    cli = EdgeStore(edge.root, lock_timeout_s=10.0)
    try:
        original = snapshot(dashboard, P)
        assert dashboard.count(P, "emb") == 100  # holds the lease now: the CLI must ask for it
        report = backup_store(cli, tmp_path / "backup", actor=ADMIN)
        assert report.projects == {P: 160}
        assert dashboard.count(P, "own") == 60  # the dashboard kept working meanwhile
        with pytest.raises(BadInputError, match="--replace"):
            restore_store(cli, tmp_path / "backup", actor=ADMIN)
        cli.delete_dataset(P, "test")
        restore_store(cli, tmp_path / "backup", actor=ADMIN, replace=True)
        assert_same(original, snapshot(dashboard, P))
    finally:
        cli.close()
    fresh = ServerStore(path=str(tmp_path / "server"))
    try:
        restore_store(fresh, tmp_path / "backup", actor=ADMIN)
        assert_same(original, snapshot(fresh, P))
        listing = tmp_path / "backup" / "backup.json"
        listing.write_text(json.dumps({**json.loads(listing.read_text()), "format_version": 99}))
        with pytest.raises(StoreTooNewError, match="backup .* format version 99"):
            restore_store(fresh, tmp_path / "backup", actor=ADMIN, replace=True)
    finally:
        fresh.close()


def test_roles(edge: EdgeStore, tmp_path: Path) -> None:
    viewer = Actor("vic", Role.VIEWER)
    export_project(edge, P, tmp_path / "b", actor=viewer)  # viewers may export
    for call in (lambda: import_project(edge, tmp_path / "b", actor=viewer, project="x"),
                 lambda: backup_store(edge, tmp_path / "bk", actor=viewer),
                 lambda: restore_store(edge, tmp_path / "bk", actor=viewer)):
        with pytest.raises(PermissionDeniedError, match="vic is a viewer.*admin"):
            call()
    assert edge.list_projects() == [P] and not (tmp_path / "bk").exists()


def test_derived_kinds_are_the_result_kinds() -> None:
    from core.pipeline import analyse_objects

    assert set(remap.DERIVED_KINDS) == {map_doc.MAP_KIND, analyse.DOC_KIND, analyse_objects.DOC_KIND,
                                        compare.DOC_KIND, evaluate.DOC_KIND}


def test_cli_moves_a_project(edge: EdgeStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.__main__ import main

    edge.close()  # the CLI opens the store itself
    laptop, server = str(tmp_path / "laptop"), str(tmp_path / "cli-target")
    assert main(["export-project", "--store", laptop, "--project", P, "--out", str(tmp_path / "cli-b")]) == 0
    assert main(["import-project", str(tmp_path / "cli-b"), "--store", server, "--project", "moved"]) == 0
    assert main(["import-project", str(tmp_path / "cli-b"), "--store", server, "--project", "moved"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "cli-backup"), "--store", server]) == 0
    assert main(["restore", str(tmp_path / "cli-backup"), "--store", server, "--replace"]) == 0
    moved = EdgeStore(server, lock_timeout_s=10.0)
    try:
        assert moved.list_projects() == ["moved"] and moved.count("moved", "emb") == 100
    finally:
        moved.close()


def _copy(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)


def _edit_manifest(root: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    raw = json.loads((root / mf.MANIFEST).read_text())
    edit(raw)
    (root / mf.MANIFEST).write_text(json.dumps(raw))
