"""Hugging Face transformers backends: CLIP-like dual encoders, vision backbones, text encoders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from PIL import Image

from core.embedders import pooling, runtime
from core.embedders.backend import Backend, blank_image, to_rgb
from core.embedders.naming import how_to_provide
from core.errors import BadInputError, ModelLoadError

logger = logging.getLogger(__name__)

Kind = Literal["dual", "image", "text"]
_MAX_TOKENS = 512


def detect_kind(config: Any) -> Kind:
    """"dual" for CLIP-like configs (text + vision towers), "image" for vision backbones, else "text"."""
    if hasattr(config, "text_config") and hasattr(config, "vision_config"):
        return "dual"
    if hasattr(config, "num_channels") or hasattr(config, "image_size"):
        return "image"
    return "text"


def _features(output: Any) -> Any:
    """get_*_features returns a tensor in transformers 4.x, a ModelOutput (projected pooler) in 5.x."""
    if hasattr(output, "pooler_output"):
        return output.pooler_output
    if isinstance(output, tuple):
        return output[1]
    return output


def _hidden(output: Any, index: int) -> Any:
    states = output.hidden_states
    if not -len(states) <= index < len(states):
        raise BadInputError(
            f"layer 'hidden:{index}' is out of range: this model has {len(states)} hidden states "
            f"(use 0..{len(states) - 1} or -{len(states)}..-1)"
        )
    return states[index]


class _ImageMixin(Backend):
    processor: Any

    def preprocess_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, 3, 1, 1), dtype=np.float32)
        pixels = self.processor(images=to_rgb(images), return_tensors="np")["pixel_values"]
        return np.ascontiguousarray(pixels, dtype=np.float32)


class _TextMixin(Backend):
    tokenizer: Any
    max_tokens: int = _MAX_TOKENS

    def tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        return {k: v.to(self.device) for k, v in batch.items()}


def _max_tokens(tokenizer: Any, config: Any) -> int:
    limits = [_MAX_TOKENS, getattr(config, "max_position_embeddings", _MAX_TOKENS)]
    if isinstance(getattr(tokenizer, "model_max_length", None), int):
        limits.append(tokenizer.model_max_length)
    return int(min(limits))


class DualBackend(_ImageMixin, _TextMixin):
    """CLIP and friends: projected image and text features in one joint space."""

    has_images = True
    has_texts = True
    family = "joint image-text"

    def __init__(self, model: Any, processor: Any, tokenizer: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.check_layer()
        self.model = self.prepare(model)
        self.processor = processor
        self.tokenizer = tokenizer
        self.max_tokens = _max_tokens(tokenizer, getattr(model.config, "text_config", model.config))

    def check_layer(self) -> None:
        if self.index is not None:
            raise ValueError("layer 'hidden:<int>' applies to vision backbones and text encoders, not CLIP-like models")

    def forward_images(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with self.lock, torch.inference_mode():
            return runtime.to_numpy(_features(self.model.get_image_features(pixel_values=self.image_tensor(batch))))

    def forward_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with self.lock, torch.inference_mode():
            inputs = self.tokenize(texts)
            inputs.pop("token_type_ids", None)
            return runtime.to_numpy(_features(self.model.get_text_features(**inputs)))


class VisionBackend(_ImageMixin):
    """A vision backbone: pooler_output (or a hidden state averaged over space / tokens)."""

    has_images = True
    hidden_layers = True
    family = "image"

    def __init__(self, model: Any, processor: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = self.prepare(model)
        self.processor = processor

    def forward_images(self, batch: np.ndarray) -> np.ndarray:
        return self.forward_images_layers(batch, [self.index])[0]

    def forward_images_layers(self, batch: np.ndarray, indices: Sequence[int | None]) -> list[np.ndarray]:
        import torch

        # One code path for one layer and for several: `--layers hidden:1` gives exactly `--layer hidden:1`.
        hidden = any(index is not None for index in indices)
        with self.lock, torch.inference_mode():
            out = self.model(pixel_values=self.image_tensor(batch), output_hidden_states=hidden)
            return [runtime.to_numpy(_vision_features(out, index)) for index in indices]

    def state_count(self) -> int:
        import torch

        with self.lock, torch.inference_mode():
            pixels = self.image_tensor(self.preprocess_images([blank_image()]))
            return len(self.model(pixel_values=pixels, output_hidden_states=True).hidden_states)


def _vision_features(out: Any, index: int | None) -> Any:
    """(n, d) features of one layer of a vision backbone's output."""
    if index is not None:
        return pooling.pool_hidden(_hidden(out, index), pooling.MAX_HIDDEN_DIM)
    if getattr(out, "pooler_output", None) is not None:
        return pooling.flatten_pooled(out.pooler_output)
    # documented: models without a pooler give their last hidden state's mean
    return pooling.pool_hidden(out.last_hidden_state, pooling.MAX_HIDDEN_DIM)


class TextBackend(_TextMixin):
    """A text encoder: attention-masked mean of the last (or a chosen) hidden state."""

    has_texts = True
    hidden_layers = True
    family = "text"

    def __init__(self, model: Any, tokenizer: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = self.prepare(model)
        self.tokenizer = tokenizer
        self.max_tokens = _max_tokens(tokenizer, model.config)

    def forward_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.forward_texts_layers(texts, [self.index])[0]

    def forward_texts_layers(self, texts: Sequence[str], indices: Sequence[int | None]) -> list[np.ndarray]:
        import torch

        hidden = any(index is not None for index in indices)
        with self.lock, torch.inference_mode():
            inputs = self.tokenize(texts)
            out = self.model(**inputs, output_hidden_states=hidden)
            mask = inputs["attention_mask"]
            return [runtime.to_numpy(pooling.cap_channels(pooling.masked_mean(
                out.last_hidden_state if index is None else _hidden(out, index), mask), pooling.MAX_HIDDEN_DIM))
                for index in indices]

    def state_count(self) -> int:
        import torch

        with self.lock, torch.inference_mode():
            return len(self.model(**self.tokenize(["probe"]), output_hidden_states=True).hidden_states)


def pretrained(loader: Any, source: str, model_id: str, **kw: Any) -> Any:
    """`loader.from_pretrained(source)`, turning "not found / offline / unsupported" into ModelLoadError."""
    try:
        return loader.from_pretrained(source, **kw)
    except (OSError, ValueError, KeyError, ImportError) as e:
        text = str(e).strip()
        reason = text.splitlines()[0][:300] if text else type(e).__name__
        raise ModelLoadError(f"cannot load model {model_id!r} ({reason}); {how_to_provide(model_id)}") from e


def load_hf(source: str, *, safetensors_only: bool = False, **kw: Any) -> Backend:
    """Load config, model and processor / tokenizer from `source` (a local dir or hub id).

    The config decides the kind: CLIP-like (text + vision towers), vision backbone, or text.
    safetensors_only: never fall back to pickled weights (pytorch_model.bin) for the model.
    """
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

    model_id = kw["model_id"]
    kind = detect_kind(pretrained(AutoConfig, source, model_id))
    model = pretrained(AutoModel, source, model_id, **({"use_safetensors": True} if safetensors_only else {}))
    if kind == "dual":
        processor = pretrained(AutoImageProcessor, source, model_id, backend="pil")
        return DualBackend(model, processor, pretrained(AutoTokenizer, source, model_id), **kw)
    if kind == "image":
        return VisionBackend(model, pretrained(AutoImageProcessor, source, model_id, backend="pil"), **kw)
    return TextBackend(model, pretrained(AutoTokenizer, source, model_id), **kw)
