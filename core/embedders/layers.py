"""Several layers of one model from one forward pass: layer-list parsing and the LayerEmbedders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from core.embedders import runtime
from core.embedders.embedder import ModelEmbedder, chunks
from core.embedders.loader import MODALITIES, load_backend, side
from core.embedders.naming import parse_layer
from core.errors import BadInputError, UnsupportedOperationError
from core.linalg import l2_normalise
from core.types import SpaceInfo

LAYER_FORMS = "'pooled' or 'hidden:<int>' (e.g. hidden:4, hidden:-2)"


def parse_layers(text: str) -> list[str]:
    """"hidden:4, hidden:8,pooled" -> ["hidden:4", "hidden:8", "pooled"], in the order given.

    BadInputError naming the bad part and the allowed forms, or the repeated layer.
    """
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise BadInputError(f"no layers given: list one or more of {LAYER_FORMS}, separated by commas")
    seen: dict[int | None, str] = {}
    for part in parts:
        try:
            index = parse_layer(part)
        except ValueError:
            raise BadInputError(f"layer {part!r} of {text!r} is not a layer spec: use {LAYER_FORMS}") from None
        if index in seen:
            raise BadInputError(f"layer {part!r} is listed twice in {text!r} (as {seen[index]!r})")
        seen[index] = part
    return parts


class LayerEmbedders:
    """One model's layers, embedded together: one forward pass gives one block per layer.

    `embedders[i]` is the ordinary ModelEmbedder of layer i (its space_info, and exactly the
    vectors it would give alone, batch for batch); the embed_* methods return a list of
    (n, dim_i) float32 L2-normalised blocks in the same order.
    """

    def __init__(self, embedders: Sequence[ModelEmbedder]) -> None:
        if not embedders:
            raise ValueError("LayerEmbedders needs at least one layer")
        self.embedders = tuple(embedders)
        self.lead = self.embedders[0]  # preprocessing, batch size and modality are shared
        self.modality = self.lead.modality
        self.indices = [e.backend.index for e in self.embedders]

    def space_infos(self) -> list[SpaceInfo]:
        """The space of each layer (names from naming.space_name_for), in the order asked."""
        return [e.space_info() for e in self.embedders]

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """n PIL images -> (n, 3, H, W) float32 model input (the same for every layer)."""
        return self.lead.preprocess(images)

    def embed_preprocessed(self, batch: np.ndarray) -> list[np.ndarray]:
        """(n, 3, H, W) float32 from `preprocess` -> one (n, dim_i) float32 unit block per layer."""
        return self._batched(len(batch), lambda part: self.lead.backend.forward_images_layers(
            batch[part], self.indices))

    def embed_images(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """n PIL images -> one (n, dim_i) float32 unit block per layer."""
        if not self.lead.backend.has_images:
            self.lead.backend.preprocess_images(images)  # raises UnsupportedOperationError
        return self.embed_preprocessed(self.preprocess(list(images)))

    def embed_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        """n texts -> one (n, dim_i) float32 unit block per layer (batched in length order, as
        ModelEmbedder.embed_texts, so the batches and the vectors are the same)."""
        if not self.lead.backend.has_texts:
            raise UnsupportedOperationError(f"{self.lead.model_id} has no text side: it cannot embed texts")
        texts = [str(t) for t in texts]
        order = np.argsort([len(t) for t in texts], kind="stable")
        blocks = self._batched(len(texts), lambda part: self.lead.backend.forward_texts_layers(
            [texts[i] for i in order[part]], self.indices))
        out = [np.empty_like(block) for block in blocks]
        for block, placed in zip(blocks, out, strict=True):
            placed[order] = block
        return out

    def _batched(self, n: int, forward: Callable[[slice], list[np.ndarray]]) -> list[np.ndarray]:
        """Run `forward` batch_size rows at a time: (n, dim_i) unit blocks, one per layer."""
        out = [np.empty((n, e.dim), dtype=np.float32) for e in self.embedders]
        for part in chunks(n, self.lead.batch_size):
            for block, raw in zip(out, forward(part), strict=True):
                block[part] = l2_normalise(raw)
        return out


def load_layers(
    model: str,
    layers: Sequence[str],
    modality: Literal["image", "text", "auto"] = "auto",
    *,
    device: str = "auto",
    batch_size: int = 32,
    precision: runtime.Precision = "fp32",
    allowed_roots: Sequence[Path] | None = None,
    allow_pickled: bool = False,
) -> LayerEmbedders:
    """LayerEmbedders for `layers` (parse_layers' specs) of `model`: the model is loaded once
    (load_embedder's arguments and errors). BadInputError when the model has no such layer
    (naming the specs it supports) or two specs name the same hidden state (hidden:-1 and
    hidden:<last>)."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    first = load_backend(model, "pooled", device=device, precision=precision, allowed_roots=allowed_roots,
                         allow_pickled=allow_pickled)
    if not first.hidden_layers and any(parse_layer(layer) is not None for layer in layers):
        raise BadInputError(f"{first.model_id} offers only its pooled output: use --layer pooled (hidden "
                            "layers are offered by vision backbones, text encoders and efficientnet-lite0)")
    backends = [load_backend(model, layer, device=device, precision=precision, allowed_roots=allowed_roots,
                             allow_pickled=allow_pickled) for layer in layers]
    embedders = [ModelEmbedder(b, side(b, modality), batch_size) for b in backends]
    _check_distinct(embedders, layers)
    return LayerEmbedders(embedders)


def _check_distinct(embedders: Sequence[ModelEmbedder], layers: Sequence[str]) -> None:
    """hidden:-1 and hidden:12 of a 13-state model are one layer under two names: refuse."""
    indices = [e.backend.index for e in embedders]
    if not (any(i is not None and i < 0 for i in indices) and any(i is not None and i >= 0 for i in indices)):
        return  # one sign only: parse_layers already refused repeats
    count = embedders[0].backend.state_count()
    resolved: dict[int, str] = {}
    for index, layer in zip(indices, layers, strict=True):
        if index is None:
            continue
        if index % count in resolved:
            raise BadInputError(f"layers {resolved[index % count]!r} and {layer!r} are the same hidden state "
                                f"of {embedders[0].model_id} (it has {count}: hidden:0..hidden:{count - 1})")
        resolved[index % count] = layer
