"""Detection inputs' shared pieces: Box, DetObject, DetectionSet, box checks, image resolution, rejects."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from core.config import Settings
from core.datasets.folder import check_root_allowed
from core.datasets.images import check_allowed, image_size, shown, stored_uri
from core.errors import BadInputError
from core.ids import readable_key
from core.types import OBJECT_SOURCES, Item, Reject

BoxFormat = Literal["xywh", "xyxy"]
BOX_FORMATS: tuple[str, ...] = ("xywh", "xyxy")

# A box may overhang the image by this many pixels (annotation tools round to the pixel grid, COCO
# boxes often end at width + 0.5): it is clipped to the image. Past it the box is rejected, because
# it usually means a wrong box format (xyxy read as xywh) or a wrong image size, which clipping hides.
EDGE_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels of the upright image: x1 > x0, y1 > y0, all finite."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.x0, self.y0, self.x1, self.y1)):
            raise ValueError(f"box coordinates must be finite, got {self}")
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"a box needs x1 > x0 and y1 > y0, got {self}")

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    def to_list(self) -> list[float]:
        """[x0, y0, x1, y1] as the payload's BOX field stores it."""
        return [self.x0, self.y0, self.x1, self.y1]

    def to_xywh(self) -> list[float]:
        """[x, y, w, h] as COCO writes it."""
        return [self.x0, self.y0, self.width, self.height]


@dataclass(frozen=True)
class DetObject:
    """One box of one image: a ground-truth label (source "label") or a detector's prediction.

    index: the box's number among that image's boxes of this source, in a stable order (COCO:
    annotation id; results files and manifests: input order). Rejected boxes keep their number
    (indexes may have gaps), so fixing one bad box later does not renumber the others' point ids.
    cls: the class name; score: the detector's confidence (predictions; None for labels).
    """

    image_key: str
    source: str
    index: int
    box: Box
    cls: str
    score: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in OBJECT_SOURCES:
            raise ValueError(f"source must be one of {OBJECT_SOURCES}, got {self.source!r}")

    @property
    def key(self) -> str:
        """The object point's KEY payload: "<image key>#<source>/<index>"."""
        return object_key(self.image_key, self.source, self.index)


def object_key(image_key: str, source: str, index: int) -> str:
    """"<image key>#<source>/<index>", the KEY of an object point (core.ids.object_id hashes the same parts)."""
    return f"{image_key}#{source}/{index}"


@dataclass
class DetectionSet:
    """What a detection reader found: the images to ingest (Items, in a stable order), their boxes,
    and everything it refused, one Reject per image or box, naming the file, entry and field.

    sizes: (width, height) in pixels of each kept image, by image key (from the file's own
    width/height when given, else the image header). categories: the input's own class ids (COCO:
    {"id", "name", "supercategory"} per category, name = the class as DetObject.cls has it), so an
    export can give them back; [] when the input numbers no classes.
    """

    images: list[Item]
    objects: list[DetObject]
    rejects: list[Reject]
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    categories: list[dict[str, Any]] = field(default_factory=list)

    def by_image(self) -> dict[str, list[DetObject]]:
        """The objects grouped by image key (labels then predictions, each by index); every image present."""
        grouped: dict[str, list[DetObject]] = {item.key: [] for item in self.images}
        order = {source: n for n, source in enumerate(OBJECT_SOURCES)}
        for obj in sorted(self.objects, key=lambda o: (order[o.source], o.index)):
            grouped.setdefault(obj.image_key, []).append(obj)
        return grouped

    def counts(self) -> dict[str, int]:
        """{"images", "label", "prediction", "rejects"}: for log lines and CLI summaries."""
        per_source: dict[str, int] = defaultdict(int)
        for obj in self.objects:
            per_source[obj.source] += 1
        return {"images": len(self.images), **{s: per_source[s] for s in OBJECT_SOURCES},
                "rejects": len(self.rejects)}


def check_box_format(box_format: str) -> BoxFormat:
    """The format, or ValueError naming the allowed ones."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
    return box_format  # type: ignore[return-value]


def parse_box(raw: Any, box_format: BoxFormat, size: tuple[int, int]) -> Box | str:
    """A checked Box from 4 numbers in pixels, clipped to the image within EDGE_TOLERANCE_PX, or
    the reason it is refused (not 4 numbers, NaN/inf, zero or negative area, outside the image)."""
    if isinstance(raw, (str, bytes, dict)) or not hasattr(raw, "__len__") or len(raw) != 4:
        return f"expected 4 numbers [{', '.join(_names(box_format))}], got {_short(raw)}"
    values: list[float] = []
    for name, value in zip(_names(box_format), raw, strict=True):
        if value is None:  # readers turn NaN cells into None
            return f"{name} is missing (null or NaN)"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} is not a number ({_short(value)})"
        if not math.isfinite(value):
            return f"{name} is {value} (not a finite number)"
        values.append(float(value))
    a, b, c, d = values
    x0, y0, x1, y1 = (a, b, a + c, b + d) if box_format == "xywh" else (a, b, c, d)
    if x1 <= x0 or y1 <= y0:
        return f"zero or negative area (width {x1 - x0:g}, height {y1 - y0:g}; box format {box_format})"
    return _clip(x0, y0, x1, y1, size)


def _clip(x0: float, y0: float, x1: float, y1: float, size: tuple[int, int]) -> Box | str:
    width, height = size
    tol = EDGE_TOLERANCE_PX
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        return (f"outside the image: [x0 {x0:g}, y0 {y0:g}, x1 {x1:g}, y1 {y1:g}] in a {width}x{height} image "
                f"(more than {tol:g} px over the edge; wrong box format or image size?)")
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if x1 <= x0 or y1 <= y0:
        return f"nothing left inside the {width}x{height} image after clipping to its edge"
    return Box(x0, y0, x1, y1)


def _names(box_format: str) -> tuple[str, str, str, str]:
    return ("x", "y", "w", "h") if box_format == "xywh" else ("x1", "y1", "x2", "y2")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_score(raw: Any) -> float | None | str:
    """A finite float score, None when absent, or the reason it is refused."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return f"not a number ({_short(raw)})"
    if not math.isfinite(raw):
        return f"{raw} (not a finite number)"
    return float(raw)


def images_root(images_dir: Path, settings: Settings) -> Path:
    """The resolved images folder; BadInputError when it is not a folder under the data roots."""
    folder = Path(images_dir).expanduser()
    if not folder.is_dir():
        raise BadInputError(f"{shown(folder)}: not a folder (--images must name the folder holding the images)")
    return check_root_allowed(folder, settings)


def image_file(root: Path, name: str, settings: Settings) -> Path:
    """The checked file `name` (a relative path as the annotation file writes it) under root.

    BadInputError naming the reason: an absolute path or '..' leaving the images folder, a missing
    file, a symlink out of the data roots (check_allowed resolves it first).
    """
    if readable_key(name) != name:  # a lone surrogate from a JSON escape names no file
        raise BadInputError(f"{shown(name)}: not a valid file name (text that is not UTF-8)")
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or os.path.isabs(name) or ".." in relative.parts:
        raise BadInputError(f"{shown(name)}: must be a path inside the images folder (no absolute path, no '..')")
    return check_allowed(root / Path(*relative.parts), settings)


def image_item(path: Path, key: str, meta: dict[str, Any]) -> Item:
    """The image-level Item of a detection image (its kind stays "item")."""
    return Item(key=key, uri=stored_uri(path), meta=meta)


def read_size(path: Path, given: tuple[Any, Any], settings: Settings) -> tuple[int, int]:
    """(width, height): the annotation file's own values when both are positive integers, else
    the image header (core.datasets.images.image_size; BadInputError for a file that is no image)."""
    width, height = given
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        return int(width), int(height)
    if all(isinstance(v, float) and v.is_integer() and v > 0 for v in (width, height)):
        return int(width), int(height)
    return image_size(path, settings)


def box_reject(image: Item | str, source: str, ref: str, reason: str) -> Reject:
    """A refused box: key "<image key>#<source>/<ref>" (ref: "annotation-17", "result-3", "box-2"),
    the image's uri, and the reason (which names the file, entry and field)."""
    key = image.key if isinstance(image, Item) else image
    uri = image.uri if isinstance(image, Item) else None
    return Reject(Item(key=f"{key}#{source}/{ref}", uri=uri), reason)
