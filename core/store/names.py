"""Validation of user-given names and their reversible encoding into folder / collection names.

Project, space and dataset names are typed by people ("Street cams 2024", "clip-vit-b-32"), so
they are checked once here (letters, digits, '-', '_', '.', space) and then encoded for places
with stricter rules: Qdrant collection names and shard folders. The encoding is reversible
without any lookup table: characters [A-Za-z0-9-] pass through, every other character becomes
`_xx` (UTF-8 bytes in hex). An encoded name never contains "__", which is the separator.
"""

from __future__ import annotations

import re

from core.errors import BadInputError

MAX_NAME_LENGTH = 100
_NAME = re.compile(r"^[\w\-. ]+$", re.UNICODE)
_PASS = re.compile(r"[A-Za-z0-9\-]")
SEPARATOR = "__"
COLLECTION_PREFIX = "es"


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is usable as a project / space / dataset name, else BadInputError.

    Allowed: letters, digits, '-', '_', '.', inner spaces; 1..100 characters; not '.' or '..'.
    """
    if not isinstance(name, str):
        raise BadInputError(f"The {what} must be text, got {type(name).__name__}")
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadInputError(f"The {what} {name!r} must have 1 to {MAX_NAME_LENGTH} characters")
    if name != name.strip() or not _NAME.match(name) or name in (".", ".."):
        raise BadInputError(
            f"The {what} {name!r} may contain only letters, digits, '-', '_', '.' and inner spaces"
        )
    return name


def encode(name: str) -> str:
    """Encode a validated name into [A-Za-z0-9_-] (reversible, see decode)."""
    out = []
    for char in name:
        if _PASS.match(char):
            out.append(char)
        else:
            out.extend(f"_{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def decode(encoded: str) -> str:
    """Invert encode(). Raises ValueError on text encode() cannot have produced."""
    raw = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == "_":
            raw.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(encoded[i].encode("ascii"))
            i += 1
    return raw.decode("utf-8")


def collection_name(project: str, space: str) -> str:
    """The Qdrant collection of one (project, space): es__<project>__<space>, encoded."""
    return SEPARATOR.join((COLLECTION_PREFIX, encode(project), encode(space)))


def parse_collection_name(name: str) -> tuple[str, str] | None:
    """(project, space) of a collection made by collection_name(), or None for other collections."""
    parts = name.split(SEPARATOR)
    if len(parts) != 3 or parts[0] != COLLECTION_PREFIX:
        return None
    try:
        return decode(parts[1]), decode(parts[2])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
