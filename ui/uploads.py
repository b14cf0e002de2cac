"""Safe handling of dashboard uploads: zip unpacking, loose files, and data-root folder checks.

Everything is written under settings.uploads_dir only, one folder per dataset named by the
store's reversible name encoding (so `a b` and `a_b` never share a folder). A zip is checked
entry by entry before anything is written (no `..`, no absolute paths, no symlinks, bounded
count, size and compression ratio), then extracted into a temporary folder while counting the
real bytes (headers can lie) against EMBEDSCOPE_MAX_UPLOAD_MB and the folder's quota, and moved
into place only when every entry passed. A file uploaded again is reused when its content is the
same and kept under a new name when it differs: nothing is overwritten silently. Messages name
the upload or the zip entry, never a folder of the server.
"""

from __future__ import annotations

import filecmp
import logging
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from core.config import Settings
from core.errors import BadInputError
from core.store.names import encode, validate_name

log = logging.getLogger(__name__)

MAX_FILES = 20_000
# Real images compress little; a ratio far beyond this is a zip bomb, not a dataset.
MAX_RATIO = 100
# One dataset's upload folder holds at most this many uploads' worth (EMBEDSCOPE_MAX_UPLOAD_MB
# each): repeated uploads cannot fill the disk.
FOLDER_QUOTA_UPLOADS = 4
_CHUNK = 1 << 20
# Junk that archivers add; skipped silently.
_SKIP_PARTS = ("__MACOSX",)
_SKIP_NAMES = (".DS_Store", "Thumbs.db")
# What a damaged or unsupported zip raises while reading an entry (encrypted: RuntimeError,
# unknown compression: NotImplementedError, broken deflate stream: zlib.error).
_ZIP_READ_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError)


def check_name(name: str, what: str = "dataset") -> str:
    """Return `name` if it is a valid dataset name (core.store.names.validate_name), else raise."""
    return validate_name(name, f"{what} name")


def folder_for(dataset: str) -> str:
    """The upload folder name of a dataset: its validated name in the store's reversible encoding
    ([A-Za-z0-9-] kept, anything else `_xx`), so two dataset names never share a folder."""
    return encode(check_name(dataset, "dataset"))


def upload_dir(settings: Settings, dataset: str) -> Path:
    """settings.uploads_dir/<dataset folder> (see folder_for), created."""
    path = settings.uploads_dir / folder_for(dataset)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _limit(settings: Settings) -> int:
    return settings.max_upload_mb * 1024 * 1024


def folder_quota(settings: Settings) -> int:
    """Bytes one upload folder may hold in total: FOLDER_QUOTA_UPLOADS x EMBEDSCOPE_MAX_UPLOAD_MB."""
    return FOLDER_QUOTA_UPLOADS * _limit(settings)


def _used(folder: Path) -> int:
    """Bytes of the regular files under folder (0 when it does not exist yet)."""
    if not folder.is_dir():
        return 0
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _budget(dest: Path, settings: Settings) -> int:
    """Bytes the next upload into dest may unpack to: the per-upload limit, capped by what is left
    of the folder's quota. BadInputError when the folder is full."""
    left = folder_quota(settings) - _used(dest)
    if left <= 0:
        raise BadInputError(f"This dataset's upload folder is full ({folder_quota(settings) >> 20} MB, "
                            f"{FOLDER_QUOTA_UPLOADS} x EMBEDSCOPE_MAX_UPLOAD_MB): ingest under a "
                            "new dataset name, or ask the administrator to clean it up")
    return min(_limit(settings), left)


def _too_big(subject: str, budget: int, settings: Settings, where: str = "") -> BadInputError:
    """"<subject> more than N MB (why)<where>": the per-upload limit or the folder's quota."""
    if budget < _limit(settings):
        why = (f"what is left of this dataset's upload folder quota of "
               f"{folder_quota(settings) >> 20} MB")
        return BadInputError(f"{subject} more than {budget >> 20} MB ({why}){where}")
    return BadInputError(f"{subject} more than {settings.max_upload_mb} MB "
                         f"(EMBEDSCOPE_MAX_UPLOAD_MB){where}")


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


def _check_entries(zf: zipfile.ZipFile, budget: int, settings: Settings, max_files: int,
                   max_ratio: float) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """The entries to extract, refused early from the declared sizes (extraction counts again)."""
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
        if total > budget:
            raise _too_big("Zip unpacks to", budget, settings, f", reached at {info.filename!r}")
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
                                    "declares, or than the upload limit allows")
            dst.write(chunk)
    return written


def _extract(zf: zipfile.ZipFile, entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
             staging: Path, budget: int) -> None:
    """Extract every entry into staging; errors name the entry, never the staging folder."""
    for info, parts in entries:
        try:
            target = staging.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            budget -= _copy_bounded(zf, info, target, budget)
        except FileExistsError as e:
            raise BadInputError(f"Zip entry {info.filename!r} appears twice (or clashes with a "
                                "folder of the same name)") from e
        except OSError as e:  # the message of an OSError holds the staging path: leave it out
            raise BadInputError(f"Cannot unpack zip entry {info.filename!r}: "
                                f"{e.strerror or type(e).__name__}") from e
        except _ZIP_READ_ERRORS as e:
            raise BadInputError(f"Corrupt or unsupported zip entry {info.filename!r}: {e}") from e


def unpack_zip(source: str | Path | IO[bytes], dest: Path, settings: Settings, *,
               max_files: int = MAX_FILES, max_ratio: float = MAX_RATIO) -> list[Path]:
    """Unpack a zip into `dest` (which must be inside settings.uploads_dir); return the files.

    Nothing is written when any entry is refused (BadInputError naming the entry). The unpacked
    size is bounded by EMBEDSCOPE_MAX_UPLOAD_MB and by what is left of dest's folder quota.
    """
    dest = _inside_uploads(dest, settings)
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise BadInputError(f"Not a readable zip file: {getattr(e, 'strerror', None) or e}") from e
    with zf:
        budget = _budget(dest, settings)
        entries = _check_entries(zf, budget, settings, max_files, max_ratio)
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=settings.uploads_dir))
        try:
            _extract(zf, entries, staging, budget)
            return _move_into(staging, dest, [p for _, p in entries])
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _free_name(target: Path, same: Path | None = None) -> Path:
    """target itself when it is free (or holds the same bytes as `same`), else the first free
    `stem-2.ext`, `stem-3.ext`, ... (or the first one that holds the same bytes)."""
    candidate, n = target, 1
    while candidate.exists() or candidate.is_symlink():
        if same is not None and candidate.is_file() and not candidate.is_symlink() \
                and filecmp.cmp(same, candidate, shallow=False):
            return candidate
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    return candidate


def _move_into(staging: Path, dest: Path, rels: list[tuple[str, ...]]) -> list[Path]:
    """Move the staged files into dest: an identical file already there is reused, a different
    one of the same name is kept and the new file gets a free name (`a-2.png`)."""
    dest.mkdir(parents=True, exist_ok=True)
    placed = []
    for parts in rels:
        source = staging.joinpath(*parts)
        target = dest.joinpath(*parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            final = _free_name(target, same=source)
            if not final.exists():
                shutil.move(source, final)
        except OSError as e:
            raise BadInputError(f"Cannot store zip entry {'/'.join(parts)!r}: "
                                f"{e.strerror or type(e).__name__}") from e
        if final != target:
            log.info("upload %s kept next to a different file of the same name as %s",
                     "/".join(parts), final.name)
        placed.append(final)
    log.info("unpacked %d files into %s", len(placed), dest)
    return placed


def _inside_uploads(dest: Path, settings: Settings) -> Path:
    root = settings.uploads_dir.resolve()
    resolved = dest.resolve()
    if not resolved.is_relative_to(root):
        raise BadInputError(f"Refusing to write to {dest}: uploads go under {root}")
    return resolved


def save_file(name: str, data: bytes, dest: Path, settings: Settings) -> Path:
    """Write one uploaded file as dest/<name> (dest inside uploads_dir); return where it is.

    The same content uploaded again is reused (not written twice); a different content under an
    existing name is kept as `stem-2.ext` (never overwritten). Refuses names that are empty,
    hidden or not plain file names, and files over the upload limit or the folder's quota.
    """
    dest = _inside_uploads(dest, settings)
    base = name.replace("\\", "/")
    if not base or base.startswith(".") or "/" in base or "\x00" in base:
        raise BadInputError(f"Refusing uploaded file name {name!r}: not a plain file name")
    target = dest / base
    existing = _same_content(target, data)
    if existing is not None:
        return existing
    budget = _budget(dest, settings)
    if len(data) > budget:
        raise _too_big(f"{name!r} holds", budget, settings)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        final = _free_name(target)
        with open(final, "xb") as handle:  # "x": never through a symlink, never over a file
            handle.write(data)
    except OSError as e:
        raise BadInputError(f"Cannot store the uploaded file {name!r}: "
                            f"{e.strerror or type(e).__name__}") from e
    if final != target:
        log.info("upload %s kept next to a different file of the same name as %s", name, final.name)
    return final


def _same_content(target: Path, data: bytes) -> Path | None:
    """target or one of its `stem-n.ext` siblings when it already holds exactly `data`."""
    candidate, n = target, 1
    while candidate.is_file() and not candidate.is_symlink():
        if candidate.stat().st_size == len(data) and candidate.read_bytes() == data:
            return candidate
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    return None


def resolve_data_folder(text: str, settings: Settings) -> Path:
    """The existing folder named by `text` if it lies under one of settings.allowed_roots.

    Relative names are looked up in each data root (then uploads/). BadInputError otherwise,
    listing the allowed roots.
    """
    if "\x00" in (text or ""):
        raise BadInputError(f"Folder name {text!r} contains a NUL byte")
    raw = Path((text or "").strip()).expanduser()
    if not str(raw) or str(raw) == ".":
        raise BadInputError("Name a folder under one of the data roots")
    roots = settings.allowed_roots
    candidates = [raw] if raw.is_absolute() else [root / raw for root in roots]
    allowed = ", ".join(str(r) for r in roots)
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            inside = any(resolved.is_relative_to(r) for r in roots)
            if inside and resolved.is_dir():
                return resolved
        except (OSError, RuntimeError) as e:  # a name too long, a symlink loop
            raise BadInputError(f"Folder {text!r} cannot be looked up: "
                                f"{getattr(e, 'strerror', None) or e}") from e
        if not inside:
            raise BadInputError(f"Folder {text!r} is outside the data roots ({allowed}); set "
                                "EMBEDSCOPE_DATA_ROOTS to allow it")
    raise BadInputError(f"Folder {text!r} does not exist under the data roots ({allowed})")
