"""Deterministic point ids and readable item keys: any name a filesystem allows gets both."""

from __future__ import annotations

import hashlib
import uuid

# A fixed namespace, so ids are stable across machines, versions and stores.
_NAMESPACE = uuid.UUID("6f1d2c7e-5b1a-4c52-9a0e-3f5e8d2b7c41")
# os.fsdecode turns each byte that is not UTF-8 into one lone surrogate U+DC80..U+DCFF.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)
_SURROGATES = range(0xD800, 0xE000)


def _name_bytes(name: str) -> bytes:
    """The bytes hashed for a name: its UTF-8 form; a name that still carries the surrogates of
    undecodable file-name bytes hashes those original bytes, so hashing never raises."""
    try:
        return name.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates outside the escape range (e.g. from JSON "\ud800")
        return name.encode("utf-8", "surrogatepass")


def _uuid5(name: str) -> str:
    # uuid.uuid5 itself, over bytes: Python 3.11's uuid5 accepts only str and encodes it strictly.
    digest = hashlib.sha1(_NAMESPACE.bytes + _name_bytes(name), usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def point_id(project: str, dataset: str, key: str) -> str:
    """Return the uuid5 point id of one item; re-ingesting the same item overwrites it. Never raises."""
    return _uuid5(f"{project}/{dataset}/{key}")


def object_id(project: str, dataset: str, key: str, source: str, index: int) -> str:
    """Return the id of a detection object (source is 'label' or 'prediction')."""
    return _uuid5(f"{project}/{dataset}/{key}#{source}/{index}")


def readable_key(text: str) -> str:
    """`text` as valid UTF-8 for payloads, messages and CSV files (JSON cannot hold lone surrogates).

    Text that is valid already is returned unchanged (so keys of ordinary names stay stable).
    A file-name byte that was not UTF-8 (os.fsdecode gives U+DC80..U+DCFF) becomes %XX, e.g.
    b"caf\\xe9.jpg" -> "caf%E9.jpg"; any other lone surrogate becomes the %XX of its bytes. In an
    escaped name "%" itself becomes "%25", so two undecodable names never share a key
    (b"\\xe9%E9" -> "%E9%25E9", b"%E9\\xe9" -> "%25E9%E9").
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char == "%":
            out.append("%25")
        elif code in _ESCAPED_BYTES:
            out.append(f"%{code - 0xDC00:02X}")
        elif code in _SURROGATES:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append(char)
    return "".join(out)
