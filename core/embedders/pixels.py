"""A model-free image embedder: the raw gray pixels of each image, downscaled and standardised.

The detection demo's fast space (seconds on 2 cores, no weights): like the classification
demo's "pixels" space it is a cheap baseline, good enough for digits on light cards, where
neighbours in pixel space are mostly the same digit. Its space is stored as modality "vector"
with no model, so the dashboard does not offer query-by-image or text search on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from core.errors import UnsupportedOperationError
from core.linalg import l2_normalise
from core.types import Progress, SpaceInfo

PIXELS_SIDE = 16  # 16 x 16 gray values: 256-d


class PixelEmbedder:
    """Embedder protocol over raw pixels: gray, resized to side x side, zero mean, unit L2 norm."""

    model_id = "raw-pixels"
    text_side = False

    def __init__(self, side: int = PIXELS_SIDE, name: str = "pixels") -> None:
        if side < 2:
            raise ValueError(f"side must be >= 2, got {side}")
        self.side = side
        self.name = name
        self.dim = side * side

    @property
    def modality(self) -> str:
        return "image"

    def embed_images(self, images: Sequence[Image.Image], progress: Progress | None = None) -> np.ndarray:
        """(n, side * side) float32, L2-normalised; a flat image becomes the zero vector."""
        rows = np.zeros((len(images), self.dim), dtype=np.float32)
        for i, image in enumerate(images):
            gray = image.convert("L").resize((self.side, self.side), Image.Resampling.BOX)
            values = np.asarray(gray, dtype=np.float32).ravel()
            # Zero mean: a card's brightness or the photo's exposure should not decide neighbours.
            rows[i] = values - values.mean()
        if progress is not None:
            progress(len(images), len(images))
        return l2_normalise(rows)

    def embed_texts(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        raise UnsupportedOperationError(f"the {self.name!r} space (raw pixels) cannot embed text")

    def space_info(self) -> SpaceInfo:
        return SpaceInfo(self.name, self.dim, "vector",
                         description=f"Raw gray pixels of each crop, {self.side}x{self.side}, zero mean")
