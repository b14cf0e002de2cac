"""No input aborts an ingest or shows a traceback: odd file names, broken files, odd tables, odd vectors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from core.config import Settings, load_settings
from core.datasets import from_image_folder, from_manifest, load_image, load_own_embeddings, open_image
from core.datasets.images import file_uri, local_path
from core.datasets.tables import read_table
from core.errors import BadInputError, StoreUnavailableError
from core.ids import point_id, readable_key
from core.pipeline.ingest import ingest_items
from core.pipeline.ingest_vectors import ingest_vectors
from core.search.vectors import image_query_vector
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN
from tests.core.test_datasets import (
    class_image,
    make_image_folder,
    write_png_header,
    write_random_png,
    write_truncated_jpeg,
)
from tests.core.test_ingest import CountingEmbedder

REPO = Path(__file__).resolve().parents[2]
ODD = os.fsdecode(b"caf\xe9.png")  # a name that is not UTF-8: os.walk gives it with a lone surrogate
# Names any Linux file system takes: a newline, 255 bytes, ':' and '/'-like unicode.
STRANGE = ["new\nline.png", "a" * 251 + ".png", "a:b.png", "x\u2215y.png", "x\uff0fy.png", "100%.png"]


def _save(folder: Path, name: str, index: int = 0) -> Path:
    path = folder / name  # a str with lone surrogates stands for the undecodable bytes
    with open(os.fsencode(path), "wb") as handle:
        class_image("circle", index).save(handle, format="PNG")
    return path


def _utf8(text: str) -> bool:
    return readable_key(text) == text


# -- keys and ids -------------------------------------------------------------------------------
def test_point_ids_never_raise_and_keys_are_readable() -> None:
    assert readable_key(ODD) == "caf%E9.png"
    assert readable_key("plain/é.png") == "plain/é.png"  # valid names keep their key (stable ids)
    assert readable_key("\ud800x") == "%ED%A0%80x"  # a lone surrogate from a JSON escape
    ids = {point_id("p", "d", key) for key in (ODD, "\ud800", "caf%E9.png", "new\nline")}
    assert len(ids) == 4 and point_id("p", "d", ODD) == point_id("p", "d", ODD)


# Any name a Linux file system takes: 1..255 bytes, no '/' or NUL, not "." or "..".
FILE_NAMES = st.binary(min_size=1, max_size=255).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b".."))


@given(FILE_NAMES)
def test_any_file_name_gets_a_readable_key_a_stable_id_and_a_uri_back_to_it(name: bytes) -> None:
    decoded = os.fsdecode(name)  # what os.walk gives
    key = readable_key(decoded)
    key.encode("utf-8")  # valid UTF-8: storable in a JSON payload
    assert point_id("p", "d", decoded) == point_id("p", "d", decoded)
    assert point_id("p", "d", key)  # never raises
    if _utf8(decoded):
        assert key == decoded  # ordinary names keep their key, so existing ids stay stable
    uri = file_uri(Path("/data") / decoded)
    assert _utf8(uri) and os.fsencode(local_path(uri)) == b"/data/" + name


def test_odd_file_names_get_readable_keys_and_uris_that_open(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "odd"
    (folder / "cat").mkdir(parents=True)
    for i, name in enumerate([ODD, *STRANGE]):
        _save(folder / "cat", name, i)
    items = from_image_folder(folder, settings)
    keys = {item.key for item in items}
    assert keys == {f"cat/{readable_key(n)}" for n in [ODD, *STRANGE]}
    for item in items:
        assert item.uri is not None and _utf8(item.key) and _utf8(item.uri)
        assert json.loads(json.dumps(item.payload("d"), ensure_ascii=False))["key"] == item.key
        assert load_image(item.uri, settings).size == (40, 40)
    odd = next(item for item in items if item.key == "cat/caf%E9.png")
    assert odd.uri == file_uri(folder.resolve() / "cat" / ODD) and local_path(odd.uri).name == ODD
    from ui import images  # the dashboard's thumbnails open the same uri (no streamlit needed here)

    assert images.thumbnail(odd.uri, 16, settings) is not None


# -- ingest never aborts ------------------------------------------------------------------------
def test_odd_names_are_stored_and_bad_files_are_single_named_rejects(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "odd"
    folder.mkdir(parents=True)
    for i, name in enumerate([ODD, *STRANGE]):
        _save(folder, name, i)
    write_truncated_jpeg(folder / "cut\nhere.jpg")
    report = ingest_items(store, "p", "d", from_image_folder(folder, settings), clip, settings=settings, actor=ADMIN)
    assert (report.stored, [r.key for r in report.rejects]) == (7, ["cut\nhere.jpg"])
    stored = set(store.payloads("p", clip.name, fields=["key"])["key"])
    assert {"caf%E9.png", "new\nline.png", "x\u2215y.png"} <= stored
    assert report.rejects_path is not None
    assert list(pd.read_csv(report.rejects_path)["key"]) == ["cut\nhere.jpg"]  # the newline survives


def test_an_unexpected_error_on_one_item_is_a_reject_naming_it(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from core.pipeline import prepare

    make_image_folder(tmp_path / "data" / "shapes", {"circle": 3})
    real = prepare.load_image

    def flaky(uri: str, settings: Settings) -> Image.Image:
        if uri.endswith("circle_001.png"):
            raise KeyError("a plugin bug")
        return real(uri, settings)

    monkeypatch.setattr(prepare, "load_image", flaky)
    report = ingest_items(store, "p", "d", from_image_folder(tmp_path / "data" / "shapes", settings), clip,
                          settings=settings, actor=ADMIN)
    (reject,) = report.rejects
    assert report.stored == 2 and reject.key == "circle/circle_001.png"
    assert "circle_001.png: unexpected KeyError" in reject.reason


def test_duplicate_keys_and_unstorable_text_are_rejects_not_aborts(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path) -> None:
    make_image_folder(tmp_path / "data" / "shapes", {"circle": 2})
    first, second = from_image_folder(tmp_path / "data" / "shapes", settings)
    items = [first, Item(first.key, second.uri), Item("bad-label", second.uri, label="\udce9")]
    report = ingest_items(store, "p", "d", items, clip, settings=settings, actor=ADMIN)
    reasons = {r.key: r.reason for r in report.rejects}
    assert report.stored == 1 and "duplicate key" in reasons[first.key]
    assert "label not valid Unicode" in reasons["bad-label"]


def test_a_run_that_stores_nothing_leaves_no_new_space(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data" / "junk"
    write_random_png(folder / "a.png")
    write_truncated_jpeg(folder / "b.jpg")
    report = ingest_items(store, "p", "d", from_image_folder(folder, settings), clip, settings=settings, actor=ADMIN)
    assert report.status == "failed" and len(report.rejects) == 2
    assert store.list_spaces("p") == []  # no empty space behind

    make_image_folder(folder, {"circle": 2})
    items = from_image_folder(folder, settings)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailableError("the disk is full")

    with monkeypatch.context() as patched:
        patched.setattr(store, "upsert", broken)
        with pytest.raises(StoreUnavailableError):
            ingest_items(store, "p", "d", items, clip, settings=settings, actor=ADMIN)
    assert store.list_spaces("p") == []  # created at the first write, dropped when it failed

    store.ensure_space("p", clip.space_info())  # a space that existed before the run is kept
    junk = [item for item in items if item.key in ("a.png", "b.jpg")]
    assert ingest_items(store, "p", "d", junk, clip, settings=settings, actor=ADMIN).status == "failed"
    assert [s.name for s in store.list_spaces("p")] == [clip.name]


def test_dataset_names_are_validated_in_core(store: VectorStore, settings: Settings,
                                             clip: CountingEmbedder) -> None:
    with pytest.raises(BadInputError, match="dataset 'a/b' may contain only"):
        ingest_items(store, "p", "a/b", [Item("k", "/nowhere.png")], clip, settings=settings, actor=ADMIN)
    with pytest.raises(BadInputError, match="dataset"):
        ingest_vectors(store, "p", "", SpaceInfo("own", 2, "vector"), [Item("k")], np.ones((1, 2)), actor=ADMIN)


# -- paths no file system can hold, URLs, file:// URIs -------------------------------------------
def test_impossible_paths_and_urls_are_bad_input(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(BadInputError, match="NUL byte"):
        load_image(f"{root}/a\x00b.png", settings)
    with pytest.raises(BadInputError, match="300 bytes long"):
        load_image(f"{root}/{'x' * 296}.png", settings)
    with pytest.raises(BadInputError, match="not ftp:// URLs"):
        load_image("ftp://example.com/a.png", settings)
    Image.new("RGB", (8, 8)).save(root / "a b%.png")
    assert load_image(f"file://{root}/a%20b%25.png", settings).size == (8, 8)  # percent-decoded


def test_manifest_rows_with_bad_paths_are_rejected_one_by_one(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_image_folder(root, {"circle": 2})
    Image.new("RGB", (16, 16), "blue").save(root / "with space.png")
    rows = [{"id": "ok", "path": "circle/circle_000.png"},
            {"id": "nul", "path": "circle/circle\x00_001.png"},
            {"id": "long", "path": "x" * 300 + ".png"},
            {"id": "ftp", "path": "ftp://example.com/a.png"},
            {"id": "uri", "path": f"file://{root}/with%20space.png"},
            {"id": "colon", "path": "cat:1.png"}]
    manifest = root / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    report = ingest_items(store, "p", "d", from_manifest(manifest, settings), clip, settings=settings, actor=ADMIN)
    reasons = {r.key: r.reason for r in report.rejects}
    assert report.stored == 2 and set(reasons) == {"nul", "long", "ftp", "colon"}
    assert "NUL byte" in reasons["nul"] and "304 bytes long" in reasons["long"]
    assert "ftp://" in reasons["ftp"] and "file not found" in reasons["colon"]  # a local name, not a URL


def test_manifest_paths_all_outside_the_roots_fail_up_front(settings: Settings, tmp_path: Path) -> None:
    from core.datasets import require_reachable

    make_image_folder(tmp_path / "elsewhere", {"circle": 2})
    manifest = tmp_path / "data" / "m.csv"
    pd.DataFrame({"path": [str(tmp_path / "elsewhere" / "circle" / f"circle_00{i}.png") for i in (0, 1)]}
                 ).to_csv(manifest, index=False)
    items = from_manifest(manifest, settings)
    with pytest.raises(BadInputError, match="--data-root.*EMBEDSCOPE_DATA_ROOTS"):
        require_reachable(items, settings, manifest)
    require_reachable(items + [Item("in", str(tmp_path / "data" / "x.png"))], settings, manifest)


# -- tables and vectors -------------------------------------------------------------------------
def test_non_utf8_tables_fail_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes("path,label\na.png,cat\nb.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(BadInputError, match=r"latin\.csv: line 3 is not UTF-8 \(byte 0xe9 at column 10\)"):
        read_table(tmp_path / "latin.csv")
    (tmp_path / "latin.jsonl").write_bytes('{"a": 1}\n{"a": "\xe9"}\n'.encode("latin-1"))
    with pytest.raises(BadInputError, match=r"latin\.jsonl: line 2 is not UTF-8"):
        read_table(tmp_path / "latin.jsonl")
    (tmp_path / "bom.csv").write_bytes("\ufeffpath,label\na.png,café\n".encode())
    assert read_table(tmp_path / "bom.csv").frame.to_dict("records") == [{"path": "a.png", "label": "café"}]
    (tmp_path / "ids.txt").write_bytes(b"a\n\xff\n")
    np.save(tmp_path / "v.npy", np.ones((2, 3), np.float32))
    with pytest.raises(BadInputError, match=r"ids\.txt: line 2 is not UTF-8"):
        load_own_embeddings(tmp_path / "v.npy", tmp_path / "ids.txt")


def test_empty_and_truncated_npy_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("a\nb\n")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "full.npy", np.ones((2, 64), np.float32))
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "head.npy").write_bytes(data[:40])
    (tmp_path / "cut.npy").write_bytes(data[:200])
    for name in ("empty.npy", "head.npy", "cut.npy"):
        with pytest.raises(BadInputError, match=name.replace(".", r"\.")):
            load_own_embeddings(tmp_path / name, tmp_path / "ids.txt")


def test_huge_vectors_are_normalised_and_non_finite_ones_rejected_by_name(store: VectorStore) -> None:
    vectors = np.array([[1e38, 1e38, 0.0], [3.0, 4.0, 0.0], [np.inf, 0.0, 0.0], [1e-30, 0.0, 0.0]],
                       dtype=np.float32)
    items = [Item(f"k{i}") for i in range(4)]
    report = ingest_vectors(store, "v", "d", SpaceInfo("own", 3, "vector"), items, vectors, actor=ADMIN)
    reasons = {r.key: r.reason for r in report.rejects}
    assert report.stored == 2 and "non-finite norm" in reasons["k2"] and "too small" in reasons["k3"]
    _, stored = store.vectors("v", "own", [point_id("v", "d", "k0"), point_id("v", "d", "k1")])
    np.testing.assert_allclose(stored, [[2 ** -0.5, 2 ** -0.5, 0.0], [0.6, 0.8, 0.0]], atol=1e-6)


# -- the one image opener, for queries too --------------------------------------------------------
def _png_bytes(image: Image.Image, **save: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def test_query_images_open_like_ingested_ones(settings: Settings, tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (10, 6), (255, 0, 0, 0))  # fully transparent: white once composited
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90°": the upright image is 6 x 10
    data = _png_bytes(rgba, exif=exif)
    (tmp_path / "data" / "q.png").write_bytes(data)
    from_bytes = open_image(data, settings.max_image_pixels)
    from_file = load_image(tmp_path / "data" / "q.png", settings)
    assert from_bytes.mode == "RGB" and from_bytes.size == (6, 10) == from_file.size
    assert np.array_equal(np.asarray(from_bytes), np.asarray(from_file))
    assert np.asarray(from_bytes).min() == 255  # alpha composited on white, not black


def test_search_by_a_bad_image_is_a_message(store: VectorStore, clip: CountingEmbedder, tmp_path: Path) -> None:
    store.ensure_space("p", clip.space_info())
    bomb = write_png_header(tmp_path / "bomb.png", 20_000, 20_000).read_bytes()
    truncated = write_truncated_jpeg(tmp_path / "cut.jpg").read_bytes()
    for data, reason in ((bomb, "bomb"), (b"not an image", "not a readable image"),
                         (truncated, "corrupt or truncated")):
        with pytest.raises(BadInputError, match=f"The query image: .*{reason}"):
            image_query_vector(store, "p", clip.name, data, embedder=clip, max_pixels=10_000_000)
    vector = image_query_vector(store, "p", clip.name, _png_bytes(class_image("circle", 1)), embedder=clip)
    assert vector.shape == (clip.dim,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5


# -- the CLI: the acceptance case -----------------------------------------------------------
def _cli(tmp_path: Path, *argv: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "core", *map(str, argv)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_folder_with_an_odd_name_a_corrupt_file_and_good_images(
        tmp_path: Path, tiny_clip_dir: Path) -> None:  # noqa: F811
    folder = tmp_path / "photos"
    make_image_folder(folder, {"circle": 3, "square": 3})
    _save(folder / "circle", ODD, 9)
    write_truncated_jpeg(folder / "square" / "broken.jpg")
    argv = ["ingest", folder, "--project", "pets", "--dataset", "train", "--model", tiny_clip_dir,
            "--progress", "none"]

    first = _cli(tmp_path, *argv)
    assert first.returncode == 3, first.stderr
    assert "8 items, 7 stored, 0 already stored, 1 rejected (partial)" in first.stdout
    assert "rejected square/broken.jpg:" in first.stdout and "Traceback" not in first.stderr

    again = _cli(tmp_path, *argv)
    assert again.returncode == 3, again.stderr
    assert "8 items, 0 stored, 7 already stored, 1 rejected (partial)" in again.stdout
    from core.store import open_store

    store = open_store(load_settings())
    try:
        (space,) = store.list_spaces("pets")
        keys = store.payloads("pets", space.name, fields=["key"])["key"]
        assert len(keys) == 7 and keys.is_unique and "circle/caf%E9.png" in set(keys)
    finally:
        store.close()


def test_cli_manifest_outside_the_roots_fails_before_the_model_loads(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "elsewhere", {"circle": 2})
    (tmp_path / "job").mkdir()
    pd.DataFrame({"path": [str(p) for p in sorted((tmp_path / "elsewhere").rglob("*.png"))]}).to_csv(
        tmp_path / "job" / "m.csv", index=False)
    done = _cli(tmp_path, "ingest", "--manifest", tmp_path / "job" / "m.csv", "--project", "p",
                "--dataset", "d", "--model", tmp_path / "no-such-model")
    assert done.returncode == 1 and "no-such-model" not in done.stderr, done.stderr
    assert "--data-root" in done.stderr and "EMBEDSCOPE_DATA_ROOTS" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_own_vectors_with_a_manifest_of_ids_and_labels_only(tmp_path: Path) -> None:
    pd.DataFrame({"id": ["a", "b"], "label": ["cat", "dog"], "camera": ["x", "y"]}).to_csv(
        tmp_path / "labels.csv", index=False)
    np.save(tmp_path / "v.npy", np.eye(2, 4, dtype=np.float32))
    (tmp_path / "ids.txt").write_text("a\nb\n")
    done = _cli(tmp_path, "ingest", "--manifest", tmp_path / "labels.csv", "--embeddings", tmp_path / "v.npy",
                "--ids", tmp_path / "ids.txt", "--project", "p", "--dataset", "d", "--progress", "none")
    assert done.returncode == 0, done.stderr
    from core.store import open_store

    store = open_store(load_settings())
    try:
        frame = store.payloads("p", "own", fields=["key", "label", "meta"])
        assert dict(zip(frame["key"], frame["label"], strict=True)) == {"a": "cat", "b": "dog"}
    finally:
        store.close()
