"""Draws the detection demo's scenes: sklearn's handwritten digits as cards on skimage's bundled photos.

Everything drawn is real bundled data (no download): the backgrounds are crops of skimage.data
photographs, the objects sklearn's 8x8 digit scans upscaled to 24-64 px and printed dark on a
light card, as a digit on a sign or a sticker would appear in a photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from core.demo_detection_boxes import SIZE
from core.demo_detection_scenes import Scene

# skimage.data photographs bundled with the package (no pooch download); gray ones become RGB.
BACKGROUNDS: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel",
    "coins", "moon", "clock", "hubble_deep_field", "immunohistochemistry",
)


@dataclass(frozen=True)
class Digits:
    """sklearn's digits: images (n, 8, 8) float in [0, 16] and their classes (n,) int."""

    images: np.ndarray
    target: np.ndarray


@lru_cache(maxsize=1)
def digits() -> Digits:
    """The 1,797 digits bundled with scikit-learn."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return Digits(np.asarray(data.images, dtype=np.float64), np.asarray(data.target, dtype=np.int64))


@lru_cache(maxsize=len(BACKGROUNDS))
def background(index: int) -> np.ndarray:
    """Photo BACKGROUNDS[index] as (h, w, 3) uint8."""
    import skimage.data

    photo = np.asarray(getattr(skimage.data, BACKGROUNDS[index])())
    if photo.ndim == 2:
        photo = np.repeat(photo[:, :, None], 3, axis=2)
    return np.ascontiguousarray(photo[:, :, :3]).astype(np.uint8)


def background_shapes() -> list[tuple[int, int]]:
    """(height, width) of every background photo, in BACKGROUNDS order."""
    return [(int(background(i).shape[0]), int(background(i).shape[1])) for i in range(len(BACKGROUNDS))]


def render(scene: Scene, seed: int = 0) -> Image.Image:
    """The scene as a SIZE x SIZE RGB image: its background crop with every true object drawn
    (later objects over earlier ones where they overlap). Deterministic for (scene, seed)."""
    x, y, side = scene.crop
    crop = Image.fromarray(background(scene.background)[y:y + side, x:x + side])
    canvas = np.asarray(crop.resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.float64).copy()
    rng = np.random.default_rng([seed, int(scene.name.split("-")[1].split(".")[0])])
    for obj in scene.objects:
        x0, y0, x1, y1 = (int(round(v)) for v in obj.box)
        canvas[y0:y1, x0:x1] = _card(digits().images[obj.digit], x1 - x0, y1 - y0, rng)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="RGB")


def _card(digit: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(height, width, 3) float: the digit's strokes in a dark ink on a light card of that size."""
    # Upscale the ink (0..16) smoothly; a 1/8 margin keeps the strokes off the card's edge.
    ink = np.asarray(Image.fromarray((digit / 16.0 * 255).astype(np.uint8), mode="L")
                     .resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    paper = rng.uniform(200, 250) + rng.uniform(-12, 12, 3)
    colour = rng.uniform(0, 90, 3)
    return paper[None, None, :] * (1.0 - ink[:, :, None]) + colour[None, None, :] * ink[:, :, None]
