"""The ingest pipeline with real tiny models and real stores: rejects, resume, manifests, own vectors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.config import Settings, load_settings
from core.datasets import OwnVectors, from_image_folder, from_manifest, load_image, open_own_embeddings
from core.embedders import load_embedder
from core.errors import DimensionMismatchError
from core.filters import Condition, Filter
from core.ids import point_id
from core.linalg import l2_normalise
from core.pipeline import ingest_vectors as ingest_vectors_module
from core.pipeline.ingest import ingest_items
from core.pipeline.ingest_vectors import VECTOR_BATCH, ingest_vectors, update_payloads
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN
from tests.core.test_datasets import (
    make_image_folder,
    write_manifest,
    write_png_header,
    write_random_png,
    write_truncated_jpeg,
)


class CountingEmbedder:
    """A real embedder, with a count of the items that reached the model."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.model_id, self.dim = inner.name, inner.model_id, inner.dim
        self.modality, self.text_side = inner.modality, inner.text_side
        self.embedded = 0

    def space_info(self) -> SpaceInfo:
        return self.inner.space_info()  # type: ignore[no-any-return]

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.inner.preprocess(images)  # type: ignore[no-any-return]

    def embed_preprocessed(self, batch: np.ndarray, progress: Any = None) -> np.ndarray:
        self.embedded += len(batch)
        return self.inner.embed_preprocessed(batch)  # type: ignore[no-any-return]

    def embed_images(self, images: Sequence[Image.Image], progress: Any = None) -> np.ndarray:
        self.embedded += len(images)
        return self.inner.embed_images(images)  # type: ignore[no-any-return]

    def embed_texts(self, texts: Sequence[str], progress: Any = None) -> np.ndarray:
        self.embedded += len(texts)
        return self.inner.embed_texts(texts)  # type: ignore[no-any-return]


def _labels_by_key(store: VectorStore, project: str, space: str) -> dict[str, Any]:
    frame = store.payloads(project, space, fields=["key", "label"])
    return dict(zip(frame["key"], frame["label"], strict=True))


def test_folder_ingest_stores_labels_rejects_corrupt_files_and_skips_on_rerun(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "shapes"
    keys = make_image_folder(folder, {"circle": 8, "square": 7, "noise": 6})
    write_truncated_jpeg(folder / "noise" / "cut.jpg")
    write_random_png(folder / "square" / "junk.png")
    items = from_image_folder(folder, settings)
    seen: list[tuple[int, int]] = []

    report = ingest_items(store, "p", "train", items, clip, settings=settings, batch_size=4,
                          progress=lambda done, total: seen.append((done, total)), actor=ADMIN)

    assert (report.total, report.stored, report.skipped, report.status) == (23, 21, 0, "partial")
    reasons = {r.key: r.reason for r in report.rejects}
    assert set(reasons) == {"noise/cut.jpg", "square/junk.png"}
    assert "truncated" in reasons["noise/cut.jpg"] and "not a readable image" in reasons["square/junk.png"]
    assert report.rejects_path is not None and report.rejects_path.parent == settings.data_dir / "rejects"
    assert set(pd.read_csv(report.rejects_path)["key"]) == set(reasons)
    assert _labels_by_key(store, "p", clip.name) == {k: k.split("/")[0] for k in keys}
    assert clip.embedded == 21
    assert seen[0] == (0, 23) and seen[-1] == (23, 23)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    again = ingest_items(store, "p", "train", items, clip, settings=settings, batch_size=4, actor=ADMIN)
    assert (again.stored, again.skipped, len(again.rejects)) == (0, 21, 2)
    assert clip.embedded == 21  # nothing embedded twice
    assert store.count("p", clip.name) == 21


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_ingest_keeps_stored_batches_and_resumes(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setenv("EMBEDSCOPE_NUM_WORKERS", str(workers))
    settings = load_settings()
    folder = tmp_path / "data" / "shapes"
    make_image_folder(folder, {"circle": 10, "square": 10})
    items = from_image_folder(folder, settings)

    def stop_after_two_batches(done: int, total: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_items(store, "p", "d", items, clip, settings=settings, batch_size=4,
                     progress=stop_after_two_batches, actor=ADMIN)
    assert store.count("p", clip.name) == 8

    report = ingest_items(store, "p", "d", items, clip, settings=settings, batch_size=4, actor=ADMIN)
    assert (report.skipped, report.stored, report.status) == (8, 12, "ok")
    assert clip.embedded == 20  # the 8 stored before the interruption were not embedded again
    ids = [point_id("p", "d", item.key) for item in items]
    got_ids, vectors = store.vectors("p", clip.name, ids)
    assert got_ids == ids
    # The threaded decode + preprocess pipeline gives what embedding the images directly gives.
    direct = clip.inner.embed_images([load_image(str(item.uri), settings) for item in items])
    np.testing.assert_allclose(vectors, direct, atol=1e-5)


def test_manifest_metadata_is_stored_and_filterable(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_image_folder(root / "imgs", {"circle": 3, "square": 3})
    rows = [{"path": f"imgs/{label}/{label}_{i:03d}.png", "label": label, "prediction": "circle",
             "confidence": 0.1 * (i + 1), "split": "train" if i < 2 else "test",
             "camera": "north" if i % 2 else "south", "shift": i}
            for label in ("circle", "square") for i in range(3)]
    items = from_manifest(write_manifest(root / "manifest.csv", rows), settings)
    report = ingest_items(store, "p", "m", items, clip, settings=settings, actor=ADMIN)
    assert report.status == "ok" and report.stored == 6
    space = clip.name
    north = Filter(must=(Condition("meta.camera", equals="north"),))
    assert store.count("p", space, north) == 2
    assert store.count("p", space, Filter(must=(Condition("meta.shift", gte=2),))) == 2
    assert store.count("p", space, Filter.where(split="test", prediction="circle")) == 2
    assert store.count("p", space, Filter(must=(Condition("confidence", gte=0.25),))) == 2
    frame = store.payloads("p", space)
    assert {"meta.camera", "meta.shift"} <= set(frame.columns)


def test_text_manifest_with_a_tiny_bert(store: VectorStore, settings: Settings, tmp_path: Path,
                                        tiny_bert_dir: Path) -> None:  # noqa: F811
    rows = [{"id": i, "text": t, "label": lab} for i, (t, lab) in enumerate([
        ("a photo of a cat", "cat"), ("a red car", "car"), ("the small dog", "dog"),
        ("   ", "cat"), ("broken \ufffd text", "car")])]
    items = from_manifest(write_manifest(tmp_path / "data" / "texts.jsonl", rows), settings)
    bert = CountingEmbedder(load_embedder(str(tiny_bert_dir), "text"))
    report = ingest_items(store, "t", "docs", items, bert, settings=settings, actor=ADMIN)
    assert (report.stored, report.status) == (3, "partial")
    assert {r.key: r.reason for r in report.rejects} == {"3": "empty text", "4": "text is not valid UTF-8"}
    frame = store.payloads("t", bert.name, fields=["key", "text", "label"])
    assert dict(zip(frame["key"], frame["text"], strict=True)) == {"0": "a photo of a cat", "1": "a red car",
                                                      "2": "the small dog"}
    _, vectors = store.vectors("t", bert.name)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_unsafe_or_missing_images_are_rejects_not_failures(
        store: VectorStore, settings: Settings, clip: CountingEmbedder, tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_image_folder(root / "ok", {"circle": 2})
    outside = tmp_path / "elsewhere"
    make_image_folder(outside, {"square": 1})
    write_png_header(root / "bomb.png", 12_000, 12_000)
    items = [Item("a", uri=str(root / "ok/circle/circle_000.png")),
             Item("b", uri=str(root / "ok/circle/circle_001.png")),
             Item("outside", uri=str(outside / "square/square_000.png")),
             Item("sneaky", uri=f"{root}/../elsewhere/square/square_000.png"),
             Item("bomb", uri=str(root / "bomb.png")),
             Item("gone", uri=str(root / "gone.png")),
             Item("url", uri="http://example.com/x.png"),
             Item("nothing")]
    report = ingest_items(store, "p", "d", items, clip, settings=settings, actor=ADMIN)
    reasons = {r.key: r.reason for r in report.rejects}
    assert report.stored == 2 and report.status == "partial"
    assert "outside the allowed data roots" in reasons["outside"]
    assert "outside the allowed data roots" in reasons["sneaky"]
    assert "decompression-bomb guard" in reasons["bomb"] and "bomb.png" in reasons["bomb"]
    assert "file not found" in reasons["gone"]
    assert "only local image files" in reasons["url"]
    assert reasons["nothing"] == "no image path or uri"
    failed = ingest_items(store, "p", "e", items[2:], clip, settings=settings, actor=ADMIN)
    assert failed.status == "failed" and failed.stored == 0


def test_own_vectors_join_by_id_and_round_trip_exactly(store: VectorStore, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6, 5)).astype(np.float32)
    vectors[4] = np.nan
    vectors[5] = 0.0
    keys = ["k0", "k1", "k2", "k3", "k4", "k5"]
    items = [Item("k0", label="cat"), Item("k1", label="dog"), Item("k-no-vector", label="cat")]
    space = SpaceInfo("own", 5, "vector")
    report = ingest_vectors(store, "v", "train", space, items, vectors, keys=keys,
                            rejects_dir=tmp_path / "rejects", actor=ADMIN)
    assert report.stored == 4 and report.status == "partial"
    assert {r.key: r.reason for r in report.rejects} == {
        "k-no-vector": "no vector with this id in the embeddings file",
        "k4": "vector has NaN or inf values (non-finite norm)", "k5": "vector has all zeros"}
    assert report.rejects_path is not None and report.rejects_path.is_file()
    ids = [point_id("v", "train", k) for k in keys[:4]]
    got, stored = store.vectors("v", "own", ids)
    unit = l2_normalise(vectors[:4])  # the one normaliser
    np.testing.assert_allclose(unit, vectors[:4] / np.linalg.norm(vectors[:4], axis=1, keepdims=True), atol=1e-6)
    assert got == ids
    if type(store).__name__ == "EdgeStore":
        assert np.array_equal(stored, unit)  # the embedded default keeps our unit rows bit for bit
    else:
        np.testing.assert_allclose(stored, unit, atol=1e-6)  # qdrant-client re-normalises in numpy
    labels = _labels_by_key(store, "v", "own")
    assert labels["k0"] == "cat" and labels["k1"] == "dog" and pd.isna(labels["k2"])  # bare payload

    flipped = vectors.copy()
    flipped[:4] *= -1
    again = ingest_vectors(store, "v", "train", space, items, flipped, keys=keys, actor=ADMIN)
    assert again.stored == 4 and store.count("v", "own") == 4  # overwritten, not duplicated
    np.testing.assert_allclose(store.vectors("v", "own", ids)[1], -unit, atol=1e-6)
    with pytest.raises(DimensionMismatchError, match="5-d"):
        ingest_vectors(store, "v", "train", space, [Item("x")], np.ones((1, 3), np.float32), actor=ADMIN)


def test_own_vectors_file_is_ingested_block_by_block(store: VectorStore, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((2500, 8)).astype(np.float32)
    vectors[1500] = np.nan
    np.save(tmp_path / "v.npy", vectors)
    keys = [f"k{i}" for i in range(2500)]
    (tmp_path / "ids.txt").write_text("\n".join(keys) + "\n")
    own = open_own_embeddings(tmp_path / "v.npy", tmp_path / "ids.txt")
    read: list[int] = []

    def blocks(rows: int) -> Iterator[np.ndarray]:
        for block in own.read_blocks(1000):
            read.append(len(block))
            yield block

    upserts: list[tuple[int, int]] = []  # (rows upserted, blocks read so far)

    class Watching:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def upsert(self, project: str, space: str, ids: Sequence[str], vecs: np.ndarray, payloads: Any) -> None:
            upserts.append((len(ids), len(read)))
            store.upsert(project, space, ids, vecs, payloads)

    lazy = OwnVectors(own.path, own.keys, own.shape, blocks)
    items = [Item("k3", label="cat"), Item("nope")]
    report = ingest_vectors(Watching(), "b", "d", SpaceInfo("own", 8, "vector"), items, lazy,  # type: ignore[arg-type]
                            keys=own.keys, actor=ADMIN)
    assert report.stored == 2499 and {r.key for r in report.rejects} == {"k1500", "nope"}
    assert read == [1000, 1000, 500] and max(n for n, _ in upserts) <= VECTOR_BATCH
    assert upserts[0][1] == 1  # the first rows are stored before the second block is read
    got, stored = store.vectors("b", "own", [point_id("b", "d", k) for k in ("k0", "k3", "k2499")])
    np.testing.assert_allclose(stored, l2_normalise(vectors[[0, 3, 2499]]), atol=1e-6)
    assert _labels_by_key(store, "b", "own")["k3"] == "cat"


def test_repeated_keys_are_found_across_blocks(store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_vectors_module, "_ARRAY_BLOCK", 2)
    items = [Item("a"), Item("b"), Item("c"), Item("a"), Item("d")]
    report = ingest_vectors(store, "r", "d", SpaceInfo("own", 3, "vector"), items, np.eye(5, 3, dtype=np.float64),
                            actor=ADMIN)
    assert report.stored == 3 and [r.key for r in report.rejects] == ["a", "d"]  # a: repeated, d: zeros
    assert "duplicate key" in report.rejects[0].reason


def test_update_payloads_attaches_labels_after_the_vectors(store: VectorStore) -> None:
    vectors = np.eye(4, dtype=np.float32)
    items = [Item(f"k{i}") for i in range(4)]
    ingest_vectors(store, "u", "prod", SpaceInfo("own", 4, "vector"), items, vectors, actor=ADMIN)
    assert store.count("u", "own", Filter(must=(Condition("label", missing=True),))) == 4
    later = [Item("k0", label="cat", prediction="dog", confidence=0.3, meta={"camera": "north"}),
             Item("k1", label="dog"), Item("k2")]
    assert update_payloads(store, "u", "prod", later, actor=ADMIN) == 2
    labels = _labels_by_key(store, "u", "own")
    assert (labels["k0"], labels["k1"]) == ("cat", "dog") and pd.isna(labels["k3"])
    assert store.count("u", "own", Filter(must=(Condition("meta.camera", equals="north"),))) == 1
    assert store.count("u", "own", Filter.where(prediction="dog")) == 1
