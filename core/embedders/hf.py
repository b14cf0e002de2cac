"""Hugging Face transformers backends: CLIP-like dual encoders, vision backbones, text encoders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from PIL import Image

from core.embedders import pooling, runtime
from core.embedders.backend import Backend, to_rgb
from core.embedders.naming import how_to_provide, parse_layer
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
        if parse_layer(self.layer) is not None:
            raise ValueError("layer 'hidden:<int>' applies to vision backbones and text encoders, not CLIP-like models")
        self.model = self.prepare(model)
        self.processor = processor
        self.tokenizer = tokenizer
        self.max_tokens = _max_tokens(tokenizer, getattr(model.config, "text_config", model.config))

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
    family = "image"

    def __init__(self, model: Any, processor: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.index = parse_layer(self.layer)
        self.model = self.prepare(model)
        self.processor = processor

    def forward_images(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with self.lock, torch.inference_mode():
            out = self.model(pixel_values=self.image_tensor(batch), output_hidden_states=self.index is not None)
            if self.index is not None:
                feats = pooling.pool_hidden(_hidden(out, self.index), pooling.MAX_HIDDEN_DIM)
            elif getattr(out, "pooler_output", None) is not None:
                feats = pooling.flatten_pooled(out.pooler_output)
            else:  # documented: models without a pooler give their last hidden state's mean
                feats = pooling.pool_hidden(out.last_hidden_state, pooling.MAX_HIDDEN_DIM)
            return runtime.to_numpy(feats)


class TextBackend(_TextMixin):
    """A text encoder: attention-masked mean of the last (or a chosen) hidden state."""

    has_texts = True
    family = "text"

    def __init__(self, model: Any, tokenizer: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.index = parse_layer(self.layer)
        self.model = self.prepare(model)
        self.tokenizer = tokenizer
        self.max_tokens = _max_tokens(tokenizer, model.config)

    def forward_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with self.lock, torch.inference_mode():
            inputs = self.tokenize(texts)
            out = self.model(**inputs, output_hidden_states=self.index is not None)
            states = out.last_hidden_state if self.index is None else _hidden(out, self.index)
            feats = pooling.cap_channels(pooling.masked_mean(states, inputs["attention_mask"]), pooling.MAX_HIDDEN_DIM)
            return runtime.to_numpy(feats)


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
