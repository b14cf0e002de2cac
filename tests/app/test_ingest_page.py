"""The Ingest page through AppTest: renders, ingests a data-root folder / an uploaded zip / own
vectors with real tiny models into a real embedded store, shows rejects, refuses foreign folders."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import Settings, load_settings
from tests.app.conftest import Seeded, _clear_caches, run_page
from ui.text import md

PAGE = "pages/1_Ingest.py"


def _images(root: Path, per_class: int = 3) -> list[Path]:
    paths = []
    for label, color in (("cat", "orange"), ("dog", "brown")):
        for i in range(per_class):
            path = root / label / f"{label}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40 + i, 40), color).save(path)
            paths.append(path)
    return paths


def _stored(settings: Settings, project: str) -> dict[str, dict[str, int]]:
    """{dataset: {space: count}} read back through a fresh store (the page's one is closed)."""
    from core.store import open_store

    _clear_caches()
    store = open_store(settings)
    try:
        return {d.name: dict(d.counts) for d in store.list_datasets(project)}
    finally:
        store.close()


@pytest.fixture
def roots(app_env: Settings, tmp_path: Path, tiny_vit_dir: Path,  # noqa: F811
          monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A `datasets/` data root plus the tiny model's folder as data roots."""
    (tmp_path / "datasets").mkdir()
    monkeypatch.setenv("EMBEDSCOPE_DATA_ROOTS", f"{tmp_path / 'datasets'},{tiny_vit_dir.parent}")
    return load_settings()


def _fill(at, project: str, dataset: str, model_dir: Path):
    at.text_input(key="ing.project").set_value(project)
    at.text_input(key="ing.dataset").set_value(dataset)
    at.radio(key="ing.model_kind").set_value("local").run()
    at.text_input(key="ing.local_model").set_value(str(model_dir))
    return at


def test_renders_on_an_empty_store(app_env: Settings) -> None:
    at = run_page(PAGE).run()
    assert not at.exception
    assert at.title[0].value.endswith("Ingest a dataset")
    assert at.radio(key="ing.source").value == "upload"
    assert at.text_input(key="ing.project").value == "" and at.text_input(key="ing.dataset").value == ""
    assert "The store is empty" in at.sidebar.info[0].value


def test_renders_on_a_seeded_store(seeded_store: Seeded) -> None:
    at = run_page(PAGE).run()
    assert not at.exception
    # The names start empty (never the sidebar's project and "train": an upload could land in an
    # existing training set unnoticed); the help names the sidebar's project.
    assert at.text_input(key="ing.project").value == "" and at.text_input(key="ing.dataset").value == ""
    assert seeded_store.project in at.text_input(key="ing.project").help
    assert at.sidebar.selectbox(key="_w.project").value == seeded_store.project


def test_ingest_without_names_asks_for_them_and_stores_nothing(roots: Settings, tmp_path: Path,
                                                               tiny_vit_dir: Path) -> None:  # noqa: F811
    _images(tmp_path / "datasets" / "pets")
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value("pets")
    _fill(at, "", "", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception
    assert any("Name the project and the dataset" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="ing.project").set_value("pets")
    at.button(key="ing.run").click().run()
    assert any("Name the dataset" in e.value for e in at.error), [e.value for e in at.error]
    assert _stored(roots, "pets") == {}


def test_failed_ingest_says_so_in_its_status_box(roots: Settings, tiny_vit_dir: Path) -> None:  # noqa: F811
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value("no-such-folder")
    _fill(at, "pets", "train", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception
    assert at.error  # the full message
    box = at.status[0]
    assert box.state == "error"
    assert "failed" in box.label and "Ingesting" not in box.label
    assert md("no-such-folder") in box.label, box.label  # with the error, not just "failed"


def test_folder_ingest_stores_points_and_shows_rejects(roots: Settings, tmp_path: Path,
                                                       tiny_vit_dir: Path) -> None:  # noqa: F811
    good = _images(tmp_path / "datasets" / "pets")
    (tmp_path / "datasets" / "pets" / "dog" / "broken.png").write_bytes(b"not an image")
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value("pets")
    _fill(at, "pets", "train", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stored"] == str(len(good)) and metrics["Rejected"] == "1"
    rejects = at.dataframe[0].value
    assert list(rejects["key"].str.contains("broken")) == [True]
    assert any("partial" in w.value for w in at.warning)
    # The sidebar now points at the new project and dataset.
    assert at.sidebar.selectbox(key="_w.project").value == "pets"
    counts = _stored(roots, "pets")
    assert list(counts) == ["train"] and list(counts["train"].values()) == [len(good)]


def test_re_ingest_skips_what_is_stored(roots: Settings, tmp_path: Path,
                                        tiny_vit_dir: Path) -> None:  # noqa: F811
    good = _images(tmp_path / "datasets" / "pets", per_class=2)
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value(str(tmp_path / "datasets" / "pets"))
    _fill(at, "pets", "train", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    at.button(key="ing.run").click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stored"] == "0" and metrics["Already there (skipped)"] == str(len(good))
    assert list(_stored(roots, "pets")["train"].values()) == [len(good)]


@pytest.mark.parametrize("folder", ["/etc", "../../..", "nope/../../../etc"])
def test_folder_outside_the_roots_is_refused(roots: Settings, folder: str,
                                             tiny_vit_dir: Path) -> None:  # noqa: F811
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value(folder)
    _fill(at, "pets", "train", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception
    assert any("outside the data roots" in e.value for e in at.error)
    assert _stored(roots, "pets") == {}


def test_model_directory_outside_the_roots_is_refused(app_env: Settings, tmp_path: Path,
                                                      tiny_vit_dir: Path) -> None:  # noqa: F811
    _images(app_env.uploads_dir / "up")  # under uploads/, always allowed
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value(str(app_env.uploads_dir / "up"))
    _fill(at, "pets", "train", tiny_vit_dir).run()  # tiny_vit_dir is not a data root here
    at.button(key="ing.run").click().run()
    assert not at.exception
    assert any("outside the data roots" in e.value for e in at.error)


def test_hub_field_with_a_folder_outside_the_roots_is_refused(app_env: Settings,
                                                              tiny_vit_dir: Path) -> None:  # noqa: F811
    _images(app_env.uploads_dir / "up")
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value(str(app_env.uploads_dir / "up"))
    at.text_input(key="ing.project").set_value("pets")
    at.text_input(key="ing.dataset").set_value("train")
    at.radio(key="ing.model_kind").set_value("hub").run()
    at.text_input(key="ing.hub").set_value(str(tiny_vit_dir))  # a path typed as a hub name
    at.button(key="ing.run").click().run()
    assert not at.exception
    assert any("outside the data roots" in e.value for e in at.error)
    assert _stored(app_env, "pets") == {}


def test_page_says_which_models_work_offline(app_env: Settings) -> None:
    from core.embedders import available_offline_models

    at = run_page(PAGE).run()
    note = next(c.value for c in at.caption if c.value.startswith("Without internet"))
    assert "`embedscope models`" in note and "local model folder" in note
    for name in available_offline_models():
        assert f"`{name}`" in note


def _zip_of(paths: list[Path], base: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in paths:
            zf.write(path, path.relative_to(base).as_posix())
    return buffer.getvalue()


def test_zip_upload_is_unpacked_under_uploads_and_ingested(roots: Settings, tmp_path: Path,
                                                           tiny_vit_dir: Path) -> None:  # noqa: F811
    paths = _images(tmp_path / "src")
    at = run_page(PAGE, timeout=120).run()
    at.file_uploader(key="ing.images").set_value(
        ("pets.zip", _zip_of(paths, tmp_path / "src"), "application/zip"))
    _fill(at, "pets", "uploaded", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Stored"] == str(len(paths))
    unpacked = sorted(p.relative_to(roots.uploads_dir / "uploaded").as_posix()
                      for p in (roots.uploads_dir / "uploaded").rglob("*.png"))
    assert unpacked == sorted(p.relative_to(tmp_path / "src").as_posix() for p in paths)


def test_unsafe_zip_is_refused_by_the_page(roots: Settings, tmp_path: Path,
                                           tiny_vit_dir: Path) -> None:  # noqa: F811
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../../escape.png", b"x")
    at = run_page(PAGE, timeout=120).run()
    at.file_uploader(key="ing.images").set_value(("bad.zip", buffer.getvalue(), "application/zip"))
    _fill(at, "pets", "bad", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception
    assert any(md("escape.png") in e.value for e in at.error)  # shown as text (ui.text.md)
    assert not list(tmp_path.rglob("escape.png"))


def test_own_embeddings_npy_with_ids(app_env: Settings) -> None:
    keys = [f"item{i}" for i in range(8)]
    vectors = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    npy = io.BytesIO()
    np.save(npy, vectors)
    at = run_page(PAGE, timeout=120).run()
    at.text_input(key="ing.project").set_value("own")
    at.text_input(key="ing.dataset").set_value("vecs")
    at.radio(key="ing.model_kind").set_value("own").run()
    at.file_uploader(key="ing.vectors").set_value(("v.npy", npy.getvalue(), "application/octet-stream"))
    at.file_uploader(key="ing.ids").set_value(("ids.txt", "\n".join(keys).encode(), "text/plain"))
    at.run()
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert _stored(app_env, "own") == {"vecs": {"own": 8}}


def test_pickled_npy_is_refused(app_env: Settings) -> None:
    npy = io.BytesIO()
    np.save(npy, np.array([{"a": 1}, {"b": 2}], dtype=object), allow_pickle=True)
    at = run_page(PAGE, timeout=120).run()
    at.text_input(key="ing.project").set_value("myproject")
    at.text_input(key="ing.dataset").set_value("train")
    at.radio(key="ing.model_kind").set_value("own").run()
    at.file_uploader(key="ing.vectors").set_value(("v.npy", npy.getvalue(), "application/octet-stream"))
    at.file_uploader(key="ing.ids").set_value(("ids.txt", b"a\nb", "text/plain"))
    at.run()
    at.button(key="ing.run").click().run()
    assert not at.exception
    assert at.error
    assert _stored(app_env, "myproject") == {}


def test_manifest_paths_resolve_against_the_named_folder(roots: Settings, tmp_path: Path,
                                                         tiny_vit_dir: Path) -> None:  # noqa: F811
    paths = _images(tmp_path / "datasets" / "pets", per_class=2)
    rows = ["path,label,split,camera"] + [
        f"{p.relative_to(tmp_path / 'datasets' / 'pets').as_posix()},{p.parent.name}-m,val,c{i}"
        for i, p in enumerate(paths)] + ["cat/missing.png,cat-m,val,c9"]
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("manifest").run()
    at.file_uploader(key="ing.manifest").set_value(
        ("pets.csv", "\n".join(rows).encode(), "text/csv"))
    at.text_input(key="ing.manifest_folder").set_value("pets")
    _fill(at, "pets", "val", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stored"] == str(len(paths)) and metrics["Rejected"] == "1"
    assert "missing" in at.dataframe[0].value["key"].iloc[0]
    from core.store import open_store

    counts = _stored(roots, "pets")  # closes the page's store
    store = open_store(roots)
    try:
        space = store.list_spaces("pets")[0].name
        payloads = store.payloads("pets", space)
    finally:
        store.close()
    assert list(counts) == ["val"]
    assert set(payloads["label"]) == {"cat-m", "dog-m"} and set(payloads["split"]) == {"val"}
    assert set(payloads["meta.camera"]) == {f"c{i}" for i in range(len(paths))}


def test_dashboard_ingest_builds_the_search_index_like_the_cli(roots: Settings, tmp_path: Path,
                                                               tiny_vit_dir: Path,  # noqa: F811
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from core.pipeline import indexing
    from core.store.edge import EdgeStore

    monkeypatch.setattr(indexing, "INDEX_THRESHOLD", 4)  # the CLI's rule (20k), on 6 images
    built: list[tuple[str, str]] = []
    build_index = EdgeStore.build_index
    monkeypatch.setattr(EdgeStore, "build_index", lambda self, project, space:
                        built.append((project, space)) or build_index(self, project, space))
    good = _images(tmp_path / "datasets" / "pets")
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value("pets")
    _fill(at, "pets", "train", tiny_vit_dir).run()
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Stored"] == str(len(good))
    # The index builds in the background (a child process on a copy): the page returned first.
    builds = [b for b in list(indexing._BUILDS.values()) if b.project == "pets"]
    assert len(builds) == 1 and builds[0].done.wait(120) and builds[0].error is None
    assert built == [("pets", at.session_state["es.space"])]
    at.run()
    assert any("Search index built" in m.value for m in at.success)


def test_layers_field_ingests_one_space_per_layer_in_one_run(roots: Settings, tmp_path: Path,
                                                             tiny_vit_dir: Path) -> None:  # noqa: F811
    good = _images(tmp_path / "datasets" / "pets", per_class=2)
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value("pets")
    _fill(at, "pets", "train", tiny_vit_dir)
    at.text_input(key="ing.layers").set_value("hidden:1, pooled").run()
    assert not at.error, [e.value for e in at.error]  # a good list: no message under the field
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    counts = _stored(roots, "pets")["train"]
    assert len(counts) == 2 and set(counts.values()) == {len(good)}  # one space per layer, every item
    spaces = next(m.value for m in at.markdown if m.value.startswith("**Spaces made**"))
    assert all(md(space) in spaces for space in counts) and spaces.count(f"{len(good)} stored") == 2
    assert at.session_state["es.space"] in counts  # the sidebar moves to the first layer's space


def test_a_bad_layer_is_named_and_nothing_is_ingested(roots: Settings, tmp_path: Path,
                                                      tiny_vit_dir: Path) -> None:  # noqa: F811
    _images(tmp_path / "datasets" / "pets", per_class=1)
    at = run_page(PAGE, timeout=120).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value("pets")
    _fill(at, "pets", "train", tiny_vit_dir)
    at.text_input(key="ing.layers").set_value("hidden:1, hiddn:2").run()
    bad = md("'hiddn:2'")  # the bad part, quoted, as the page escapes it
    assert any(bad in e.value and "Layers" in e.value for e in at.error), [e.value for e in at.error]
    at.button(key="ing.run").click().run()
    assert not at.exception, at.exception
    assert sum(bad in e.value for e in at.error) >= 2, [e.value for e in at.error]  # the field's and the run's
    assert _stored(roots, "pets") == {}
