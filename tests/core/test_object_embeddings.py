"""Object embeddings: crops cut from one decode (margin, clipping, bad boxes), crop and ROI vectors on tiny real models."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data

import core.datasets.images as images
from core.config import Settings
from core.datasets.detections import Box
from core.datasets.images import load_crops
from core.embedders import load_embedder
from core.embedders.objects import (
    embed_image_objects,
    embed_many_objects,
    embed_objects,
    object_space_info,
    roi_unsupported,
)
from core.embedders.roi import roi_average
from core.errors import BadBoxError, BadInputError, UnsupportedOperationError

pytestmark = pytest.mark.usefixtures("_offline")


@pytest.fixture
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _photo(settings: Settings, name: str = "coffee.png", size: tuple[int, int] | None = None) -> Path:
    """skimage's coffee photo (400 x 600) saved under the data root, optionally resized."""
    image = Image.fromarray(data.coffee())
    if size is not None:
        image = image.resize(size, Image.Resampling.BILINEAR)
    path = settings.allowed_roots[0] / name
    image.save(path)
    return path


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the pixel decodes of images.open_image's file path (_decode)."""
    seen: list[str] = []
    real = images._decode

    def counting(source: Any, max_pixels: int, label: str) -> Image.Image:
        seen.append(label)
        return real(source, max_pixels, label)

    monkeypatch.setattr(images, "_decode", counting)
    return seen


def test_crops_come_from_one_decode_with_the_margin_clipped(settings: Settings, decodes: list[str]) -> None:
    path = _photo(settings)
    boxes = [Box(100, 50, 200, 150), Box(0, 0, 40, 20), Box(580, 380, 600, 400)]
    crops = load_crops(path, boxes, margin=0.1, settings=settings)
    assert len(decodes) == 1
    # 100 x 100 box + 10 px on each side; the corner boxes lose the margin that falls off the image.
    assert [c.size for c in crops] == [(120, 120), (44, 22), (22, 22)]
    original = np.asarray(Image.open(path).convert("RGB"))  # the test's own reference read
    assert np.array_equal(np.asarray(crops[0]), original[40:160, 90:210])
    assert np.array_equal(np.asarray(crops[2]), original[378:400, 578:600])
    assert [c.size for c in load_crops(path, boxes[:1], margin=0.0, settings=settings)] == [(100, 100)]


@pytest.mark.parametrize("box, index", [(Box(700, 10, 800, 50), 1), (Box(10, 399.5, 50, 460), 1)])
def test_a_box_outside_the_image_raises_bad_box_error_naming_it(settings: Settings, box: Box, index: int) -> None:
    path = _photo(settings)
    with pytest.raises(BadBoxError, match=r"coffee\.png: box 1 .*cannot be cropped") as caught:
        load_crops(path, [Box(0, 0, 10, 10), box], settings=settings)
    assert caught.value.index == index
    assert isinstance(caught.value, BadInputError)  # the pipeline's reject path catches it
    assert pickle.loads(pickle.dumps(caught.value)).index == index  # survives a worker pool
    with pytest.raises(ValueError, match="margin"):
        load_crops(path, [Box(0, 0, 10, 10)], margin=-0.1, settings=settings)


def test_crops_keep_load_images_checks(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    Image.fromarray(data.coffee()).save(outside)
    with pytest.raises(BadInputError, match="outside the allowed data roots"):
        load_crops(outside, [Box(0, 0, 10, 10)], settings=settings)


@pytest.mark.parametrize("model", ["tiny_vit_dir", "tiny_resnet_dir", "tiny_clip_dir"])
def test_crop_of_the_full_image_box_is_the_images_own_vector(
        model: str, request: pytest.FixtureRequest, settings: Settings, decodes: list[str]) -> None:
    embedder = load_embedder(str(request.getfixturevalue(model)), "image")
    path = _photo(settings)
    vectors = embed_objects(embedder, path, [Box(0, 0, 600, 400), Box(300, 100, 420, 260)], mode="crop",
                            margin=0.2, settings=settings)
    assert len(decodes) == 1
    assert vectors.shape == (2, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    whole = embedder.embed_images([images.load_image(path, settings)])[0]
    np.testing.assert_allclose(vectors[0], whole, atol=1e-6)  # same pixels, same preprocessing
    assert not np.allclose(vectors[1], whole, atol=1e-3)
    assert object_space_info(embedder, "crop") == embedder.space_info()


def test_roi_average_weights_cells_by_the_part_inside() -> None:
    import torch

    cells = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # C=2, h=3, w=4
    rects = torch.tensor([[0, 0, 4, 3], [1, 0, 3, 2], [1.25, 1.25, 1.75, 1.75], [0.5, 0, 1.5, 1]])
    got = roi_average(cells, rects)
    expected = torch.stack([cells.mean(dim=(1, 2)), cells[:, 0:2, 1:3].mean(dim=(1, 2)), cells[:, 1, 1],
                            (cells[:, 0, 0] + cells[:, 0, 1]) / 2])
    torch.testing.assert_close(got, expected)


def test_roi_of_the_full_box_is_the_pooled_vector_of_an_averaging_cnn(
        tiny_resnet_dir: Path, settings: Settings, decodes: list[str]) -> None:
    # ResNet's pooled output IS the average of its last stage. On a 32 x 32 image (the model's input
    # size) the image path and the ROI path feed the same pixels, so only float summation order
    # differs: 1e-5.
    embedder = load_embedder(str(tiny_resnet_dir), "image")
    path = _photo(settings, "small.png", size=(32, 32))
    boxes = [Box(0, 0, 32, 32), Box(0, 0, 16, 16), Box(16, 16, 32, 32)]
    vectors = embed_objects(embedder, path, boxes, mode="roi", margin=0.0, settings=settings)
    assert len(decodes) == 1
    whole = embedder.embed_images([images.load_image(path, settings)])[0]
    np.testing.assert_allclose(vectors[0], whole, atol=1e-5)
    assert vectors.shape == (3, embedder.dim)
    assert not np.allclose(vectors[1], vectors[2], atol=1e-3)
    info = object_space_info(embedder, "roi")
    assert (info.name, info.dim) == (embedder.name + "-roi", embedder.dim)


@pytest.mark.parametrize("model", ["tiny_vit_dir", "tiny_clip_dir"])
def test_roi_on_patch_grids_gives_unit_vectors_of_the_space_dim(
        model: str, request: pytest.FixtureRequest, settings: Settings, decodes: list[str]) -> None:
    embedder = load_embedder(str(request.getfixturevalue(model)), "image")
    path = _photo(settings)
    boxes = [Box(0, 0, 600, 400), Box(0, 0, 300, 200), Box(300, 200, 600, 400), Box(310, 210, 320, 220)]
    vectors = embed_objects(embedder, path, boxes, mode="roi", margin=0.0, settings=settings)
    assert len(decodes) == 1
    assert vectors.shape == (4, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[1], vectors[2], atol=1e-3)
    # A box inside one patch (600 x 400 squashed to 32 x 32: patches of 150 x 100 px) is that patch.
    same_patch = embed_objects(embedder, path, [Box(305, 205, 315, 215)], mode="roi", margin=0.0, settings=settings)
    np.testing.assert_allclose(same_patch[0], vectors[3], atol=1e-6)
    assert object_space_info(embedder, "roi").text_side is False


def test_roi_refuses_models_without_a_feature_map(tiny_vit_dir: Path, tiny_bert_dir: Path,
                                                  settings: Settings) -> None:
    path = _photo(settings)
    hidden = load_embedder(str(tiny_vit_dir), "image", layer="hidden:1")
    assert roi_unsupported(hidden) is not None
    with pytest.raises(UnsupportedOperationError, match="not layer 'hidden:1'.*use crop mode"):
        embed_objects(hidden, path, [Box(0, 0, 10, 10)], mode="roi", settings=settings)
    text = load_embedder(str(tiny_bert_dir), "text")
    with pytest.raises(UnsupportedOperationError, match="text model"):
        embed_objects(text, path, [Box(0, 0, 10, 10)], mode="roi", settings=settings)
    with pytest.raises(ValueError, match="object mode"):
        embed_objects(hidden, path, [Box(0, 0, 10, 10)], mode="patch", settings=settings)


def test_efficientnet_roi_of_the_full_box_is_near_its_pooled_vector(settings: Settings) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    from core.embedders.naming import EFFICIENTNET_LITE0, efficientnet_weights

    if efficientnet_weights() is None:
        pytest.skip("the efficientnet-lite0 weights package is not installed")
    embedder = load_embedder(EFFICIENTNET_LITE0, "image")
    path = _photo(settings)
    # The image path sees the 224 x 224 centre crop of the 256-px resize (scale 0.64): the image's
    # [125, 475] x [25, 375]. ROI sees the whole image at the same scale, so over that region the
    # features differ only near the crop's borders (zero padding there, real context here) and by
    # the resize: cosine > 0.95 (0.968 measured); the whole image adds 42% more width: > 0.85 (0.903).
    boxes = [Box(125, 25, 475, 375), Box(0, 0, 600, 400), Box(420, 0, 600, 150)]
    vectors = embed_objects(embedder, path, boxes, mode="roi", margin=0.0, settings=settings)
    whole = embedder.embed_images([images.load_image(path, settings)])[0]
    cosines = vectors @ whole
    assert cosines[0] > 0.95 and cosines[1] > 0.85
    assert cosines[2] < cosines[1]  # a corner box is another object


@pytest.mark.parametrize("model", ["tiny_vit_dir", "tiny_resnet_dir"])
@pytest.mark.parametrize("mode", ["crop", "roi"])
def test_objects_of_many_images_are_each_images_own(model: str, mode: str, request: pytest.FixtureRequest) -> None:
    embedder = load_embedder(str(request.getfixturevalue(model)), "image", batch_size=2)
    photos = [Image.fromarray(data.coffee()), Image.fromarray(data.astronaut()), Image.fromarray(data.chelsea())]
    boxes = [[Box(10, 10, 200, 150), Box(300, 100, 600, 400)], [], [Box(0, 0, 451, 300)]]
    together = embed_many_objects(embedder, photos, boxes, mode=mode, margin=0.1)
    assert [block.shape for block in together] == [(2, embedder.dim), (0, embedder.dim), (1, embedder.dim)]
    for photo, group, block in zip(photos, boxes, together, strict=True):
        np.testing.assert_allclose(embed_image_objects(embedder, photo, group, mode=mode, margin=0.1), block,
                                   atol=1e-5)  # batching changes only float summation order
    with pytest.raises(BadBoxError, match="cat: box 0"):
        embed_many_objects(embedder, photos[2:], [[Box(500, 0, 600, 10)]], mode=mode, names=["cat"])
