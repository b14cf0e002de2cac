"""ROI pooling: one forward pass per image, the last feature map averaged over each box, then the model's head."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from core.embedders import runtime
from core.embedders.backend import Backend
from core.embedders.efficientnet import MEAN, RESIZE, STD, EfficientNetBackend
from core.embedders.hf import DualBackend, VisionBackend
from core.errors import UnsupportedOperationError

if TYPE_CHECKING:
    import torch

Rect = tuple[float, float, float, float]
# CNN inputs are resized to multiples of this (the largest usual stride), so the last feature
# map covers the image exactly and a box maps to feature cells by one scale factor.
CNN_ALIGN = 32
# Tolerance of the check that the head applied to the map's full average gives the model's pooled
# output: float32 sums in another order differ by ~1e-6 relative.
_HEAD_RTOL = 1e-3
_HEAD_ATOL = 1e-4


@dataclass(frozen=True)
class FeatureMap:
    """(n, C, h, w) features of whole images, and the head that turns averaged (k, C) features into vectors."""

    cells: torch.Tensor
    head: Callable[[torch.Tensor], torch.Tensor]


def roi_problem(backend: Backend) -> str | None:
    """Why ROI pooling is not offered for this model (None when it is)."""
    if not backend.has_images:
        return f"{backend.model_id} is a text model"
    if backend.index is not None:
        return f"ROI pooling uses the model's pooled output, not layer {backend.layer!r}"
    if isinstance(backend, (EfficientNetBackend, VisionBackend, DualBackend)):
        return None
    return f"{backend.model_id} ({type(backend).__name__}) has no feature map ROI pooling knows"


def roi_features(backend: Backend, images: Sequence[Image.Image], rects: Sequence[Sequence[Rect]],
                 batch_size: int = 32) -> list[np.ndarray]:
    """One (len(rects[i]), dim) raw float32 block per image: the head of each rect's average of
    that image's feature map. Images whose model input has the same size run in one forward
    batch (ViT / CLIP inputs always do; CNN inputs keep the aspect ratio).

    `rects[i]` are (x0, y0, x1, y1) pixels of `images[i]`, clipped to it (crops.context_boxes).
    """
    problem = roi_problem(backend)
    if problem is not None:
        raise UnsupportedOperationError(f"ROI object embeddings are not available: {problem}; use crop mode")
    if len(images) != len(rects):
        raise ValueError(f"{len(images)} images but {len(rects)} lists of rects")
    inputs = [_input(backend, image) for image in images]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, pixels in enumerate(inputs):
        groups.setdefault(pixels.shape, []).append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(images)
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            part = members[start:start + batch_size]
            blocks = _pool_batch(backend, np.stack([inputs[i] for i in part]), [images[i].size for i in part],
                                 [rects[i] for i in part])
            for i, block in zip(part, blocks, strict=True):
                out[i] = block
    return out


def _pool_batch(backend: Backend, batch: np.ndarray, sizes: Sequence[tuple[int, int]],
                rects: Sequence[Sequence[Rect]]) -> list[np.ndarray]:
    """One forward pass of `batch`, then every image's rects pooled and put through the head."""
    import torch

    with backend.lock, torch.inference_mode():
        fmap = _feature_maps(backend, batch)
        _, _, rows, cols = fmap.cells.shape
        blocks = []
        for cells, (width, height), boxes in zip(fmap.cells, sizes, rects, strict=True):
            scale = torch.tensor([cols / width, rows / height, cols / width, rows / height])
            cell_rects = torch.tensor(list(boxes), dtype=torch.float32).reshape(-1, 4) * scale
            pooled = roi_average(cells.float(), cell_rects.to(cells.device))
            blocks.append(runtime.to_numpy(fmap.head(pooled.to(cells.dtype))))
        return blocks


def roi_average(cells: torch.Tensor, rects: torch.Tensor) -> torch.Tensor:
    """(C, h, w) map, (n, 4) rects in cell units -> (n, C): each rect's area-weighted cell average.

    Cell (i, j) covers [j, j+1) x [i, i+1); a cell partly inside a rect counts by the part
    inside, so a rect over the whole map gives exactly the global average (the model's own
    average pooling) and a rect smaller than a cell gives that cell. Rects must have positive area.
    """
    import torch

    _, rows, cols = cells.shape
    xs = torch.arange(cols, dtype=cells.dtype, device=cells.device)
    ys = torch.arange(rows, dtype=cells.dtype, device=cells.device)
    wx = (torch.minimum(rects[:, 2:3], xs + 1) - torch.maximum(rects[:, 0:1], xs)).clamp(min=0)  # (n, w)
    wy = (torch.minimum(rects[:, 3:4], ys + 1) - torch.maximum(rects[:, 1:2], ys)).clamp(min=0)  # (n, h)
    total = torch.einsum("nh,nw,chw->nc", wy, wx, cells)
    return total / (wy.sum(dim=1) * wx.sum(dim=1)).clamp(min=1e-12)[:, None]


def _input(backend: Backend, image: Image.Image) -> np.ndarray:
    """(3, H, W) float32 model input of the WHOLE image (no centre crop: boxes may lie anywhere).

    CNNs keep the aspect ratio (shorter side at the image path's scale, sides multiples of
    CNN_ALIGN); ViT / CLIP take their square input size (their position embeddings are fixed)."""
    if isinstance(backend, EfficientNetBackend):
        pixels = np.asarray(_resize(image, _aligned(image.size, RESIZE, CNN_ALIGN), Image.Resampling.BICUBIC),
                            dtype=np.float32)
        return ((pixels - MEAN) / STD).transpose(2, 0, 1)
    assert isinstance(backend, (VisionBackend, DualBackend))
    config = backend.model.config
    config = getattr(config, "vision_config", config)
    side = _processor_side(backend.processor, config)
    size = (side, side) if _patch_size(config) else _aligned(image.size, side, CNN_ALIGN)
    return _hf_pixels(backend, image, size)


def _feature_maps(backend: Backend, batch: np.ndarray) -> FeatureMap:
    """(n, C, h, w) last feature maps of a batch of `_input`s, and the model's head."""
    pixels = backend.image_tensor(batch)
    if isinstance(backend, EfficientNetBackend):
        # The 1280-channel head maps: what the pooled output averages.
        return FeatureMap(backend._states(pixels, need_head=True)[1], lambda pooled: pooled)
    assert isinstance(backend, (VisionBackend, DualBackend))
    model = backend.model
    size = (batch.shape[3], batch.shape[2])
    if isinstance(backend, DualBackend):
        # CLIP: patch grid; head = post_layernorm + visual_projection, as for its CLS token.
        vision = model.vision_model
        hidden = vision(pixel_values=pixels).last_hidden_state
        return FeatureMap(_grid(hidden, size, int(model.config.vision_config.patch_size)),
                          lambda pooled: model.visual_projection(vision.post_layernorm(pooled)))
    out = model(pixel_values=pixels)
    hidden = out.last_hidden_state
    if hidden.ndim == 4:  # a CNN's last stage, with its pooler's head (checked)
        return FeatureMap(hidden, _cnn_head(model, hidden, getattr(out, "pooler_output", None)))
    patch = _patch_size(model.config)
    if not patch:
        raise UnsupportedOperationError(f"{backend.model_id}: token outputs without a patch size in its config")
    return FeatureMap(_grid(hidden, size, patch), lambda pooled: pooled)  # ViT: mean of patch tokens


def _cnn_head(model: Any, hidden: torch.Tensor, pooler: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The head that maps the map's average to the model's pooled output: identity (ResNet, RegNet)
    or the final LayerNorm (ConvNeXt); UnsupportedOperationError when neither reproduces it."""
    import torch

    if pooler is None:
        return lambda pooled: pooled  # the backend then averages last_hidden_state itself
    full = hidden.mean(dim=(2, 3))
    target = pooler.reshape(pooler.shape[0], -1)
    norm = getattr(model, "layernorm", None)
    for head in (lambda pooled: pooled, norm):
        if head is not None and head(full).shape == target.shape and torch.allclose(
                head(full), target, rtol=_HEAD_RTOL, atol=_HEAD_ATOL):
            return head
    raise UnsupportedOperationError(
        f"{type(model).__name__}: its pooled output is not an average of the last feature map (plus a LayerNorm)")


def _grid(tokens: torch.Tensor, size: tuple[int, int], patch: int) -> torch.Tensor:
    """(n, tokens, d) ViT states -> (n, d, rows, cols) patch grids: the last rows*cols tokens (CLS
    and register tokens come first) in row-major order."""
    cols, rows = size[0] // patch, size[1] // patch
    return tokens[:, -rows * cols:].reshape(tokens.shape[0], rows, cols, -1).permute(0, 3, 1, 2)


def _hf_pixels(backend: VisionBackend | DualBackend, image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The whole image resized to `size` (no centre crop: boxes may lie anywhere), rescaled and
    normalised as the model's image processor does."""
    proc = backend.processor
    pixels: np.ndarray = np.asarray(_resize(image, size, Image.Resampling(getattr(proc, "resample", 3))), dtype=np.float32)
    if getattr(proc, "do_rescale", True):
        pixels = pixels * float(getattr(proc, "rescale_factor", 1 / 255))
    if getattr(proc, "do_normalize", True):
        pixels = (pixels - np.asarray(proc.image_mean, np.float32)) / np.asarray(proc.image_std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _resize(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    image = image if image.mode == "RGB" else image.convert("RGB")
    return image if image.size == size else image.resize(size, resample, reducing_gap=3.0)


def _aligned(size: tuple[int, int], side: int, align: int) -> tuple[int, int]:
    """(w, h) with the shorter side ~`side`, aspect kept, both rounded to multiples of `align`."""
    width, height = size
    scale = side / min(width, height)
    return (max(align, round(width * scale / align) * align), max(align, round(height * scale / align) * align))


def _patch_size(config: Any) -> int | None:
    patch = getattr(config, "patch_size", None)
    return int(patch) if isinstance(patch, int) else None


def _processor_side(processor: Any, config: Any) -> int:
    """The side of the square the model sees in image mode (crop size, height, or shortest edge
    over crop_pct), so objects appear at the scale the model was trained at."""
    if getattr(processor, "do_center_crop", False) and (height := _field(processor, "crop_size", "height")):
        return height
    if height := _field(processor, "size", "height"):
        return height
    if short := _field(processor, "size", "shortest_edge"):
        return round(short / float(getattr(processor, "crop_pct", None) or 1.0))
    return int(getattr(config, "image_size", 224))


def _field(processor: Any, attr: str, key: str) -> int | None:
    """processor.<attr>[key] for a SizeDict or a plain dict; None when absent."""
    size = getattr(processor, attr, None)
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else None
