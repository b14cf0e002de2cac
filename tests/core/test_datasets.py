"""Readers and image safety: image folders, manifests (CSV / Parquet / JSONL), own vectors, load_image."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from core.config import Settings, load_settings
from core.datasets import from_image_folder, from_manifest, load_image, load_own_embeddings, open_own_embeddings
from core.datasets import own_embeddings as own_module
from core.errors import BadInputError
from core.pipeline.prepare import prepared_batches
from core.pipeline.rejects import IngestReport, write_rejects
from core.types import Item, Reject

CLASSES = {"circle": (220, 40, 40), "square": (40, 200, 60), "noise": (40, 60, 220)}


# -- image factories (also used by test_ingest.py and test_cli.py) ----------------------------
def class_image(label: str, index: int, size: int = 40) -> Image.Image:
    """A small RGB image whose look depends on its class: a disc, a square, or coloured noise."""
    rng = np.random.default_rng(index * 7 + len(label))
    color = np.array(CLASSES.get(label, (128, 128, 128)), dtype=np.float64)
    pixels = np.full((size, size, 3), 255.0)
    yy, xx = np.mgrid[:size, :size]
    if label == "circle":
        mask = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    elif label == "square":
        mask = (abs(yy - size / 2) < size / 3) & (abs(xx - size / 2) < size / 3)
    else:
        mask = rng.random((size, size)) < 0.5
    pixels[mask] = color
    pixels += rng.normal(0, 8, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_image_folder(root: Path, per_class: dict[str, int]) -> list[str]:
    """Write per_class[label] PNGs under root/label/; return their keys ("label/label_007.png")."""
    keys = []
    for label, count in per_class.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            key = f"{label}/{label}_{i:03d}.png"
            class_image(label, i).save(root / key)
            keys.append(key)
    return keys


def write_truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in half: the header reads fine, decoding fails."""
    buffer = io.BytesIO()
    class_image("noise", 1, size=64).save(buffer, format="JPEG", quality=90)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def write_random_png(path: Path) -> Path:
    """Random bytes named .png."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(3).bytes(2048))
    return path


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header claims width x height pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root configured through EMBEDSCOPE_DATA_ROOTS."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("EMBEDSCOPE_DATA_ROOTS", str(folder))
    return folder


@pytest.fixture
def settings(root: Path) -> Settings:
    return load_settings()


# -- image folders ----------------------------------------------------------------------------
def test_image_folder_labels_keys_and_uris(root: Path, settings: Settings) -> None:
    keys = make_image_folder(root / "ds", {"circle": 2, "square": 1})
    class_image("noise", 0).save(root / "ds" / "loose.jpg")
    (root / "ds" / "circle" / "nested").mkdir()
    class_image("circle", 9).save(root / "ds" / "circle" / "nested" / "deep.PNG")
    (root / "ds" / "notes.txt").write_text("not an image")
    (root / "ds" / ".hidden").mkdir()
    class_image("circle", 3).save(root / "ds" / ".hidden" / "x.png")
    class_image("circle", 4).save(root / "ds" / ".dotfile.png")

    items = from_image_folder(root / "ds", settings)

    by_key = {item.key: item for item in items}
    assert sorted(by_key) == sorted(keys + ["loose.jpg", "circle/nested/deep.PNG"])
    assert [item.key for item in items] == sorted(by_key)
    assert by_key["loose.jpg"].label is None
    assert by_key["circle/nested/deep.PNG"].label == "circle"
    assert by_key["square/square_000.png"].label == "square"
    for item in items:
        assert item.uri is not None and Path(item.uri).is_absolute()
        assert Path(item.uri) == (root / "ds" / item.key).resolve()


def test_image_folder_errors(root: Path, settings: Settings, tmp_path: Path) -> None:
    (root / "empty").mkdir()
    (root / "empty" / "a.txt").write_text("x")
    with pytest.raises(BadInputError, match="no images found"):
        from_image_folder(root / "empty")
    with pytest.raises(BadInputError, match="not a folder"):
        from_image_folder(root / "missing")
    outside = tmp_path / "outside"
    make_image_folder(outside, {"circle": 1})
    with pytest.raises(BadInputError, match="outside the allowed data roots"):
        from_image_folder(outside, settings)
    assert len(from_image_folder(outside)) == 1  # no settings: no root check (library use)


# -- load_image -------------------------------------------------------------------------------
def test_load_image_converts_modes_to_rgb(root: Path, settings: Settings) -> None:
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    palette.info["transparency"] = 0
    palette.save(root / "pal.png", transparency=0)
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(root / "clear.png")
    Image.new("LA", (8, 8), (10, 255)).save(root / "la.png")
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(root / "deep.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(root / "cmyk.jpg")

    assert load_image(root / "pal.png", settings).getpixel((0, 0)) == (255, 255, 255)  # transparent
    assert load_image(root / "clear.png", settings).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(root / "la.png", settings).getpixel((0, 0)) == (10, 10, 10)
    assert load_image(root / "deep.png", settings).getpixel((0, 0)) == (255, 255, 255)
    red = load_image(root / "cmyk.jpg", settings).getpixel((0, 0))
    assert isinstance(red, tuple)
    assert red[0] > 200 and red[1] < 50 and red[2] < 50
    for name in ("pal.png", "clear.png", "la.png", "deep.png", "cmyk.jpg"):
        assert load_image(str(root / name), settings).mode == "RGB"


def test_load_image_applies_exif_orientation(root: Path, settings: Settings) -> None:
    image = Image.new("RGB", (30, 10), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    image.save(root / "turned.jpg", exif=exif.tobytes())
    assert load_image(root / "turned.jpg", settings).size == (10, 30)


def test_load_image_rejects_broken_files(root: Path, settings: Settings) -> None:
    with pytest.raises(BadInputError, match="truncated"):
        load_image(write_truncated_jpeg(root / "half.jpg"), settings)
    with pytest.raises(BadInputError, match="not a readable image"):
        load_image(write_random_png(root / "noise.png"), settings)
    with pytest.raises(BadInputError, match="file not found"):
        load_image(root / "gone.png", settings)
    with pytest.raises(BadInputError, match="only local image files"):
        load_image("https://example.com/cat.png", settings)
    (root / "folder.png").mkdir()
    with pytest.raises(BadInputError, match="not a file"):
        load_image(root / "folder.png", settings)


def test_decompression_bombs_are_refused_from_the_header(root: Path, settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Far over PIL's own hard limit: PIL refuses at open; we turn that into a reject reason.
    with pytest.raises(BadInputError, match="decompression") as huge:
        load_image(write_png_header(root / "huge.png", 50_000, 50_000), settings)
    assert "huge.png" in str(huge.value)
    # Over our limit (64 M by default) but under PIL's: refused before decoding any pixel.
    with pytest.raises(BadInputError, match="over the limit") as big:
        load_image(write_png_header(root / "big.png", 9_000, 9_000), settings)
    assert "81,000,000" in str(big.value) and "big.png" in str(big.value)
    # A real, small image over a configured low limit.
    class_image("circle", 0, size=32).save(root / "small.png")
    monkeypatch.setenv("EMBEDSCOPE_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(BadInputError, match="1,024 pixels is over the limit of 100"):
        load_image(root / "small.png", load_settings())


def test_load_image_only_reads_under_the_data_roots(root: Path, settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    class_image("circle", 0).save(outside / "x.png")
    with pytest.raises(BadInputError, match="outside the allowed data roots"):
        load_image(outside / "x.png", settings)
    with pytest.raises(BadInputError, match="outside the allowed data roots"):
        load_image(f"{root}/../secret/x.png", settings)  # traversal
    os.symlink(outside / "x.png", root / "link.png")
    with pytest.raises(BadInputError, match="outside the allowed data roots"):
        load_image(root / "link.png", settings)  # a symlink escaping the root
    class_image("circle", 0).save(root / "ok.png")
    assert load_image(f"file://{root}/ok.png", settings).size == (40, 40)
    # The uploads and demo folders are always allowed.
    settings.demo_dir.mkdir(parents=True)
    class_image("square", 0).save(settings.demo_dir / "d.png")
    assert load_image(settings.demo_dir / "d.png", settings).mode == "RGB"


# -- manifests --------------------------------------------------------------------------------
MANIFEST_ROWS: list[dict[str, Any]] = [
    {"path": "imgs/a.png", "label": "cat", "prediction": "cat", "confidence": 0.9, "split": "train",
     "camera": "north", "weight": 3},
    {"path": "imgs/b.png", "label": "dog", "prediction": "cat", "confidence": 0.4, "split": "test",
     "camera": "south", "weight": 5},
    {"path": "https://example.com/c.png", "label": None, "prediction": "dog", "confidence": None,
     "split": "train", "camera": "north", "weight": None},
]


def write_manifest(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """rows as .csv / .parquet / .jsonl, by path's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_manifest_roles_meta_and_paths(tmp_path: Path, suffix: str) -> None:
    manifest = write_manifest(tmp_path / "m" / f"manifest{suffix}", MANIFEST_ROWS)
    items = from_manifest(manifest)
    assert [i.key for i in items] == ["imgs/a.png", "imgs/b.png", "https://example.com/c.png"]
    a, b, c = items
    assert a.uri == str((tmp_path / "m" / "imgs" / "a.png").resolve())
    assert c.uri == "https://example.com/c.png"
    assert (a.label, a.prediction, a.confidence, a.split) == ("cat", "cat", 0.9, "train")
    assert (c.label, c.confidence) == (None, None)
    assert a.meta == {"camera": "north", "weight": 3}
    assert b.meta["weight"] == 5 and c.meta["weight"] is None
    json.dumps([i.payload("d") for i in items])  # JSON-safe
    other = from_manifest(manifest, base_dir=tmp_path / "elsewhere")
    assert other[0].uri == str((tmp_path / "elsewhere" / "imgs" / "a.png").resolve())


def test_manifest_columns_ids_and_text(tmp_path: Path) -> None:
    rows = [{"ID": 7, "sentence": "a red car", "cls": "car", "score": "0.5"},
            {"ID": 8, "sentence": "a blue ship", "cls": "ship", "score": ""}]
    manifest = write_manifest(tmp_path / "texts.csv", rows)
    items = from_manifest(manifest, label_column="cls", confidence_column="score")
    assert [(i.key, i.text, i.label, i.confidence, i.uri) for i in items] == [
        ("7", "a red car", "car", 0.5, None), ("8", "a blue ship", "ship", None, None)]
    assert items[0].meta == {}
    explicit = from_manifest(manifest, text_column="sentence", id_column="ID", label_column=None)
    assert explicit[0].label is None and explicit[0].meta == {"cls": "car", "score": 0.5}


def test_manifest_errors_name_file_row_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\na.png,cat\nb.png,dog,extra,more\n")
    with pytest.raises(BadInputError, match=r"bad\.csv.*line 3"):
        from_manifest(bad)
    good = write_manifest(tmp_path / "good.csv", MANIFEST_ROWS[:2])
    with pytest.raises(BadInputError, match=r"good\.csv: no column 'labels'.*columns are: path, label"):
        from_manifest(good, label_column="labels")
    with pytest.raises(BadInputError, match="no column 'file'"):
        from_manifest(good, path_column="file")
    conf = write_manifest(tmp_path / "conf.csv", [{"path": "a.png", "confidence": "0.3"},
                                                 {"path": "b.png", "confidence": "high"}])
    with pytest.raises(BadInputError, match=r"conf\.csv: line 3, column 'confidence': confidence 'high'"):
        from_manifest(conf)
    dup = write_manifest(tmp_path / "dup.csv", [{"id": 1, "path": "a.png"}, {"id": 2, "path": "b.png"},
                                               {"id": 1, "path": "c.png"}])
    with pytest.raises(BadInputError, match=r"dup\.csv: duplicate id '1' in line 2 and line 4"):
        from_manifest(dup)
    none = write_manifest(tmp_path / "none.csv", [{"name": "a", "label": "x"}])
    with pytest.raises(BadInputError, match="no image column.*no text column"):
        from_manifest(none)
    lines = tmp_path / "broken.jsonl"
    lines.write_text('{"path": "a.png"}\n\n{"path": oops}\n')
    with pytest.raises(BadInputError, match=r"broken\.jsonl: line 3 is not valid JSON"):
        from_manifest(lines)
    with pytest.raises(BadInputError, match="file not found"):
        from_manifest(tmp_path / "missing.csv")
    with pytest.raises(BadInputError, match="unsupported table format"):
        from_manifest(tmp_path / "m.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(BadInputError, match="empty"):
        from_manifest(tmp_path / "empty.csv")


# -- own embeddings ---------------------------------------------------------------------------
def test_own_embeddings_parquet_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((20, 12)).astype(np.float32)
    ids = [f"item-{i}" for i in range(20)]
    pq.write_table(pa.table({"id": ids, "embedding": list(vectors)}), tmp_path / "v.parquet")
    keys, loaded = load_own_embeddings(tmp_path / "v.parquet")
    assert keys == ids and loaded.dtype == np.float32 and np.array_equal(loaded, vectors)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 12)
    pq.write_table(pa.table({"key": list(range(20)), "features": fixed}), tmp_path / "f.parquet")
    keys, loaded = load_own_embeddings(tmp_path / "f.parquet", id_column="key")
    assert keys == [str(i) for i in range(20)] and np.array_equal(loaded, vectors)


def test_own_embeddings_npy_with_ids_files(tmp_path: Path) -> None:
    vectors = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float64)
    np.save(tmp_path / "v.npy", vectors)
    ids = ["a", "b", "c", "d", "e"]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n\n")
    pd.DataFrame({"id": ids, "other": range(5)}).to_csv(tmp_path / "ids.csv", index=False)
    pd.DataFrame({"name": ids}).to_parquet(tmp_path / "ids.parquet")
    for ids_file in ("ids.txt", "ids.csv", "ids.parquet"):
        keys, loaded = load_own_embeddings(tmp_path / "v.npy", tmp_path / ids_file)
        assert keys == ids and loaded.dtype == np.float32
        assert np.array_equal(loaded, vectors.astype(np.float32))


def test_own_embeddings_errors_name_the_file(tmp_path: Path) -> None:
    ragged = pa.table({"id": ["a", "b", "c"], "embedding": [[1.0, 2.0], [1.0, 2.0], [1.0]]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(BadInputError, match=r"ragged\.parquet: ragged vectors.*row 3 has 1 values, row 1 has 2"):
        load_own_embeddings(tmp_path / "ragged.parquet")
    pq.write_table(pa.table({"id": ["a"], "vec": [[1.0]]}), tmp_path / "named.parquet")
    with pytest.raises(BadInputError, match=r"named\.parquet: no column 'emb'"):
        load_own_embeddings(tmp_path / "named.parquet", vector_column="emb")
    np.save(tmp_path / "flat.npy", np.zeros(5, dtype=np.float32))
    (tmp_path / "five.txt").write_text("a\nb\nc\nd\ne\n")
    with pytest.raises(BadInputError, match=r"flat\.npy: expected a 2-D"):
        load_own_embeddings(tmp_path / "flat.npy", tmp_path / "five.txt")
    np.save(tmp_path / "objects.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadInputError, match=r"objects\.npy: not a numeric \.npy array"):
        load_own_embeddings(tmp_path / "objects.npy", tmp_path / "five.txt")
    np.save(tmp_path / "four.npy", np.ones((4, 3), dtype=np.float32))
    with pytest.raises(BadInputError, match=r"four\.npy has 4 vectors but .*five\.txt has 5 ids"):
        load_own_embeddings(tmp_path / "four.npy", tmp_path / "five.txt")
    with pytest.raises(BadInputError, match="needs an ids file"):
        load_own_embeddings(tmp_path / "four.npy")
    (tmp_path / "dups.txt").write_text("a\nb\na\nc\n")
    with pytest.raises(BadInputError, match=r"dups\.txt: duplicate id 'a' \(rows 1 and 3\)"):
        load_own_embeddings(tmp_path / "four.npy", tmp_path / "dups.txt")


def test_own_embeddings_keep_non_finite_rows_for_the_ingest_to_reject(tmp_path: Path) -> None:
    vectors = np.ones((3, 2), dtype=np.float32)
    vectors[1, 0] = np.nan
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "ids.txt").write_text("a\nb\nc\n")
    _, loaded = load_own_embeddings(tmp_path / "v.npy", tmp_path / "ids.txt")
    assert np.isnan(loaded[1, 0]) and np.isfinite(loaded[[0, 2]]).all()


def test_own_npy_is_read_in_blocks_of_any_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((7, 3))
    (tmp_path / "ids.txt").write_text("".join(f"k{i}\n" for i in range(7)))
    layouts = {"le32.npy": vectors.astype("<f4"), "be64.npy": vectors.astype(">f8"),
               "fortran.npy": np.asfortranarray(vectors), "int.npy": (vectors * 10).astype(np.int16)}
    for name, array in layouts.items():
        np.save(tmp_path / name, array)
        own = open_own_embeddings(tmp_path / name, tmp_path / "ids.txt")
        blocks = list(own.blocks(3))
        assert [len(b) for b in blocks] == [3, 3, 1] and all(b.dtype == np.float32 for b in blocks), name
        assert own.shape == (7, 3) and own.keys == [f"k{i}" for i in range(7)]
        np.testing.assert_array_equal(np.concatenate(blocks), array.astype(np.float32), err_msg=name)
    with (tmp_path / "v2.npy").open("wb") as f:  # format 2.0 header
        np.lib.format.write_array(f, vectors.astype(np.float32), version=(2, 0))
    np.testing.assert_array_equal(load_own_embeddings(tmp_path / "v2.npy", tmp_path / "ids.txt")[1],
                                  vectors.astype(np.float32))


def test_own_parquet_is_checked_whole_before_any_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(own_module, "BLOCK_ROWS", 2)
    rows = [[1.0, 2.0]] * 5 + [[1.0]]
    pq.write_table(pa.table({"id": [f"k{i}" for i in range(6)], "embedding": rows}), tmp_path / "late.parquet")
    with pytest.raises(BadInputError, match=r"late\.parquet: ragged vectors.*row 6 has 1 values, row 1 has 2"):
        open_own_embeddings(tmp_path / "late.parquet")  # found in the 3rd batch, before an ingest starts
    rows[5] = None  # type: ignore[call-overload]
    pq.write_table(pa.table({"id": [f"k{i}" for i in range(6)], "embedding": rows}), tmp_path / "null.parquet")
    with pytest.raises(BadInputError, match=r"null\.parquet: row 6 has no vector"):
        open_own_embeddings(tmp_path / "null.parquet")
    vectors = np.arange(10, dtype=np.float32).reshape(5, 2)
    pq.write_table(pa.table({"id": list("abcde"), "embedding": list(vectors)}), tmp_path / "ok.parquet")
    own = open_own_embeddings(tmp_path / "ok.parquet")
    assert [len(b) for b in own.blocks()] == [2, 2, 1] and own.shape == (5, 2)
    np.testing.assert_array_equal(own.to_array(), vectors)


# -- reports and the prefetching pipeline -----------------------------------------------------
def test_report_status_summary_and_rejects_file(tmp_path: Path) -> None:
    report = IngestReport("p", "train/1", "clip", total=3, stored=2)
    assert report.status == "ok" and write_rejects(report, tmp_path) is None
    report.rejects.append(Reject(Item("bad,key.png", uri="/x/bad,key.png"), "corrupt, truncated"))
    assert report.status == "partial"
    assert report.summary() == "p/train/1 [clip]: 3 items, 2 stored, 0 already stored, 1 rejected (partial)"
    path = write_rejects(report, tmp_path / "rejects")
    assert path is not None and path == report.rejects_path and path.parent == tmp_path / "rejects"
    assert pd.read_csv(path).to_dict("records") == [
        {"key": "bad,key.png", "uri": "/x/bad,key.png", "reason": "corrupt, truncated"}]
    assert IngestReport("p", "d", "s", total=1, rejects=[Reject(Item("k"), "x")]).status == "failed"


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_prepared_batches_keep_order_and_cover_every_batch(workers: int) -> None:
    from core.pipeline.prepare import Prepared

    batches = [[(str(b * 10 + i), Item(str(b * 10 + i))) for i in range(3)] for b in range(7)]
    out = list(prepared_batches(batches, lambda batch: Prepared(ids=[p for p, _ in batch]), workers))
    assert [p.ids for p in out] == [[p for p, _ in batch] for batch in batches]
