"""The embedder protocol: anything that turns images or texts into L2-normalised float32 vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from core.types import Progress, SpaceInfo


@runtime_checkable
class Embedder(Protocol):
    """A loaded model. All outputs are (n, dim) float32 with unit L2 norm per row.

    progress(done, total) of the embed_* methods counts inputs embedded, called after each batch."""

    name: str  # the space name it produces vectors for (e.g. "clip-vit-base-patch32")
    model_id: str  # hub name or local directory it was loaded from
    dim: int
    text_side: bool  # True when embed_texts puts texts in the same space (CLIP, text encoders)

    # A read-only property so implementations may narrow it to Literal["image", "text"].
    @property
    def modality(self) -> str:
        """What the model embeds natively: "image" or "text"."""
        ...

    def embed_images(
        self, images: Sequence[Image.Image], progress: Progress | None = None
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised. Raises UnsupportedOperationError for text models."""
        ...

    def embed_texts(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """(n, dim) float32, L2-normalised. Raises UnsupportedOperationError without a text side."""
        ...

    def space_info(self) -> SpaceInfo:
        """The embedding space this embedder writes (name, dim, modality, model, layer, text_side)."""
        ...


@runtime_checkable
class PreprocessingEmbedder(Embedder, Protocol):
    """An image embedder whose CPU preprocessing is separable from the model's forward pass.

    The ingest pipeline calls `preprocess` in worker threads (PIL / numpy release the GIL for
    most of the work) while the model runs `embed_preprocessed` on the previous batch;
    `embed_images(images)` equals `embed_preprocessed(preprocess(images))`.
    """

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 3, H, W) float32, ready for the model (resized, cropped, normalised)."""
        ...

    def embed_preprocessed(
        self, batch: np.ndarray, progress: Progress | None = None
    ) -> np.ndarray:
        """(n, 3, H, W) float32 from `preprocess` -> (n, dim) float32, L2-normalised."""
        ...
