"""Object embeddings: one vector per detection box, by cropping (any image model) or ROI pooling (one pass).

Spaces: crop vectors are the model's own image vectors of the crops, so they share the image
space (same name, dim and meaning: objects and whole images are comparable, CLIP text search
works on objects). ROI vectors come from the whole image's feature map and are NOT the same
function of the pixels (the context around the box leaks in, and ViTs pool patch tokens instead
of their CLS token), so they get their own space, `<image space>-roi`, of the same dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from core.config import Settings
from core.datasets.crops import BoxLike, context_boxes, pixel_rect
from core.datasets.images import load_image, shown
from core.embedders.base import Embedder
from core.embedders.embedder import ModelEmbedder
from core.embedders.roi import roi_features, roi_problem
from core.errors import UnsupportedOperationError
from core.linalg import l2_normalise
from core.types import SpaceInfo

ObjectMode = Literal["crop", "roi"]
OBJECT_MODES: tuple[str, ...] = ("crop", "roi")
# Crop is the default: it works with every image model (CLIP included, so text search reaches
# objects) and puts objects in the image space; ROI is the fast option for many boxes per image.
DEFAULT_MODE: ObjectMode = "crop"
ROI_SUFFIX = "-roi"


def check_mode(mode: str) -> ObjectMode:
    """`mode` as an ObjectMode; ValueError naming the allowed modes."""
    if mode not in OBJECT_MODES:
        raise ValueError(f"object mode must be one of {OBJECT_MODES}, got {mode!r}")
    return "crop" if mode == "crop" else "roi"


def roi_unsupported(embedder: Embedder) -> str | None:
    """Why `embedder` cannot embed objects by ROI pooling (None when it can).

    Supported: efficientnet-lite0, HF CNN backbones whose pooled output is the average of the
    last stage (ResNet, RegNet, ConvNeXt with its final LayerNorm: checked on each pass), HF ViT
    patch grids (ViT, DINOv2, ...: the mean of the box's patch tokens) and CLIP vision towers
    (patch tokens -> post-LayerNorm -> visual projection); pooled layer only.
    """
    if not isinstance(embedder, ModelEmbedder):
        return f"{type(embedder).__name__} does not expose a model feature map"
    return roi_problem(embedder.backend)


def object_space_info(embedder: Embedder, mode: str) -> SpaceInfo:
    """The space object vectors of `mode` go to: the image space for crops, `<name>-roi` for ROI."""
    info = embedder.space_info()
    if check_mode(mode) == "crop":
        return info
    # No text side: CLIP's text tower was trained against the CLS token, not averaged patch tokens.
    return replace(info, name=info.name + ROI_SUFFIX, text_side=False,
                   description=f"object ROI-pooled {info.description}".strip())


def embed_objects(embedder: Embedder, uri: str | Path, boxes: Sequence[BoxLike], *, mode: str = DEFAULT_MODE,
                  margin: float = 0.1, settings: Settings) -> np.ndarray:
    """(len(boxes), dim) float32 L2-normalised vectors of the boxes of one image (ONE decode).

    Errors: load_image's BadInputError for the file; BadBoxError (with the box's index) for a box
    empty once clipped; UnsupportedOperationError for ROI on a model without it (roi_unsupported).
    """
    check_mode(mode)
    image = load_image(uri, settings)
    return embed_image_objects(embedder, image, boxes, mode=mode, margin=margin, name=shown(uri))


def embed_image_objects(embedder: Embedder, image: Image.Image, boxes: Sequence[BoxLike], *,
                        mode: str = DEFAULT_MODE, margin: float = 0.1, name: str = "the image") -> np.ndarray:
    """embed_objects on an already decoded image (the pipeline decodes once for the image point
    and its objects). `name` names the image in errors."""
    return embed_many_objects(embedder, [image], [boxes], mode=mode, margin=margin, names=[name])[0]


def embed_many_objects(embedder: Embedder, images: Sequence[Image.Image], boxes: Sequence[Sequence[BoxLike]], *,
                       mode: str = DEFAULT_MODE, margin: float = 0.1,
                       names: Sequence[str] | None = None) -> list[np.ndarray]:
    """The objects of several decoded images, batched across images: one (len(boxes[i]), dim)
    float32 unit block per image. Crop: every crop in embed_images' batches; ROI: the images'
    forward passes batched (batch-1 passes of a ViT are ~3x slower per image on CPU)."""
    check_mode(mode)
    if not images:
        return []
    if len(images) != len(boxes):
        raise ValueError(f"{len(images)} images but {len(boxes)} lists of boxes")
    labels = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    if mode == "roi" and (problem := roi_unsupported(embedder)) is not None:
        raise UnsupportedOperationError(f"ROI object embeddings are not available: {problem}; use crop mode")
    rects = [context_boxes(image.size, group, margin, name=label)
             for image, group, label in zip(images, boxes, labels, strict=True)]
    if mode == "roi":
        assert isinstance(embedder, ModelEmbedder)
        todo = [i for i, group in enumerate(rects) if group]
        raw = roi_features(embedder.backend, [images[i] for i in todo], [rects[i] for i in todo],
                           batch_size=embedder.batch_size)
        out = [np.zeros((0, embedder.dim), dtype=np.float32) for _ in images]
        for i, block in zip(todo, raw, strict=True):
            out[i] = l2_normalise(block)
        return out
    crops = [image.crop(pixel_rect(rect)) for image, group in zip(images, rects, strict=True) for rect in group]
    vectors = embedder.embed_images(crops) if crops else np.zeros((0, embedder.dim), dtype=np.float32)
    return np.split(vectors, np.cumsum([len(group) for group in rects])[:-1])
