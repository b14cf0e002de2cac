"""core.embedders on tiny real transformers models saved to disk and reloaded offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.embedders import (
    Embedder,
    PreprocessingEmbedder,
    available_offline_models,
    clear_cache,
    embedder_for_space,
    load_embedder,
    pooling,
    space_name_for,
)
from core.errors import (
    BadInputError,
    DimensionMismatchError,
    ModelLoadError,
    UnsupportedOperationError,
)
from core.types import SpaceInfo

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = ["hello world", "the cat", "a photo of a dog on a large red ship", "model", "blue bird", "xyzzy"]


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    """Random photos of assorted sizes and modes (RGB, grey, RGBA) like a real folder."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = rng.integers(20, 70, size=2)
        im = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        out.append(im.convert(("RGB", "L", "RGBA")[i % 3]))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _same_directions(actual: np.ndarray, raw: np.ndarray) -> None:
    """Rows of `actual` are the unit rows of `raw` (cosine ~1: kernels may sum in another order)."""
    assert actual.shape == raw.shape
    np.testing.assert_allclose(np.linalg.norm(actual, axis=1), 1.0, atol=1e-5)
    cos = np.sum(actual * _unit(raw), axis=1)
    assert cos.min() > 0.99999, cos


@pytest.fixture(params=["clip", "vit", "resnet"])
def image_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(f"tiny_{request.param}_dir"))


def test_import_does_not_load_torch() -> None:
    code = "import sys, core.embedders; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["False", "False"]


def test_image_embeddings_shape_norm_determinism_and_batch_invariance(image_dir: Path) -> None:
    images = _images(7)
    emb = load_embedder(str(image_dir), batch_size=3)
    assert isinstance(emb, PreprocessingEmbedder) and isinstance(emb, Embedder)
    first = emb.embed_images(images)
    assert first.shape == (7, emb.dim) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, emb.embed_images(images))
    single = load_embedder(str(image_dir), batch_size=1).embed_images(images)
    np.testing.assert_allclose(single, first, atol=1e-5)
    # Preprocessing is separable from the forward pass and gives the same vectors.
    pixels = emb.preprocess(images)
    assert pixels.dtype == np.float32 and pixels.shape[:2] == (7, 3)
    np.testing.assert_allclose(emb.embed_preprocessed(pixels), first, atol=1e-6)
    # Different images give different vectors (the model is not constant).
    assert np.abs(first[0] - first[1]).max() > 1e-3


def test_progress_is_reported_after_every_batch(tiny_vit_dir: Path) -> None:
    calls: list[tuple[int, int]] = []
    load_embedder(str(tiny_vit_dir), batch_size=2).embed_images(_images(5), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    calls.clear()
    load_embedder(str(tiny_vit_dir), batch_size=4).embed_preprocessed(
        load_embedder(str(tiny_vit_dir)).preprocess(_images(5)), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(4, 5), (5, 5)]


def test_clip_uses_projected_image_and_text_features(tiny_clip_dir: Path) -> None:
    emb = load_embedder(str(tiny_clip_dir), device="cpu")  # compared with a CPU forward below
    info = emb.space_info()
    assert (emb.modality, emb.text_side, info.text_side, info.modality) == ("image", True, True, "image")
    images, texts = _images(4), TEXTS
    img_vecs, txt_vecs = emb.embed_images(images), emb.embed_texts(texts)
    assert img_vecs.shape[1] == txt_vecs.shape[1] == emb.dim == 16

    model = transformers.CLIPModel.from_pretrained(tiny_clip_dir).eval()
    processor = transformers.CLIPProcessor.from_pretrained(tiny_clip_dir)
    with torch.inference_mode():
        pixels = processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        tokens = processor.tokenizer(texts, padding=True, return_tensors="pt")
        direct_img = model.get_image_features(pixel_values=pixels)
        direct_txt = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    direct_img = getattr(direct_img, "pooler_output", direct_img).numpy()
    direct_txt = getattr(direct_txt, "pooler_output", direct_txt).numpy()
    _same_directions(img_vecs, direct_img)
    _same_directions(txt_vecs, direct_txt)
    # The text side as the dataset modality: same space name, same vectors.
    as_text = load_embedder(str(tiny_clip_dir), "text", device="cpu")
    assert as_text.modality == "text" and as_text.name == emb.name
    np.testing.assert_allclose(as_text.embed_texts(texts), txt_vecs, atol=1e-6)


def test_vision_backbone_pooled_and_hidden_layer(tiny_vit_dir: Path, tiny_resnet_dir: Path) -> None:
    images = _images(3)
    for path in (tiny_vit_dir, tiny_resnet_dir):
        model = transformers.AutoModel.from_pretrained(path).eval()
        pooled = load_embedder(str(path), device="cpu")  # compared with a CPU forward below
        hidden = load_embedder(str(path), layer="hidden:-2", device="cpu")
        with torch.inference_mode():
            out = model(pixel_values=torch.from_numpy(pooled.preprocess(images)), output_hidden_states=True)
        state = out.hidden_states[-2]
        expected = state.mean(dim=(2, 3)) if state.ndim == 4 else state.mean(dim=1)
        _same_directions(pooled.embed_images(images), out.pooler_output.flatten(1).numpy())
        _same_directions(hidden.embed_images(images), expected.numpy())
        assert hidden.name == pooled.name + "-hidden-2" and hidden.space_info().layer == "hidden:-2"


def test_hidden_dimension_cap(tiny_vit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wide = torch.arange(12_000, dtype=torch.float32).repeat(2, 1)
    capped = pooling.cap_channels(wide)
    assert capped.shape == (2, pooling.MAX_HIDDEN_DIM) == (2, 10_000)
    assert abs(float(capped.mean()) - float(wide.mean())) < 1.0  # averaging keeps the level
    assert pooling.cap_channels(wide[:, :500]).shape == (2, 500)  # narrow states are untouched
    # End to end: a 32-d hidden state over a cap of 8 comes out 8-d.
    clear_cache()
    monkeypatch.setattr(pooling, "MAX_HIDDEN_DIM", 8)
    try:
        emb = load_embedder(str(tiny_vit_dir), layer="hidden:-1")
        assert emb.dim == 8 and emb.embed_images(_images(2)).shape == (2, 8)
    finally:
        clear_cache()


def test_text_encoder_masked_mean_ignores_padding(tiny_bert_dir: Path) -> None:
    emb = load_embedder(str(tiny_bert_dir), batch_size=len(TEXTS))
    assert (emb.modality, emb.text_side) == ("text", True)
    together = emb.embed_texts(TEXTS)
    alone = np.vstack([emb.embed_texts([t]) for t in TEXTS])  # no padding at all
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    model = transformers.AutoModel.from_pretrained(tiny_bert_dir).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_bert_dir)
    with torch.inference_mode():
        state = model(**tokenizer([TEXTS[2]], return_tensors="pt")).last_hidden_state
    _same_directions(together[2:3], state.mean(dim=1).numpy())


def test_wrong_side_raises(tiny_vit_dir: Path, tiny_bert_dir: Path) -> None:
    with pytest.raises(UnsupportedOperationError, match="no text side"):
        load_embedder(str(tiny_vit_dir)).embed_texts(["hello"])
    with pytest.raises(UnsupportedOperationError, match="cannot embed images"):
        load_embedder(str(tiny_bert_dir)).embed_images(_images(1))
    with pytest.raises(ModelLoadError, match="text encoder"):
        load_embedder(str(tiny_bert_dir), "image")
    with pytest.raises(ModelLoadError, match="image model"):
        load_embedder(str(tiny_vit_dir), "text")


def test_bad_arguments(tiny_vit_dir: Path, tiny_clip_dir: Path) -> None:
    with pytest.raises(ValueError, match="hidden:<int>"):
        load_embedder(str(tiny_vit_dir), layer="penultimate")
    with pytest.raises(BadInputError, match="out of range"):
        load_embedder(str(tiny_vit_dir), layer="hidden:40")
    with pytest.raises(ValueError, match="CLIP-like"):
        load_embedder(str(tiny_clip_dir), layer="hidden:-2")
    with pytest.raises(ValueError, match="modality"):
        load_embedder(str(tiny_vit_dir), "video")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        load_embedder(str(tiny_vit_dir), precision="fp8")  # type: ignore[arg-type]


def test_unreachable_hub_model_says_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_embedder("openai/clip-vit-base-patch32")
    message = str(info.value)
    for part in ("openai/clip-vit-base-patch32", "huggingface-cli download", "save_pretrained", "HF_HOME"):
        assert part in message
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_embedder(str(tmp_path / "no" / "such" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        load_embedder(str(tmp_path / "empty"))


def test_models_are_cached_per_process(tiny_vit_dir: Path) -> None:
    a = load_embedder(str(tiny_vit_dir), batch_size=2)
    b = load_embedder(str(tiny_vit_dir) + "/", batch_size=8)
    assert a.backend is b.backend and (a.batch_size, b.batch_size) == (2, 8)
    assert load_embedder(str(tiny_vit_dir), layer="hidden:-2").backend is not a.backend


def test_embedder_for_space_round_trip(tiny_clip_dir: Path) -> None:
    emb = load_embedder(str(tiny_clip_dir))
    space = SpaceInfo.from_dict(emb.space_info().to_dict())
    again = embedder_for_space(space, batch_size=4)
    images = _images(3)
    np.testing.assert_allclose(again.embed_images(images), emb.embed_images(images), atol=1e-6)
    with pytest.raises(UnsupportedOperationError, match="uploaded vectors"):
        embedder_for_space(SpaceInfo(name="own", dim=16, modality="vector"))
    with pytest.raises(DimensionMismatchError, match="16-d"):
        embedder_for_space(SpaceInfo(name=space.name, dim=99, modality="image", model=space.model))


def test_int8_precision_stays_close_to_fp32(tiny_clip_dir: Path) -> None:
    images = _images(6)
    fp32 = load_embedder(str(tiny_clip_dir), device="cpu")
    int8 = load_embedder(str(tiny_clip_dir), device="cpu", precision="int8")
    assert any("quantized" in type(m).__module__ for m in int8.backend.model.modules())  # type: ignore[attr-defined]
    cos = np.sum(fp32.embed_images(images) * int8.embed_images(images), axis=1)
    assert cos.min() > 0.95, cos


def test_space_names() -> None:
    assert space_name_for("openai/clip-vit-base-patch32", None) == "clip-vit-base-patch32"
    assert space_name_for("/models/My ViT/", "hidden:-2") == "my-vit-hidden-2"
    assert space_name_for("facebook/dinov2-small", "pooled") == "dinov2-small"
    assert space_name_for("C:\\models\\ResNet 50", "hidden:3") == "resnet-50-hidden3"


def test_available_offline_models_point_at_files() -> None:
    found = available_offline_models()
    assert set(found) <= {"sentence-transformers/all-MiniLM-L6-v2", "efficientnet-lite0"}
    assert all(Path(p).exists() for p in found.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_load_error(tiny_vit_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="cuda"):
        load_embedder(str(tiny_vit_dir), device="cuda")


def _pickled_copy(source: Path, target: Path, *, keep_safetensors: bool = False) -> Path:
    """A copy of a saved model whose weights are (also) a pickled pytorch_model.bin."""
    import shutil

    from safetensors.torch import load_file

    shutil.copytree(source, target)
    torch.save(load_file(str(target / "model.safetensors")), target / "pytorch_model.bin")
    if not keep_safetensors:
        (target / "model.safetensors").unlink()
    return target


def test_a_folder_typed_anywhere_must_lie_under_the_roots(tiny_vit_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    roots = [tmp_path / "datasets"]
    roots[0].mkdir()
    with pytest.raises(BadInputError, match="outside the data roots"):
        load_embedder(str(tiny_vit_dir), allowed_roots=roots)
    (roots[0] / "link").symlink_to(tiny_vit_dir, target_is_directory=True)
    with pytest.raises(BadInputError, match="outside the data roots"):  # a symlink does not escape
        load_embedder(str(roots[0] / "link"), allowed_roots=roots)
    assert load_embedder(str(tiny_vit_dir), allowed_roots=[tiny_vit_dir.parent]).dim > 0
    assert load_embedder(str(tiny_vit_dir)).dim > 0, "no roots given (the CLI's named folder): allowed"


def test_pickled_only_model_folders_are_refused_unless_allowed(tiny_vit_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    pickled = _pickled_copy(tiny_vit_dir, tmp_path / "pickled")
    with pytest.raises(ModelLoadError) as info:
        load_embedder(str(pickled))
    assert "pytorch_model.bin" in str(info.value) and "EMBEDSCOPE_ALLOW_PICKLED_MODELS" in str(info.value)
    clear_cache()
    allowed = load_embedder(str(pickled), allow_pickled=True, device="cpu")
    reference = load_embedder(str(tiny_vit_dir), device="cpu")
    images = _images(3)
    np.testing.assert_allclose(allowed.embed_images(images), reference.embed_images(images), atol=1e-5)
    both = _pickled_copy(tiny_vit_dir, tmp_path / "both", keep_safetensors=True)
    assert load_embedder(str(both)).dim == reference.dim, "safetensors present: loaded from them"
    (both / "model.safetensors").rename(both / "weights.safetensors")  # not a name transformers reads
    with pytest.raises(ModelLoadError, match="pickled"):
        load_embedder(str(both))
