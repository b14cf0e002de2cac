"""The loaded-model layer under every embedder: one torch model, its preprocessing, raw features."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from core.embedders import runtime
from core.embedders.naming import parse_layer, space_name_for
from core.errors import UnsupportedOperationError

if TYPE_CHECKING:
    import torch

# Size of the blank image / text used to probe a freshly loaded model for its output size.
_PROBE_SIZE = 64


class Backend:
    """A model loaded once per (model, layer, device, precision) and shared by embedders.

    Subclasses set `has_images` / `has_texts` and implement the matching methods; every
    forward method returns raw (n, dim) float32 features (normalisation happens in the
    embedder). `lock` serialises forward passes: two threads running one model at once only
    fight for the same cores. `index` is the hidden-state index of `layer` (None: pooled);
    subclasses with `hidden_layers` offer "hidden:<i>" specs, and their `*_layers` methods
    return several layers from one forward pass.
    """

    has_images = False
    has_texts = False
    hidden_layers = False  # True when "hidden:<i>" layer specs are offered
    family = "model"

    def __init__(self, *, model_id: str, name: str, layer: str | None, device: str, precision: str) -> None:
        self.model_id = model_id
        self.name = name
        self.layer = layer
        self.index = parse_layer(layer)
        self.device = device
        self.precision = precision
        self.channels_last = False
        self.dim = 0
        self.lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"{self.family} embeddings ({self.dim}-d) from {self.model_id}" + (
            f", layer {self.layer}" if self.layer else ""
        )

    def preprocess_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images -> (n, 3, H, W) float32 model input."""
        raise UnsupportedOperationError(f"{self.model_id} is a text model; it cannot embed images")

    def forward_images(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, H, W) float32 -> (n, dim) float32 raw features."""
        raise UnsupportedOperationError(f"{self.model_id} is a text model; it cannot embed images")

    def forward_texts(self, texts: Sequence[str]) -> np.ndarray:
        """n texts -> (n, dim) float32 raw features."""
        raise UnsupportedOperationError(
            f"{self.model_id} has no text side: free text cannot be embedded into its space"
        )

    def forward_images_layers(self, batch: np.ndarray, indices: Sequence[int | None]) -> list[np.ndarray]:
        """(n, 3, H, W) float32 -> one (n, dim_l) float32 raw block per hidden-state index (None:
        pooled), from ONE forward pass. Without hidden layers only [None] is accepted."""
        self._only_pooled(indices)
        return [self.forward_images(batch)]

    def forward_texts_layers(self, texts: Sequence[str], indices: Sequence[int | None]) -> list[np.ndarray]:
        """n texts -> one (n, dim_l) float32 raw block per index (None: pooled), one forward pass."""
        self._only_pooled(indices)
        return [self.forward_texts(texts)]

    def _only_pooled(self, indices: Sequence[int | None]) -> None:
        if list(indices) != [None]:
            raise ValueError(f"{self.model_id} offers only its pooled output, got layer indices {list(indices)}")

    def for_layer(self, layer: str | None) -> Backend:
        """This loaded model seen at another layer: shares the torch model, its preprocessing and
        the lock (no second copy in memory); probed for that layer's size."""
        view = copy.copy(self)
        view.layer, view.index = layer, parse_layer(layer)
        view.name = space_name_for(self.model_id, layer)
        view.check_layer()
        view.probe()
        return view

    def check_layer(self) -> None:
        """ValueError when this backend cannot give `layer` (only pooled without hidden_layers)."""
        if self.index is not None and not self.hidden_layers:
            raise ValueError(f"{self.model_id} offers only its pooled output (layer None or 'pooled'), "
                             f"not {self.layer!r}")

    def state_count(self) -> int:
        """How many hidden states ("hidden:0".."hidden:<count-1>") the model has."""
        raise UnsupportedOperationError(f"{self.model_id} offers only its pooled output")

    def probe(self) -> int:
        """Run one blank input through the model to learn (and check) its output size."""
        dims = set()
        if self.has_images:
            dims.add(self.forward_images(self.preprocess_images([blank_image()])).shape[1])
        if self.has_texts:
            dims.add(self.forward_texts(["probe"]).shape[1])
        if len(dims) != 1:
            raise ValueError(f"{self.model_id}: image and text features differ in size {sorted(dims)}")
        self.dim = int(dims.pop())
        return self.dim

    def prepare(self, model: Any) -> Any:
        """eval mode, on the device, channels_last for conv nets, int8 Linear layers if asked."""
        import torch

        model = model.eval().to(self.device)
        if runtime.has_conv(model):
            # NHWC lets oneDNN pick its fast convolution kernels on CPU (and tensor cores on GPU).
            self.channels_last = True
            model = model.to(memory_format=torch.channels_last)
        if self.precision == "int8":
            model = runtime.quantize_linear(model)
        return model

    def image_tensor(self, batch: np.ndarray) -> torch.Tensor:
        """(n, 3, H, W) float32 numpy -> a tensor on the device in the model's memory format."""
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor


def blank_image() -> Image.Image:
    """The grey image used to probe a model."""
    return Image.new("RGB", (_PROBE_SIZE, _PROBE_SIZE), (127, 127, 127))


def to_rgb(images: Sequence[Image.Image]) -> list[Image.Image]:
    """Grey, palette, RGBA, CMYK... -> RGB (models take 3 channels; alpha is dropped)."""
    return [im if im.mode == "RGB" else im.convert("RGB") for im in images]
