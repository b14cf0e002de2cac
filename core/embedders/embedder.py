"""ModelEmbedder: batching, progress, L2 normalisation and SpaceInfo over a loaded Backend."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
from PIL import Image

from core.embedders.backend import Backend
from core.errors import UnsupportedOperationError
from core.linalg import l2_normalise
from core.types import Progress, SpaceInfo


def chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most `size` covering range(n)."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class ModelEmbedder:
    """Implements core.embedders.base.PreprocessingEmbedder (and so Embedder).

    Cheap to create: the model lives in the shared, cached Backend; this object only adds the
    batch size and which side (image or text) `modality` means.
    """

    def __init__(self, backend: Backend, modality: Literal["image", "text"], batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.backend = backend
        self.name = backend.name
        self.model_id = backend.model_id
        self.layer = backend.layer
        self.dim = backend.dim
        # Typed str (not Literal) because Embedder declares a plain, mutable `modality: str`.
        self.modality: str = modality
        self._side: Literal["image", "text"] = modality
        self.text_side = backend.has_texts
        self.batch_size = batch_size
        self.device = backend.device
        self.precision = backend.precision

    def __repr__(self) -> str:
        return (
            f"ModelEmbedder(name={self.name!r}, model_id={self.model_id!r}, dim={self.dim}, "
            f"modality={self.modality!r}, device={self.device!r}, precision={self.precision!r})"
        )

    def space_info(self) -> SpaceInfo:
        """The space these vectors belong to; `layer` is None for the pooled output."""
        return SpaceInfo(
            name=self.name,
            dim=self.dim,
            modality=self._side,
            model=self.model_id,
            layer=self.layer if self.layer not in (None, "pooled") else None,
            text_side=self.text_side,
            description=self.backend.description,
        )

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """n PIL images -> (n, 3, H, W) float32 model input. Pure CPU (PIL / numpy), thread-safe."""
        return self.backend.preprocess_images(images)

    def embed_preprocessed(self, batch: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """(n, 3, H, W) float32 from `preprocess` -> (n, dim) float32, unit rows; batched."""
        n = len(batch)
        out = np.empty((n, self.dim), dtype=np.float32)
        for part in chunks(n, self.batch_size):
            out[part] = l2_normalise(self.backend.forward_images(batch[part]))
            if progress is not None:
                progress(part.stop, n)
        return out

    def embed_images(self, images: Sequence[Image.Image], progress: Progress | None = None) -> np.ndarray:
        """n PIL images -> (n, dim) float32, unit rows.

        One helper thread preprocesses the next batch while the model runs the current one.
        """
        if not self.backend.has_images:
            self.backend.preprocess_images(images)  # raises UnsupportedOperationError
        images = list(images)
        n = len(images)
        out = np.empty((n, self.dim), dtype=np.float32)
        parts = list(chunks(n, self.batch_size))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-preprocess") as pool:
            pending = pool.submit(self.preprocess, images[parts[0]]) if parts else None
            for i, part in enumerate(parts):
                assert pending is not None
                pixels = pending.result()
                if i + 1 < len(parts):
                    pending = pool.submit(self.preprocess, images[parts[i + 1]])
                out[part] = l2_normalise(self.backend.forward_images(pixels))
                if progress is not None:
                    progress(part.stop, n)
        return out

    def embed_texts(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """n texts -> (n, dim) float32, unit rows. Raises UnsupportedOperationError without a text side.

        Texts are batched in length order so each batch pads to similar lengths.
        """
        if not self.backend.has_texts:
            raise UnsupportedOperationError(
                f"space {self.name!r} ({self.model_id}) has no text side: free text cannot be embedded into it"
            )
        texts = [str(t) for t in texts]
        n = len(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((n, self.dim), dtype=np.float32)
        for part in chunks(n, self.batch_size):
            idx = order[part]
            out[idx] = l2_normalise(self.backend.forward_texts([texts[i] for i in idx]))
            if progress is not None:
                progress(part.stop, n)
        return out
