"""The embedder protocol: anything that turns images or texts into L2-normalised float32 vectors."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

# progress(done, total): called after each batch.
ProgressFn = Callable[[int, int], None]


@runtime_checkable
class Embedder(Protocol):
    """A loaded model. All outputs are (n, dim) float32 with unit L2 norm per row."""

    name: str  # the space name it produces vectors for (e.g. "clip-vit-base-patch32")
    model_id: str  # hub name or local directory it was loaded from
    dim: int
    modality: str  # "image" or "text": what embed_batch takes
    text_side: bool  # True when embed_texts puts texts in the same space (CLIP, text encoders)

    def embed_images(
        self, images: Sequence[Image.Image], progress: ProgressFn | None = None
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised. Raises UnsupportedOperationError for text models."""
        ...

    def embed_texts(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """(n, dim) float32, L2-normalised. Raises UnsupportedOperationError without a text side."""
        ...
