"""Box geometry of the detection demo's scenes: IoU, clipping, free places, jitter (pure, seeded by the caller)."""

from __future__ import annotations

import numpy as np

from core.analysis.box_matching import pairwise_iou

SIZE = 256  # scene width and height in pixels
MIN_OBJ, MAX_OBJ = 24, 64  # object sizes (pixels): several scales of the upscaled 8x8 digits
MAX_OVERLAP = 0.2  # an overlapping object's IoU with the one it overlaps is at most this
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def free_box(rng: np.random.Generator, taken: list[Box], overlap: bool, tries: int = 60,
             size: tuple[int, int] = (MIN_OBJ, MAX_OBJ)) -> Box | None:
    """A random box inside the scene clear of `taken` (2 px apart), or when `overlap` one that
    overlaps one of them a little (0 < IoU <= MAX_OVERLAP); None when none was found."""
    for _ in range(tries):
        # Log-uniform sizes: as many small objects as large ones; digits are a little taller than wide.
        h = float(np.exp(rng.uniform(np.log(size[0]), np.log(size[1]))))
        w = round(h * rng.uniform(0.75, 1.0))
        h = round(h)
        x0, y0 = int(rng.integers(0, SIZE - w + 1)), int(rng.integers(0, SIZE - h + 1))
        box: Box = (float(x0), float(y0), float(x0 + w), float(y0 + h))
        ious = [iou(box, t) for t in taken]
        if overlap and any(0.0 < v <= MAX_OVERLAP for v in ious) and max(ious) <= MAX_OVERLAP:
            return box
        if not overlap and not any(touch(box, t, gap=2.0) for t in taken):
            return box
    return None


def touch(a: Box, b: Box, gap: float = 0.0) -> bool:
    """Whether two boxes intersect (or come closer than `gap` pixels)."""
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def jitter(box: Box, rng: np.random.Generator, min_iou: float, tries: int = 50) -> Box:
    """The box with each side moved by a few % of its size, overlapping it at least min_iou."""
    w, h = box[2] - box[0], box[3] - box[1]
    for _ in range(tries):
        d = rng.normal(0.0, 0.05, 4) * np.array([w, h, w, h])
        moved = clip((box[0] + d[0], box[1] + d[1], box[2] + d[2], box[3] + d[3]))
        if moved[2] - moved[0] >= 2 and moved[3] - moved[1] >= 2 and iou(moved, box) >= min_iou:
            return moved
    return box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (core.analysis.box_matching's rule)."""
    return float(pairwise_iou(np.asarray([a]), np.asarray([b]))[0, 0])


def clip(box: tuple[float, ...]) -> Box:
    """Inside the scene, rounded to 0.1 px (COCO files stay short)."""
    x0, y0, x1, y1 = (round(float(min(max(v, 0.0), SIZE)), 1) for v in box)
    return (x0, y0, x1, y1)
