"""Detection-box geometry on a decoded image: margins, clipping, the pixel rectangle of each crop."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from PIL import Image

from core.errors import BadBoxError


class BoxLike(Protocol):
    """What the crop helpers read of a box (core.datasets.detections.Box): pixel corners."""

    @property
    def x0(self) -> float: ...
    @property
    def y0(self) -> float: ...
    @property
    def x1(self) -> float: ...
    @property
    def y1(self) -> float: ...


Rect = tuple[float, float, float, float]

# A box must keep at least this many pixels on each side once clipped to the image.
MIN_SIDE = 1.0


def box_problem(size: tuple[int, int], box: BoxLike) -> str | None:
    """Why `box` cannot be cut from an image of `size` (width, height), or None when it can.

    Checked on the box itself (before the margin), so a box lying outside the image is refused
    even when its margin would reach into it."""
    coords = (box.x0, box.y0, box.x1, box.y1)
    if not all(math.isfinite(float(c)) for c in coords):
        return "a coordinate is not a finite number"
    if box.x1 <= box.x0 or box.y1 <= box.y0:
        return "x1 <= x0 or y1 <= y0 (an empty box)"
    width, height = size
    x0, y0, x1, y1 = _clip((box.x0, box.y0, box.x1, box.y1), size)
    if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
        return f"less than {MIN_SIDE:g} pixel of it lies inside the {width}x{height} image"
    return None


def context_box(size: tuple[int, int], box: BoxLike, margin: float) -> Rect:
    """The box grown by `margin` x its width / height on each side, clipped to the image (float pixels)."""
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0 (a fraction of the box size), got {margin!r}")
    dx, dy = (box.x1 - box.x0) * margin, (box.y1 - box.y0) * margin
    return _clip((box.x0 - dx, box.y0 - dy, box.x1 + dx, box.y1 + dy), size)


def context_boxes(size: tuple[int, int], boxes: Sequence[BoxLike], margin: float, *, name: str) -> list[Rect]:
    """context_box of every box; BadBoxError (naming `name`, the box and its index) for the first bad one."""
    rects = []
    for index, box in enumerate(boxes):
        problem = box_problem(size, box)
        if problem is not None:
            raise BadBoxError(
                f"{name}: box {index} [{box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g}] cannot be cropped: {problem}",
                index,
            )
        rects.append(context_box(size, box, margin))
    return rects


def pixel_rect(rect: Rect) -> tuple[int, int, int, int]:
    """Whole pixels covering a float rectangle (floor / ceil), for PIL's crop."""
    x0, y0, x1, y1 = rect
    return math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)


def crop_boxes(image: Image.Image, boxes: Sequence[BoxLike], *, margin: float = 0.1,
               name: str = "the image") -> list[Image.Image]:
    """One crop per box (with its context margin) from an already decoded image, in box order."""
    return [image.crop(pixel_rect(rect)) for rect in context_boxes(image.size, boxes, margin, name=name)]


def _clip(rect: Rect, size: tuple[int, int]) -> Rect:
    width, height = size
    x0, y0, x1, y1 = rect
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
            min(max(x1, 0.0), width), min(max(y1, 0.0), height))
