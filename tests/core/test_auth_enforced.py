"""Roles are enforced in core, not by hiding buttons: the use cases called directly on a real Qdrant Edge
store refuse a viewer (delete, ingest, relabel, tag, undo, collections, views, migrate, analyse) and write
nothing; an editor may ingest, tag and relabel but not delete; an admin may delete; a viewer still reads.
The CLI acts as EMBEDSCOPE_ACTOR_NAME / EMBEDSCOPE_ACTOR_ROLE."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core import collections, views
from core.auth import Actor, PermissionDeniedError
from core.config import Settings
from core.curation import labels, tags
from core.curation.history import read_history
from core.datasets import from_image_folder
from core.embedders.pixels import PixelEmbedder
from core.pipeline import delete
from core.pipeline.analyse import run_analysis
from core.pipeline.ingest import ingest_items
from core.pipeline.ingest_job import VectorSource, run_ingest
from core.pipeline.ingest_vectors import ingest_vectors, update_payloads
from core.pipeline.map_doc import MAP_KIND
from core.pipeline.maps import get_map
from core.search import by_examples, by_vector
from core.store import EdgeStore
from core.store.base import VectorStore
from core.store.migrate import migrate
from core.types import Item, SpaceInfo
from tests.actors import ADMIN, EDITOR, VIEWER
from tests.core.conftest import seed_clusters
from tests.core.test_cli import run_cli

P, S = "proj", "own"
DOC_KINDS = ("collection", "history", "view", MAP_KIND, "analysis")


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[VectorStore, list[str]]]:
    """An on-disk Edge store with 120 labelled points, one collection and one history entry (by an admin)."""
    store = EdgeStore(tmp_path / "edge", lock_timeout_s=10.0)
    ids, _, _ = seed_clusters(store, P, S)
    collections.save(store, P, "kept", ids[:5], actor=ADMIN, space=S)
    tags.add_tags(store, P, ids[:3], ["seen"], actor=ADMIN)
    try:
        yield store, ids
    finally:
        store.close()


def _state(store: VectorStore) -> dict[str, Any]:
    """Everything a write could change: revisions, counts, payloads, documents."""
    payloads = store.payloads(P, S).sort_index()
    return {"revisions": (store.revision(P), store.revision(P, S)), "projects": store.list_projects(),
            "spaces": [s.name for s in store.list_spaces(P)], "count": store.count(P, S),
            "payloads": payloads.astype(str).to_dict(),
            "documents": {kind: store.list_documents(P, kind) for kind in DOC_KINDS}}


def _images(folder: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    (folder / "a").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(folder / "a" / f"{i}.png")
    return folder


def _writes(store: VectorStore, ids: list[str], settings: Settings, actor: Actor) -> dict[str, Callable[[], Any]]:
    """Every writing use case, as `actor`, on the seeded store (the ingests bring new, valid data)."""
    vectors = np.eye(3, 16, dtype=np.float32)
    fresh = [Item(key=f"new-{i}", label="c9") for i in range(3)]
    images = from_image_folder(_images(settings.data_roots[0] / "imgs"), settings)
    return {
        "delete dataset": lambda: delete.delete_dataset(store, P, "train", actor=actor),
        "delete space": lambda: delete.delete_space(store, P, S, actor=actor),
        "delete project": lambda: delete.delete_project(store, P, actor=actor),
        "ingest items": lambda: ingest_items(store, P, "imgs", images, PixelEmbedder(), actor=actor,
                                             settings=settings),
        "ingest own vectors": lambda: ingest_vectors(store, P, "more", SpaceInfo(S, 16, "vector"), fresh, vectors,
                                                     actor=actor),
        "run_ingest": lambda: run_ingest(store, P, "more", fresh, VectorSource(S, vectors, None, "v.npy"),
                                         actor=actor, settings=settings),
        "update payloads": lambda: update_payloads(store, P, "train", [Item(key="item-0001", label="zz")],
                                                   actor=actor),
        "relabel": lambda: labels.set_labels(store, P, ids[:2], ["x", "y"], actor=actor, why="manual"),
        "add tags": lambda: tags.add_tags(store, P, ids[:2], ["bad"], actor=actor),
        "remove tags": lambda: tags.remove_tags(store, P, ids[:3], ["seen"], actor=actor),
        "mark reviewed": lambda: tags.set_reviewed(store, P, ids[:2], True, actor=actor),
        "undo": lambda: labels.undo(store, P, actor=actor),
        "save collection": lambda: collections.save(store, P, "mine", ids[:4], actor=actor, space=S),
        "rename collection": lambda: collections.rename(store, P, "kept", "renamed", actor=actor),
        "delete collection": lambda: collections.delete(store, P, "kept", actor=actor),
        "save view": lambda: views.save_view(store, P, "v", views.View(project=P), actor=actor),
        "migrate": lambda: migrate(store, actor=actor),
        "analyse": lambda: run_analysis(store, P, S, actor=actor),
    }


def test_a_viewer_is_refused_by_every_write_and_nothing_is_written(
        edge: tuple[VectorStore, list[str]], settings: Settings) -> None:
    store, ids = edge
    before = _state(store)
    for what, call in _writes(store, ids, settings, VIEWER).items():
        with pytest.raises(PermissionDeniedError, match=r"^test-viewer is a viewer: .* needs the (editor|admin) role"):
            call()
        assert _state(store) == before, f"{what}: a refused call wrote something"
    assert read_history(store, P)[0].who == "test-admin"


def test_a_provider_signed_in_viewer_is_refused_delete_ingest_and_relabel(
        edge: tuple[VectorStore, list[str]], settings: Settings) -> None:
    """The path a signed-in user takes: the provider's claims (as the sign-in tests' provider issues them)
    -> the role rules of the settings -> an Actor that core refuses; nothing written."""
    from core.auth import Role, actor_for_claims

    store, ids = edge
    settings = settings.model_copy(update={"role_viewers": ("ml-viewers",), "role_editors": ("ml-editors",),
                                           "default_role": "none"})
    claims = {"sub": "alice", "email": "alice@example.com", "email_verified": True, "groups": ["ml-viewers"]}
    alice = actor_for_claims(claims, settings)
    assert alice is not None and alice.role is Role.VIEWER and alice.name == "alice@example.com"
    assert actor_for_claims({**claims, "groups": ["elsewhere"]}, settings) is None  # no rule, no default: no access
    before = _state(store)
    writes = _writes(store, ids, settings, alice)
    for what in ("delete dataset", "ingest items", "relabel"):
        with pytest.raises(PermissionDeniedError, match=r"^alice@example.com is a viewer"):
            writes[what]()
        assert _state(store) == before, what


def test_a_viewer_can_still_read_search_and_map(edge: tuple[VectorStore, list[str]]) -> None:
    store, ids = edge
    before = _state(store)
    assert store.count(P, S) == 120
    hits = by_examples(store, P, S, ids[:1], limit=5)
    assert len(hits) == 5 and ids[0] not in {h.id for h in hits}
    assert by_vector(store, P, S, np.ones(16, dtype=np.float32), limit=3)
    mapped = get_map(store, P, S, None, actor=VIEWER, method="pca")  # explored: computed, not persisted
    assert len(mapped) == 120 and mapped.coords.shape == (120, 2)
    assert _state(store) == before
    get_map(store, P, S, None, actor=EDITOR, method="pca")  # an editor's map is saved
    assert len(store.list_documents(P, MAP_KIND)) == 1


def test_an_editor_ingests_tags_and_relabels_but_may_not_delete(
        edge: tuple[VectorStore, list[str]], settings: Settings) -> None:
    store, ids = edge
    writes = _writes(store, ids, settings, EDITOR)
    for what in ("ingest own vectors", "ingest items", "add tags", "relabel", "save collection", "save view"):
        writes[what]()
    assert store.count(P, S) == 123 and store.count(P, "pixels") == 4
    assert [e.who for e in read_history(store, P)[:2]] == ["test-editor", "test-editor"]
    writes["undo"]()  # an editor may undo an editor's relabel
    before = _state(store)
    for what in ("delete dataset", "delete space", "delete project", "migrate"):
        with pytest.raises(PermissionDeniedError, match="test-editor is an editor: .* needs the admin role"):
            writes[what]()
    assert _state(store) == before


def test_an_admin_may_delete(edge: tuple[VectorStore, list[str]], settings: Settings) -> None:
    store, ids = edge
    report = _writes(store, ids, settings, ADMIN)["delete dataset"]()
    assert report.points == 120 and store.count(P, S) == 0
    assert report.collections_deleted == ["kept"]


def test_the_cli_acts_as_the_configured_identity(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import load_settings
    from core.store import open_store

    store = open_store(load_settings())  # the CLI's store (EMBEDSCOPE_DATA_DIR of this test)
    try:
        seed_clusters(store, P, S)
    finally:
        store.close()
    monkeypatch.setenv("EMBEDSCOPE_ACTOR_NAME", "ci-bot")
    monkeypatch.setenv("EMBEDSCOPE_ACTOR_ROLE", "viewer")
    code, out, err = run_cli(capsys, "delete", "--project", P, "--dataset", "train", "--yes")
    assert code == 1 and not out
    assert "ci-bot is a viewer: deleting dataset 'train' of project 'proj'" in err and "admin role" in err
    code, _, err = run_cli(capsys, "tag", "add", "--project", P, "--filter", "label=c1", "bad")
    assert code == 1 and "ci-bot is a viewer" in err and "editor role" in err
    monkeypatch.setenv("EMBEDSCOPE_ACTOR_ROLE", "admin")
    code, out, _ = run_cli(capsys, "delete", "--project", P, "--dataset", "train", "--yes")
    assert code == 0 and "120 points removed" in out
