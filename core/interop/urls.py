"""Image URLs a labeling tool can reach: Label Studio's local-files URLs, or the user's own file server."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from core.datasets.images import local_path, shown, url_scheme
from core.errors import BadInputError

LOCAL_FILES = "/data/local-files/?d="  # Label Studio serves <LOCAL_FILES_DOCUMENT_ROOT>/<d>
DEFAULT_ROOT = Path(os.path.abspath(os.sep))  # Label Studio's default LOCAL_FILES_DOCUMENT_ROOT


def _relative(path: Path, root: Path) -> PurePosixPath:
    """path relative to root, both made absolute without resolving links (Label Studio joins the
    root and the relative path as text); BadInputError when path is not under root."""
    full, base = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    if not full.is_relative_to(base):
        raise BadInputError(f"{shown(path)} is not under the local-files root {shown(base)}: "
                            "pass the folder holding all the images as --local-files-root")
    return PurePosixPath(full.relative_to(base).as_posix())


def image_url(uri: str | None, key: str | None, *, prefix: str | None = None,
              root: Path | None = None) -> str | None:
    """The URL a labeling tool opens for an item's image; None for an item without one (text).

    An http(s)/s3/gs URL is kept as it is. A local file becomes, with `prefix`,
    prefix + its path relative to `root` (or, without root, + the item's key: the path relative
    to the ingested folder); undecodable file-name bytes are percent-encoded as they are; without `prefix`, Label Studio's "/data/local-files/?d=" + its path
    relative to `root` (default "/", Label Studio's default document root).
    """
    if not uri:
        return None
    scheme = url_scheme(uri)
    if scheme not in (None, "file"):
        return uri
    path = local_path(uri)
    if prefix is not None:
        rel = str(_relative(path, root)) if root is not None else (key or path.name)
        return prefix.rstrip("/") + "/" + quote(os.fsencode(rel), safe="/")
    return LOCAL_FILES + quote(os.fsencode(str(_relative(path, root or DEFAULT_ROOT))), safe="/")
