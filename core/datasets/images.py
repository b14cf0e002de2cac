"""The one image opener (path or bytes): allowed data roots, bomb guard, EXIF turn, alpha on white, RGB."""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes, urlparse

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from core.config import Settings
from core.datasets.crops import BoxLike, crop_boxes
from core.errors import BadInputError
from core.ids import readable_key

log = logging.getLogger(__name__)

# Files recognised as images by the folder reader (compared lower-case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)

# A truncated file must be a reject, never a half-grey image that silently pollutes the space.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Errors PIL raises on broken files: SyntaxError and struct errors come from some plugins' parsers.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)
# The longest file or folder name Linux, macOS and Windows file systems accept, in bytes.
MAX_NAME_BYTES = 255
# "scheme://..." (two letters or more: "C:/x.png" is a Windows drive) or "file:/path".
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+)://|^(?P<file>file):/", re.IGNORECASE)


def shown(path: str | Path) -> str:
    """A path as valid UTF-8 for messages (undecodable file-name bytes as %XX)."""
    return readable_key(str(path))


def url_scheme(uri: str) -> str | None:
    """The lower-case scheme of a URL ("http", "file"...), None for a plain path."""
    found = _URL.match(uri)
    if found is None:
        return None
    return (found.group("scheme") or found.group("file")).lower()


def file_uri(path: Path) -> str:
    """A file:// URI for an absolute path, percent-encoded from its bytes, so a name that is not
    UTF-8 still has a valid-UTF-8 uri that local_path() turns back into the same file."""
    return "file://" + quote(os.fsencode(path), safe="/")


def stored_uri(path: Path) -> str:
    """What an item's uri holds for a local file: the path as text, or file_uri(path) when the
    path is not valid UTF-8 (payloads are JSON, which cannot hold the undecodable bytes)."""
    text = str(path)
    return text if readable_key(text) == text else file_uri(path)


def path_problem(path: str | Path) -> str | None:
    """Why no file system can hold this path (a NUL byte, a name over 255 bytes), or None."""
    text = str(path)
    if "\x00" in text:
        return "the path contains a NUL byte"
    for part in Path(text).parts:
        size = len(os.fsencode(part))
        if size > MAX_NAME_BYTES:
            return f"a path component is {size} bytes long (file systems allow {MAX_NAME_BYTES})"
    return None


def local_path(uri: str | Path) -> Path:
    """The local path of a plain path or a file:// URI (percent-decoded to the original bytes).

    Raises BadInputError naming the uri for other URLs (http, s3, ftp...) and for paths no file
    system can hold (a NUL byte, a name over 255 bytes).
    """
    if isinstance(uri, Path):
        path = uri.expanduser()
    else:
        scheme = url_scheme(uri)
        if scheme == "file":
            parsed = urlparse(uri)
            if parsed.netloc not in ("", "localhost"):
                raise BadInputError(f"{shown(uri)}: a file:// URI on another host ({parsed.netloc}) cannot be read")
            path = Path(os.fsdecode(unquote_to_bytes(parsed.path)))
        elif scheme is not None:
            raise BadInputError(f"{shown(uri)}: only local image files can be read, not {scheme}:// URLs")
        else:
            path = Path(uri).expanduser()
    problem = path_problem(path)
    if problem is not None:
        raise BadInputError(f"{shown(path)!r}: {problem}")
    return path


def require_under_roots(path: Path, resolved: Path, settings: Settings) -> None:
    """BadInputError naming `path` unless `resolved` (its fully resolved form) is under a root."""
    if not any(resolved.is_relative_to(root) for root in settings.allowed_roots):
        raise BadInputError(
            f"{shown(path)}: outside the allowed data roots "
            f"({', '.join(str(r) for r in settings.allowed_roots)}); add its folder to EMBEDSCOPE_DATA_ROOTS "
            "(or name it with --data-root on the command line)"
        )


def check_allowed(uri: str | Path, settings: Settings) -> Path:
    """The resolved path of an existing file under one of settings.allowed_roots.

    Symlinks and '..' are resolved first, so neither can escape the roots. Raises BadInputError
    (file missing, not a file, outside the roots, a URL, an impossible path), naming the path.
    """
    path = local_path(uri)
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError as e:
        raise BadInputError(f"{shown(path)}: file not found") from e
    except (OSError, RuntimeError, ValueError) as e:  # RuntimeError: a symlink loop
        raise BadInputError(f"{shown(path)}: cannot resolve the path ({shown(str(e))})") from e
    require_under_roots(path, resolved, settings)
    try:
        is_file = resolved.is_file()
    except OSError as e:
        raise BadInputError(f"{shown(path)}: cannot read the path ({shown(str(e))})") from e
    if not is_file:
        raise BadInputError(f"{shown(path)}: not a file")
    return resolved


def load_image(uri: str | Path, settings: Settings) -> Image.Image:
    """Read one image under the allowed roots as an RGB PIL image (see open_image).

    Every failure (missing, outside the roots, a URL, corrupt, truncated, too large) raises
    BadInputError with a one-line reason naming the file.
    """
    return open_image(check_allowed(uri, settings), settings.max_image_pixels)


def load_crops(uri: str | Path, boxes: Sequence[BoxLike], *, margin: float = 0.1,
               settings: Settings) -> list[Image.Image]:
    """One RGB crop per detection box, all cut from ONE decode of the image (load_image's checks).

    margin: a fraction of each box's width / height added on each side, clipped to the image.
    BadBoxError (a BadInputError with the box's `index`) names the file and the first box that
    is empty once clipped, NaN or inverted; other failures are load_image's BadInputError.
    """
    return crop_boxes(load_image(uri, settings), boxes, margin=margin, name=shown(uri))


def open_image(source: Path | bytes | Image.Image, max_pixels: int, *, name: str | None = None) -> Image.Image:
    """The one image opener: a file (already checked, see load_image), encoded bytes (an upload, a
    query image) or a PIL image, as upright 8-bit RGB.

    The pixel count is read from the header and checked against max_pixels before any pixel is
    decoded; EXIF orientation is applied; alpha is composited on white. Raises BadInputError
    naming `name` (default: the path, or "the image") for bombs, non-images and truncated files.
    """
    label = name or (shown(source) if isinstance(source, Path) else "the image")
    try:
        if isinstance(source, Image.Image):
            _check_size(source, max_pixels, label)
            return to_rgb(_upright(source, label))
        return _decode(source if isinstance(source, Path) else io.BytesIO(source), max_pixels, label)
    except Image.DecompressionBombError as e:
        raise BadInputError(f"{label}: refused as a decompression bomb ({e})") from e
    except UnidentifiedImageError as e:
        raise BadInputError(f"{label}: not a readable image file") from e
    except _DECODE_ERRORS as e:
        raise BadInputError(f"{label}: corrupt or truncated image ({shown(str(e))})") from e


def image_size(uri: str | Path, settings: Settings) -> tuple[int, int]:
    """(width, height) of an image under the allowed roots as open_image shows it (EXIF
    orientations 5-8 swap the sides), from the header only: no pixel is decoded. BadInputError
    naming the file when it is not a readable image (export formats such as COCO need the size)."""
    path = check_allowed(uri, settings)
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)  # 0x0112: the EXIF Orientation tag
    except _DECODE_ERRORS as e:  # UnidentifiedImageError is an OSError
        raise BadInputError(f"{shown(path)}: not a readable image ({shown(str(e))})") from e
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _check_size(image: Image.Image, max_pixels: int, label: str) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise BadInputError(
            f"{label}: {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} (decompression-bomb guard, EMBEDSCOPE_MAX_IMAGE_PIXELS)"
        )


def _decode(source: Path | io.BytesIO, max_pixels: int, label: str) -> Image.Image:
    """Open (header only), check the size, decode, turn upright, convert to RGB."""
    opened = Image.open(source)
    result: Image.Image | None = None
    try:
        _check_size(opened, max_pixels, label)
        opened.load()
        result = to_rgb(_upright(opened, label))
        # A multi-frame file keeps its handle open while `opened` lives: detach the pixels.
        if result is opened and getattr(opened, "n_frames", 1) > 1:
            result = opened.copy()
        return result
    finally:
        if result is not opened:
            opened.close()


def _upright(image: Image.Image, label: str) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block keeps the pixels as stored (logged)."""
    try:
        turned = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS as e:
        log.warning("%s: ignoring an unreadable EXIF orientation (%s)", label, e)
        return image
    return turned if turned is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB: alpha composited on white, palettes expanded, 16-bit / float scaled down."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels keep arbitrary colours underneath; white is what viewers show.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return _wide_gray_to_rgb(image)
    return image.convert("RGB")


def _wide_gray_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float grayscale -> 8-bit RGB. Integers are scaled from their bit depth
    (16-bit: /257); floats and out-of-range integers are min-max stretched."""
    pixels = np.asarray(image, dtype=np.float64)
    low, high = float(np.nanmin(pixels)), float(np.nanmax(pixels))
    if image.mode != "F" and low >= 0 and high <= 255:
        scaled = pixels  # 8-bit values stored in a wide mode
    elif image.mode != "F" and low >= 0 and high <= 65535:
        scaled = pixels / 257.0
    else:
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
    gray = np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")
