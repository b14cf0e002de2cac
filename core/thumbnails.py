"""The on-disk thumbnail cache: one small JPEG per image file, made at ingest and read by the UI.

Keyed by the resolved path + mtime + file size + thumbnail size, so an edited image gets a new
thumbnail and two uris of one file share it. Ingest writes INGEST_SIZE thumbnails in its prepare
workers (ahead of the model), so the map can draw hundreds of them at once without decoding a
single original; the UI makes other sizes on demand (ui.images.thumbnail) under the same keys.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from PIL import Image

from core.config import Settings
from core.datasets.crops import crop_boxes
from core.datasets.images import check_allowed, open_image
from core.errors import BadInputError

log = logging.getLogger(__name__)

INGEST_SIZE = 64  # px, the longest side: what the map draws (about 2 KB a JPEG)
QUALITY = 85
MIN_FREE_BYTES = 1 << 30  # the cache is re-creatable: it never fills the last GB of the disk
OBJECT_MARGIN = 0.1  # context around a detection box in its thumbnail, a fraction of the box size
B = TypeVar("B")
P = TypeVar("P")


def thumb_file(cache_dir: Path, path: Path, size: int) -> Path:
    """Where the `size` px thumbnail of the (resolved, existing) file `path` lives."""
    stat = path.stat()
    # surrogateescape: a file name that is not UTF-8 hashes its own bytes instead of raising.
    key = f"{path}|{stat.st_mtime_ns}|{stat.st_size}|{size}".encode("utf-8", "surrogateescape")
    digest = hashlib.sha1(key).hexdigest()
    return cache_dir / "thumbs" / digest[:2] / f"{digest}.jpg"


def encode(image: Image.Image, size: int) -> bytes:
    """JPEG bytes of an RGB image fitted into size x size."""
    image = image.copy()
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def store(target: Path, data: bytes) -> None:
    """Write then rename: concurrent readers never see a half-written thumbnail."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, target)


def _has_room(cache_dir: Path) -> bool:
    cache_dir.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(cache_dir).free > MIN_FREE_BYTES


def make_thumbnails(uris: Sequence[str | None], settings: Settings, size: int = INGEST_SIZE) -> int:
    """Write the missing `size` px thumbnails of `uris` (images under the data roots); returns how
    many were written. Never raises for one image: a thumbnail is a convenience, not the data."""
    cache_dir = settings.cache_dir
    if not uris or not _has_room(cache_dir):
        return 0
    written = 0
    for uri in uris:
        if not uri:
            continue
        try:
            path = check_allowed(uri, settings)
            target = thumb_file(cache_dir, path, size)
            if target.is_file():
                continue
            store(target, encode(open_image(path, settings.max_image_pixels), size))
            written += 1
        except (BadInputError, OSError) as e:
            log.debug("no thumbnail for %s: %s", uri, e)
    return written


def write_image_thumbnail(uri: str, image: Image.Image, settings: Settings, size: int = INGEST_SIZE) -> bool:
    """make_thumbnails for one image already decoded (`image`, read from `uri`): no second decode.
    Returns whether a thumbnail was written; never raises for the image."""
    try:
        target = thumb_file(settings.cache_dir, check_allowed(uri, settings), size)
        if target.is_file() or not _has_room(settings.cache_dir):
            return False
        store(target, encode(image, size))
    except (BadInputError, OSError) as e:
        log.debug("no thumbnail for %s: %s", uri, e)
        return False
    return True


def object_thumb_file(cache_dir: Path, point_id: str, size: int) -> Path:
    """Where the `size` px crop thumbnail of the detection object `point_id` lives (keyed by the object's
    point id: its box and image are fixed for that id, see core.ids.object_id)."""
    return cache_dir / "thumbs" / "objects" / point_id[:2] / f"{point_id}-{size}.jpg"


class _Corners(NamedTuple):
    """A payload's BOX [x0, y0, x1, y1] as the crop helpers read a box."""

    x0: float
    y0: float
    x1: float
    y1: float


def _crop(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """The box with OBJECT_MARGIN of context, clipped to the image (BadBoxError for a box outside it)."""
    return crop_boxes(image, [_Corners(*(float(v) for v in box))], margin=OBJECT_MARGIN)[0]


def write_object_thumbnails(image: Image.Image, boxes: Sequence[tuple[str, Sequence[float]]],
                            settings: Settings, size: int = INGEST_SIZE) -> int:
    """Write the missing crop thumbnails of the objects (point id, box) of one decoded image; returns how
    many were written. Never raises for one object: a thumbnail is a convenience, not the data."""
    if not boxes or not _has_room(settings.cache_dir):
        return 0
    written = 0
    for pid, box in boxes:
        target = object_thumb_file(settings.cache_dir, pid, size)
        try:
            if not target.is_file():
                store(target, encode(_crop(image, box), size))
                written += 1
        except (BadInputError, OSError, ValueError) as e:  # BadBoxError: a box outside the image
            log.debug("no thumbnail for object %s: %s", pid, e)
    return written


def object_thumbnail(settings: Settings, point_id: str, uri: str | None, box: Sequence[float] | None,
                     size: int = INGEST_SIZE) -> bytes | None:
    """JPEG bytes of the crop thumbnail of one object: read from the cache (ingest writes INGEST_SIZE),
    or cut once from its image (under the data roots) and cached; None when the image cannot be read."""
    target = object_thumb_file(settings.cache_dir, point_id, size)
    if target.is_file():
        return target.read_bytes()
    if not uri or box is None or len(box) != 4:
        return None
    try:
        image = open_image(check_allowed(uri, settings), settings.max_image_pixels)
        data = encode(_crop(image, box), size)
        store(target, data)
    except (BadInputError, OSError, ValueError, TypeError) as e:  # TypeError: a box that is not numbers
        log.debug("no thumbnail for object %s: %s", point_id, e)
        return None
    return data


def with_thumbnails(prepare: Callable[[B], P], settings: Settings,
                    uris: Callable[[B], Sequence[str | None]]) -> Callable[[B], P]:
    """`prepare` (a batch preparer run in ingest's worker threads) that also writes the batch's
    thumbnails (uris(batch)), so they are made in parallel with the model, not later in the UI."""
    def run(batch: B) -> P:
        out = prepare(batch)
        make_thumbnails(uris(batch), settings)
        return out
    return run
