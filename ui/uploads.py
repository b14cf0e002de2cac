"""Safe handling of dashboard uploads: zip unpacking, loose files, and data-root folder checks.

Everything is written under settings.uploads_dir only. A zip is checked entry by entry before
anything is written (no `..`, no absolute paths, no symlinks, bounded count, size and compression
ratio), then extracted into a temporary folder while counting the real bytes (headers can lie),
and moved into place only when every entry passed.
"""

from __future__ import annotations

import logging
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Iterable

from core.config import Settings
from core.errors import BadInputError

log = logging.getLogger(__name__)

MAX_FILES = 20_000
# Real images compress little; a ratio far beyond this is a zip bomb, not a dataset.
MAX_RATIO = 100
_CHUNK = 1 << 20
_NAME = re.compile(r"^\w[\w.-]{0,99}$")
# Junk that archivers add; skipped silently.
_SKIP_PARTS = ("__MACOSX",)
_SKIP_NAMES = (".DS_Store", "Thumbs.db")


def check_name(name: str, what: str = "dataset") -> str:
    """Return `name` if it is a safe folder name (letters, digits, . _ -; no leading dot), else raise."""
    if not _NAME.match(name or ""):
        raise BadInputError(f"Invalid {what} name {name!r}: use 1-100 letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit")
    return name


def folder_for(dataset: str) -> str:
    """A folder name for a dataset name (which may contain inner spaces): spaces become '_'."""
    return check_name(re.sub(r"\s", "_", dataset or ""), "dataset")


def upload_dir(settings: Settings, dataset: str) -> Path:
    """settings.uploads_dir/<dataset folder> (see folder_for), created."""
    path = settings.uploads_dir / folder_for(dataset)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _entry_parts(info: zipfile.ZipInfo) -> tuple[str, ...] | None:
    """The safe relative parts of an entry, None for junk to skip; BadInputError for unsafe ones."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BadInputError(f"Refusing zip entry {info.filename!r}: absolute path")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise BadInputError(f"Refusing zip entry {info.filename!r}: it points outside the folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BadInputError(f"Refusing zip entry {info.filename!r}: symbolic links are not allowed")
    if any(p in _SKIP_PARTS for p in parts) or (parts and parts[-1] in _SKIP_NAMES):
        return None
    return tuple(p for p in parts if p not in ("", "."))


def _check_entries(zf: zipfile.ZipFile, settings: Settings, max_files: int,
                   max_ratio: float) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    limit = settings.max_upload_mb * 1024 * 1024
    entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    total = 0
    for info in zf.infolist():
        parts = _entry_parts(info)
        if info.is_dir() or not parts:
            continue
        entries.append((info, parts))
        if len(entries) > max_files:
            raise BadInputError(f"Zip has more than {max_files:,} files (at {info.filename!r})")
        total += info.file_size
        if total > limit:
            raise BadInputError(f"Zip unpacks to more than {settings.max_upload_mb} MB "
                                f"(EMBEDSCOPE_MAX_UPLOAD_MB), reached at {info.filename!r}")
        if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(info.compress_size, 1):
            raise BadInputError(f"Refusing zip entry {info.filename!r}: compression ratio "
                                f"{info.file_size / max(info.compress_size, 1):.0f}:1 looks like "
                                "a zip bomb")
    return entries


def _copy_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Extract one entry, counting real bytes; raise once it exceeds its declared size or budget."""
    written = 0
    with zf.open(info) as src, open(target, "xb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size or written > budget:
                raise BadInputError(f"Zip entry {info.filename!r} unpacks to more bytes than it "
                                    "declares")
            dst.write(chunk)
    return written


def unpack_zip(source: str | Path | IO[bytes], dest: Path, settings: Settings, *,
               max_files: int = MAX_FILES, max_ratio: float = MAX_RATIO) -> list[Path]:
    """Unpack a zip into `dest` (which must be inside settings.uploads_dir); return the files.

    Nothing is written when any entry is refused (BadInputError naming the entry).
    """
    dest = _inside_uploads(dest, settings)
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as e:
        raise BadInputError(f"Not a readable zip file: {e}") from e
    with zf:
        entries = _check_entries(zf, settings, max_files, max_ratio)
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=settings.uploads_dir))
        try:
            budget = settings.max_upload_mb * 1024 * 1024
            for info, parts in entries:
                target = staging.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                budget -= _copy_bounded(zf, info, target, budget)
            return _move_into(staging, dest, [PurePosixPath(*p) for _, p in entries])
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise BadInputError(f"Corrupt zip file: {e}") from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _move_into(staging: Path, dest: Path, rels: Iterable[PurePosixPath]) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    moved = []
    for rel in rels:
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging.joinpath(*rel.parts), target)
        moved.append(target)
    log.info("unpacked %d files into %s", len(moved), dest)
    return moved


def _inside_uploads(dest: Path, settings: Settings) -> Path:
    root = settings.uploads_dir.resolve()
    resolved = dest.resolve()
    if not resolved.is_relative_to(root):
        raise BadInputError(f"Refusing to write to {dest}: uploads go under {root}")
    return resolved


def save_file(name: str, data: bytes, dest: Path, settings: Settings) -> Path:
    """Write one uploaded file as dest/<basename of name> (dest inside uploads_dir); return it.

    Refuses names that are empty, hidden or not plain file names, and files over max_upload_mb.
    """
    dest = _inside_uploads(dest, settings)
    base = name.replace("\\", "/")
    if not base or base.startswith(".") or "/" in base:
        raise BadInputError(f"Refusing uploaded file name {name!r}: not a plain file name")
    if len(data) > settings.max_upload_mb * 1024 * 1024:
        raise BadInputError(f"{name!r} is larger than {settings.max_upload_mb} MB "
                            "(EMBEDSCOPE_MAX_UPLOAD_MB)")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / base
    if target.is_symlink():
        raise BadInputError(f"Refusing to overwrite the symbolic link {target}")
    target.write_bytes(data)
    return target


def resolve_data_folder(text: str, settings: Settings) -> Path:
    """The existing folder named by `text` if it lies under one of settings.allowed_roots.

    Relative names are looked up in each data root (then uploads/). BadInputError otherwise,
    listing the allowed roots.
    """
    raw = Path((text or "").strip()).expanduser()
    if not str(raw) or str(raw) == ".":
        raise BadInputError("Name a folder under one of the data roots")
    roots = settings.allowed_roots
    candidates = [raw] if raw.is_absolute() else [root / raw for root in roots]
    allowed = ", ".join(str(r) for r in roots)
    for candidate in candidates:
        resolved = candidate.resolve()
        if not any(resolved.is_relative_to(r) for r in roots):
            raise BadInputError(f"Folder {text!r} is outside the data roots ({allowed}); set "
                                "EMBEDSCOPE_DATA_ROOTS to allow it")
        if resolved.is_dir():
            return resolved
    raise BadInputError(f"Folder {text!r} does not exist under the data roots ({allowed})")
