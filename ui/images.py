"""Safe image access for the UI: thumbnails cached on disk, served only from the allowed data roots."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlparse

from PIL import Image

from core.config import Settings
from core.datasets.images import open_image as open_image_file
from core.display import shorten
from core.errors import BadInputError
from core.thumbnails import encode, store, thumb_file

log = logging.getLogger(__name__)

# uris already warned about: a bad uri is logged once per process, not on every rerun / hover.
_WARNED: set[str] = set()
_WARNED_MAX = 10_000


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from ui.resources import get_settings

    return get_settings()


def _warn_once(message: str, uri: str, *args: object) -> None:
    if uri in _WARNED:
        return
    if len(_WARNED) >= _WARNED_MAX:
        _WARNED.clear()
    _WARNED.add(uri)
    log.warning(message, shorten(repr(uri), 300), *args)


def safe_path(uri: str | None, settings: Settings | None = None) -> Path | None:
    """The resolved file behind `uri` if it is an existing file under settings.allowed_roots.

    uri: a plain path or a file:// URI. Remote URLs, traversal out of the roots (`../`), symlinks
    pointing outside, missing files and paths the OS cannot even look up (a NUL byte, a name
    over 255 bytes, an unencodable character) all return None, never raise: one stored bad uri
    must not break a page for every viewer. Refused uris are logged once each.
    """
    if not uri:
        return None
    try:
        return _safe_path(uri, _settings(settings))
    except (OSError, ValueError, RuntimeError) as e:  # ValueError: NUL byte, lone surrogate
        _warn_once("cannot look up image path %s: %s", uri, f"{type(e).__name__}: {e}")
        return None


def _safe_path(uri: str, settings: Settings) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        raw = os.fsdecode(unquote_to_bytes(parsed.path))  # the file's own bytes (core.datasets.images.file_uri)
    elif parsed.scheme and len(parsed.scheme) > 1:  # http(s), s3...; one letter is a Windows drive
        _warn_once("not serving a remote image uri %s", uri)
        return None
    else:
        raw = uri
    path = Path(raw).expanduser().resolve()  # resolve() follows symlinks and folds `..`
    if not any(path.is_relative_to(root) for root in settings.allowed_roots):
        _warn_once("refusing image outside the data roots: %s", uri)
        return None
    return path if path.is_file() else None


def _decode(path: Path, settings: Settings) -> Image.Image:
    """The one image opener of core (bomb guard from the header, EXIF turn, alpha on white, RGB)."""
    return open_image_file(path, settings.max_image_pixels)


def open_image(uri: str | None, settings: Settings | None = None) -> Image.Image | None:
    """The full-size RGB image at `uri`, or None if it is outside the roots, missing or unreadable."""
    settings = _settings(settings)
    path = safe_path(uri, settings)
    if path is None:
        return None
    try:
        return _decode(path, settings)
    except BadInputError as e:
        log.warning("cannot open image: %s", e)
        return None


def thumbnail(uri: str | None, size: int = 128, settings: Settings | None = None) -> bytes | None:
    """JPEG bytes of the image at `uri` fitted into size x size, or None (outside roots, unreadable).

    Read from, or made once into, the thumbnail cache of core.thumbnails (keyed by path + mtime +
    file size + thumbnail size, so an edited image gets a new thumbnail; ingest fills it at
    core.thumbnails.INGEST_SIZE).
    """
    if size < 8 or size > 2048:
        raise ValueError(f"thumbnail size must be in 8..2048, got {size}")
    settings = _settings(settings)
    path = safe_path(uri, settings)
    if path is None:
        return None
    try:
        target = thumb_file(settings.cache_dir, path, size)
        if target.is_file():  # made at ingest (core.thumbnails) or by an earlier view
            return target.read_bytes()
        data = encode(_decode(path, settings), size)
        store(target, data)
    except (BadInputError, OSError) as e:  # OSError: the file went away since safe_path
        log.warning("cannot make a thumbnail: %s", e)
        return None
    return data


def data_uri(uri: str | None, size: int = 128, settings: Settings | None = None) -> str | None:
    """A `data:image/jpeg;base64,...` URI of the thumbnail for embedding in HTML, or None."""
    data = thumbnail(uri, size, settings)
    if data is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
