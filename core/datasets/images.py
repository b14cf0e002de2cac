"""Safe image loading: allowed data roots only, decompression-bomb guard, RGB conversion, EXIF turn."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from core.config import Settings
from core.errors import BadInputError

log = logging.getLogger(__name__)

# Files recognised as images by the folder reader (compared lower-case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)

# A truncated file must be a reject, never a half-grey image that silently pollutes the space.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Errors PIL raises on broken files: SyntaxError and struct errors come from some plugins' parsers.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


def local_path(uri: str | Path) -> Path:
    """The local path of a plain path or a file:// URI; BadInputError for other URLs (http, s3...)."""
    if isinstance(uri, Path):
        return uri.expanduser()
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    # One-letter schemes are Windows drive letters ("C:/x.png"), not URLs.
    if parsed.scheme and len(parsed.scheme) > 1:
        raise BadInputError(f"{uri}: only local image files can be read (no {parsed.scheme}:// URLs)")
    return Path(uri).expanduser()


def require_under_roots(path: Path, resolved: Path, settings: Settings) -> None:
    """BadInputError naming `path` unless `resolved` (its fully resolved form) is under a root."""
    if not any(resolved.is_relative_to(root) for root in settings.allowed_roots):
        raise BadInputError(
            f"{path}: outside the allowed data roots "
            f"({', '.join(str(r) for r in settings.allowed_roots)}); set EMBEDSCOPE_DATA_ROOTS"
        )


def check_allowed(uri: str | Path, settings: Settings) -> Path:
    """The resolved path of an existing file under one of settings.allowed_roots.

    Symlinks and '..' are resolved first, so neither can escape the roots. Raises BadInputError
    (file missing, not a file, or outside the roots), naming the path.
    """
    path = local_path(uri)
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError as e:
        raise BadInputError(f"{path}: file not found") from e
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise BadInputError(f"{path}: cannot resolve the path ({e})") from e
    require_under_roots(path, resolved, settings)
    if not resolved.is_file():
        raise BadInputError(f"{path}: not a file")
    return resolved


def load_image(uri: str | Path, settings: Settings) -> Image.Image:
    """Read one image under the allowed roots as an RGB PIL image (EXIF orientation applied).

    The pixel count is read from the header and checked against settings.max_image_pixels
    before any pixel is decoded. Every failure (missing, outside the roots, corrupt, truncated,
    too large) raises BadInputError with a one-line reason naming the file.
    """
    path = check_allowed(uri, settings)
    try:
        return _decode(path, settings.max_image_pixels)
    except Image.DecompressionBombError as e:
        raise BadInputError(f"{path}: refused as a decompression bomb ({e})") from e
    except UnidentifiedImageError as e:
        raise BadInputError(f"{path}: not a readable image file") from e
    except _DECODE_ERRORS as e:
        raise BadInputError(f"{path}: corrupt or truncated image ({e})") from e


def _decode(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only), check the size, decode, turn upright, convert to RGB."""
    opened = Image.open(path)
    result: Image.Image | None = None
    try:
        width, height = opened.size
        if width * height > max_pixels:
            raise BadInputError(
                f"{path}: {width}x{height} = {width * height:,} pixels is over the limit of "
                f"{max_pixels:,} (decompression-bomb guard, EMBEDSCOPE_MAX_IMAGE_PIXELS)"
            )
        opened.load()
        result = to_rgb(_upright(opened, path))
        # A multi-frame file keeps its handle open while `opened` lives: detach the pixels.
        if result is opened and getattr(opened, "n_frames", 1) > 1:
            result = opened.copy()
        return result
    finally:
        if result is not opened:
            opened.close()


def _upright(image: Image.Image, path: Path) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block keeps the pixels as stored (logged)."""
    try:
        turned = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS as e:
        log.warning("%s: ignoring an unreadable EXIF orientation (%s)", path, e)
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
