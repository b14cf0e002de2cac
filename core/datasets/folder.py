"""Read an image folder into Items: sub-folder names are labels, keys are relative posix paths."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from core.config import Settings
from core.datasets.images import IMAGE_EXTENSIONS, require_under_roots, shown, stored_uri
from core.errors import BadInputError
from core.ids import readable_key
from core.types import Item

log = logging.getLogger(__name__)


def check_root_allowed(root: Path, settings: Settings) -> Path:
    """The resolved folder, or BadInputError when it is not under settings.allowed_roots."""
    resolved = root.expanduser().resolve()
    require_under_roots(root, resolved, settings)
    return resolved


def from_image_folder(root: Path | str, settings: Settings | None = None) -> list[Item]:
    """Every image under `root` (recursive, hidden files and folders skipped), sorted by key.

    key: the path relative to root, posix style ("cat/001.jpg"); uri: the absolute resolved
    path; label: the first sub-folder's name ("cat"), None for images directly in root.
    Any name the file system allows works: bytes that are not UTF-8 show as %XX in the key and
    label ("caf%E9.jpg"), and such a file's uri is a percent-encoded file:// URI that load_image
    opens (payloads are JSON, which cannot hold undecodable names).
    Files with other extensions are ignored (see IMAGE_EXTENSIONS). When settings are given,
    root must lie under settings.allowed_roots. Raises BadInputError when root is not a folder
    or holds no image.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise BadInputError(f"{shown(folder)}: not a folder")
    resolved = check_root_allowed(folder, settings) if settings is not None else folder.resolve()
    items = sorted((_item(resolved, path) for path in _image_files(resolved)), key=lambda i: i.key)
    if not items:
        raise BadInputError(
            f"{shown(folder)}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    labels = {item.label for item in items}
    log.info("%s: %d images, %d labels", shown(folder), len(items), len(labels - {None}))
    return items


def _image_files(root: Path) -> list[Path]:
    """Image files under root, depth-first in sorted order; symlinked folders are not followed
    (no loops, no escaping the root through a link)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return found


def _item(root: Path, path: Path) -> Item:
    relative = path.relative_to(root)
    label = readable_key(relative.parts[0]) if len(relative.parts) > 1 else None
    # uri resolves symlinked files to their target: load_image checks that target's root.
    return Item(key=readable_key(relative.as_posix()), uri=stored_uri(path.resolve()), label=label)
