"""The project bundle's layout and manifest: what a bundle holds, its format version, and its checks.

A bundle is a folder (not an archive: its Parquet files are compressed already, and a folder is
read file by file, point chunk by point chunk, without unpacking anything first):

    manifest.json              format, versions, project, spaces, datasets, counts, files + sha256
    points/<space>.parquet     one row per point of the space: id, dataset, key, payload (JSON), vector
    documents.jsonl.gz         one line per store document: {"kind", "key", "doc"}

The manifest is written last and the folder renamed into place, so a folder holding a manifest
is complete; verify() checks every file against its recorded size and sha256 before anything is
imported, so a truncated or edited bundle is refused before a single point is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from core.errors import BadInputError, StoreTooNewError
from core.store.names import encode
from core.store.schema import SCHEMA_VERSION

BUNDLE_FORMAT = "embedscope-project-bundle"
FORMAT_VERSION = 1  # raise when the layout changes; readers refuse a newer one
MANIFEST = "manifest.json"
POINTS_DIR = "points"
DOCUMENTS_FILE = "documents.jsonl.gz"
POINT_COLUMNS = ("id", "dataset", "key", "payload", "vector")


def points_file(space: str) -> str:
    """The bundle-relative path of a space's points (names encoded: any space name is a safe file name)."""
    return f"{POINTS_DIR}/{encode(space)}.parquet"


def file_record(path: Path) -> dict[str, Any]:
    """{"bytes", "sha256"} of one file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write a JSON file atomically (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    os.replace(tmp, path)


@dataclass(frozen=True)
class SpaceEntry:
    """One space of a bundle: its descriptor document, file, point count and its revision at export."""

    doc: dict[str, Any]
    file: str
    points: int
    revision: str

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def dim(self) -> int:
        return int(self.doc["dim"])


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest.json, read and checked."""

    raw: dict[str, Any]
    root: Path

    @property
    def project(self) -> str:
        return str(self.raw["project"])

    @property
    def spaces(self) -> list[SpaceEntry]:
        return [SpaceEntry(dict(s["doc"]), str(s["file"]), int(s["points"]), str(s["revision"]))
                for s in self.raw["spaces"]]

    @property
    def documents(self) -> int:
        return int(self.raw["documents"]["count"])

    @property
    def total_points(self) -> int:
        return sum(s.points for s in self.spaces)

    def path(self, relative: str) -> Path:
        """A file of the bundle; BadInputError for a name that leaves the bundle folder."""
        return inside(self.root, relative)


def inside(root: Path, relative: str) -> Path:
    """root / relative, resolved; BadInputError when it leaves root (a manifest is untrusted input)."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise BadInputError(f"The bundle {root} names a file outside itself: {relative!r}")
    return target


def read_manifest(root: Path) -> Manifest:
    """The manifest of the bundle folder `root`: BadInputError when it is not a complete bundle,
    StoreTooNewError when a newer embedscope wrote it (format or store layout)."""
    path = root / MANIFEST
    if not root.is_dir() or not path.is_file():
        raise BadInputError(f"{root} is not an embedscope project bundle (no {MANIFEST}; an interrupted "
                            "export leaves a '.partial' folder: export again)")
    try:
        raw = json.loads(path.read_text())
        found, schema = int(raw["format_version"]), int(raw["store_schema"])
        if raw.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"format is {raw.get('format')!r}, not {BUNDLE_FORMAT!r}")
        manifest = Manifest(raw, root)
        if found <= FORMAT_VERSION:  # a newer format may be laid out otherwise: refused below instead
            _ = (manifest.project, manifest.spaces, manifest.documents, dict(raw["files"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInputError(f"The bundle manifest {path} is unreadable: {e}") from e
    if found > FORMAT_VERSION:
        raise StoreTooNewError(f"The bundle {root} has format version {found}, written by a newer embedscope; "
                               f"this one reads up to version {FORMAT_VERSION}. Upgrade embedscope to import it.")
    if schema != SCHEMA_VERSION:
        newer = schema > SCHEMA_VERSION
        raise (StoreTooNewError if newer else BadInputError)(
            f"The bundle {root} was exported from a store of layout version {schema}; this embedscope writes "
            f"version {SCHEMA_VERSION}. {'Upgrade embedscope' if newer else 'Migrate that store and export again'}.")
    return manifest


def verify(manifest: Manifest) -> None:
    """Check every file of the bundle (size, sha256) and each points file's rows and columns;
    BadInputError naming the first file that differs. Reads the whole bundle once."""
    for relative, expected in sorted(manifest.raw["files"].items()):
        path = manifest.path(relative)
        if not path.is_file():
            raise BadInputError(f"The bundle {manifest.root} is incomplete: {relative} is missing")
        if file_record(path) != expected:
            raise BadInputError(f"The bundle {manifest.root} is damaged: {relative} differs from its manifest "
                                "(size or sha256)")
    for space in manifest.spaces:
        if space.file not in manifest.raw["files"]:
            raise BadInputError(f"The bundle {manifest.root} lists no checksum for {space.file}")
        meta = pq.read_metadata(manifest.path(space.file))
        names = tuple(meta.schema.to_arrow_schema().names)
        if meta.num_rows != space.points or names != POINT_COLUMNS:
            raise BadInputError(f"The bundle's {space.file} holds {meta.num_rows} rows with columns {names}; "
                                f"the manifest says {space.points} rows with {POINT_COLUMNS}")
