"""Safe image access for the UI: thumbnails cached on disk, served only from the allowed data roots."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image, ImageOps

from core.config import Settings

log = logging.getLogger(__name__)

THUMB_FORMAT = "JPEG"


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from ui.resources import get_settings

    return get_settings()


def safe_path(uri: str | None, settings: Settings | None = None) -> Path | None:
    """The resolved file behind `uri` if it is an existing file under settings.allowed_roots.

    uri: a plain path or a file:// URI. Remote URLs, traversal out of the roots (`../`), symlinks
    pointing outside and missing files all return None (with a warning for the refused ones).
    """
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        raw = unquote(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # http(s), s3...; one letter is a Windows drive
        log.warning("not serving a remote image uri %r", uri)
        return None
    else:
        raw = uri
    try:
        path = Path(raw).expanduser().resolve()  # resolve() follows symlinks and folds `..`
    except (OSError, RuntimeError) as e:
        log.warning("cannot resolve image path %r: %s", uri, e)
        return None
    roots = _settings(settings).allowed_roots
    if not any(path.is_relative_to(root) for root in roots):
        log.warning("refusing image outside the data roots: %r", uri)
        return None
    return path if path.is_file() else None


def _decode(path: Path, settings: Settings) -> Image.Image:
    """Open with the decompression-bomb guard (header size checked before pixels are decoded)."""
    image: Image.Image = Image.open(path)
    width, height = image.size
    if width * height > settings.max_image_pixels:
        image.close()
        raise ValueError(f"{path}: {width}x{height} exceeds max_image_pixels")
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def open_image(uri: str | None, settings: Settings | None = None) -> Image.Image | None:
    """The full-size RGB image at `uri`, or None if it is outside the roots, missing or unreadable."""
    settings = _settings(settings)
    path = safe_path(uri, settings)
    if path is None:
        return None
    try:
        return _decode(path, settings)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        log.warning("cannot open image %s: %s", path, e)
        return None


def _thumb_file(path: Path, size: int, settings: Settings) -> Path:
    stat = path.stat()
    digest = hashlib.sha1(f"{path}|{stat.st_mtime_ns}|{stat.st_size}|{size}".encode()).hexdigest()
    return settings.cache_dir / "thumbs" / digest[:2] / f"{digest}.jpg"


def thumbnail(uri: str | None, size: int = 128, settings: Settings | None = None) -> bytes | None:
    """JPEG bytes of the image at `uri` fitted into size x size, or None (outside roots, unreadable).

    Generated once and cached under settings.cache_dir/thumbs keyed by path + mtime + file size +
    thumbnail size, so an edited image gets a new thumbnail.
    """
    if size < 8 or size > 2048:
        raise ValueError(f"thumbnail size must be in 8..2048, got {size}")
    settings = _settings(settings)
    path = safe_path(uri, settings)
    if path is None:
        return None
    target = _thumb_file(path, size, settings)
    if target.is_file():
        return target.read_bytes()
    try:
        image = _decode(path, settings)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        log.warning("cannot make a thumbnail of %s: %s", path, e)
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, THUMB_FORMAT, quality=85)
    data = buffer.getvalue()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: concurrent sessions never read a half-written thumbnail.
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, target)
    return data


def data_uri(uri: str | None, size: int = 128, settings: Settings | None = None) -> str | None:
    """A `data:image/jpeg;base64,...` URI of the thumbnail for embedding in HTML, or None."""
    data = thumbnail(uri, size, settings)
    if data is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
