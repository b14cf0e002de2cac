"""The persisted form of a 2-D map: a store document with ids, coordinates and the fitted-id set.

Never a pickled model (fitted UMAP objects break across numba / umap versions): only arrays.
Coordinates and masks are base64 of raw little-endian bytes; since format 2 the point ids are
too when they are all canonical uuid strings (every id core.ids makes): 16 bytes per id, so a
1M-point map is ~35 MB of JSON (was ~50 MB of quoted strings) and decodes with np.frombuffer.
Format 2 also records the space's store revision the map describes (REVISION_FIELD), so a
reopen with an unchanged revision needs no listing of the selection's ids.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.filters import Filter
from core.pipeline.freshness import REVISION_FIELD
from core.store.documents import FORMAT, Upgrade, load_versioned

MAP_KIND = "map"
# The map document's format (its FORMAT field). Bump it when the layout code changes results
# and add MAP_UPGRADES[old] = lambda doc: None, so persisted maps are refitted; bump it with a
# real upgrade step when only the document's shape changes (1 -> 2: ids as uuid bytes).
MAP_FORMAT = 2
# The format part of map_key: fixed, so an upgraded document is found under its old key.
_KEY_FORMAT = 1
_UUID_DASHES = (8, 13, 18, 23)
_IS_HEX = np.zeros(256, dtype=bool)  # lowercase hex digits only: the ids decode back identically
_IS_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = True


def _ids_to_format_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Format 1 kept ids as a JSON list of strings: re-encode them (coords are unchanged)."""
    ids = doc.pop("ids")
    return {**doc, **encode_ids(ids)}


MAP_UPGRADES: dict[int, Upgrade] = {1: _ids_to_format_2}


@dataclass
class StoredMap:
    """A map as persisted: ids (n,), coords (n, 2) float32, fitted (n,) bool (True: took part in
    the fit; False: placed afterwards), and for PCA maps the linear map (mean (d,), comps (2, d))."""

    ids: list[str]
    coords: np.ndarray
    fitted: np.ndarray
    method: str
    params: dict[str, Any]
    resolved: dict[str, Any]
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None
    seconds: float = 0.0
    revision: str | None = None  # the space's store revision these points were read at (None: unknown)
    params_hash: str | None = None  # core.projection.params_hash of (method, params, ids), when known

    def subset(self, keep: np.ndarray) -> StoredMap:
        """The rows where keep (n,) bool is True."""
        ids = [i for i, k in zip(self.ids, keep, strict=True) if k]
        return dataclasses.replace(self, ids=ids, coords=self.coords[keep], fitted=self.fitted[keep],
                                   params_hash=None)


def filter_json(flt: Filter | None) -> str | None:
    """A canonical text form of a filter (None for no filter), part of the map's identity."""
    if not flt:
        return None
    return json.dumps(dataclasses.asdict(flt), sort_keys=True, default=str)


def map_key(space: str, datasets: Sequence[str], method: str, params: dict[str, Any],
            flt: Filter | None) -> str:
    """Document key of the map of (space, datasets, method, params, filter): `<space>:<hash>`."""
    identity = json.dumps(
        {"format": _KEY_FORMAT, "datasets": sorted(datasets), "method": method, "params": params,
         "filter": filter_json(flt)},
        sort_keys=True,
    )
    return f"{space}:{hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()}"


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


def encode_ids(ids: Sequence[str]) -> dict[str, Any]:
    """{"id_uuids": base64 of 16 bytes per id} when every id is a canonical (lowercase, dashed)
    uuid string, else {"ids": the list} (ids from elsewhere, e.g. integers as text)."""
    n = len(ids)
    joined = "".join(ids)
    if n and joined.isascii() and len(joined) == 36 * n:
        chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(n, 36)
        hexes = np.delete(chars, _UUID_DASHES, axis=1)
        if (chars[:, _UUID_DASHES] == ord("-")).all() and _IS_HEX[hexes].all():
            raw = bytes.fromhex(hexes.tobytes().decode("ascii"))
            return {"id_uuids": base64.b64encode(raw).decode("ascii")}
    return {"ids": list(ids)}


def decode_ids(doc: dict[str, Any], n: int) -> list[str]:
    """The ids of a format-2 document (inverse of encode_ids), as canonical uuid strings."""
    if "id_uuids" not in doc:
        return [str(i) for i in doc["ids"]]
    hexes = np.frombuffer(base64.b64decode(doc["id_uuids"]).hex().encode("ascii"), dtype=np.uint8).reshape(n, 32)
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    chars[:, np.delete(np.arange(36), _UUID_DASHES)] = hexes
    text = chars.tobytes().decode("ascii")
    return [text[i:i + 36] for i in range(0, 36 * n, 36)]


def to_doc(stored: StoredMap, space: str, datasets: Sequence[str], flt: Filter | None) -> dict[str, Any]:
    """The JSON document of a map."""
    doc: dict[str, Any] = {
        FORMAT: MAP_FORMAT,
        "space": space,
        "datasets": sorted(datasets),
        "filter": filter_json(flt),
        "method": stored.method,
        "params": stored.params,
        "resolved": stored.resolved,
        "n": len(stored.ids),
        **encode_ids(stored.ids),
        "coords": _b64(stored.coords, "<f4"),
        "fitted": _b64(np.packbits(stored.fitted.astype(bool)), "u1"),
        "seconds": round(stored.seconds, 3),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        REVISION_FIELD: stored.revision,
        "params_hash": stored.params_hash,
    }
    if stored.pca_mean is not None and stored.pca_components is not None:
        doc["pca_mean"] = _b64(stored.pca_mean, "<f4")
        doc["pca_components"] = _b64(stored.pca_components, "<f4")
    return doc


def from_doc(doc: dict[str, Any], method: str, params: dict[str, Any], key: str | None = None) -> StoredMap | None:
    """The map in doc (read through the checked loader: StoreTooNewError for a newer format), or
    None when it is stale or was made by another method / params (refit). key: for messages."""
    loaded = load_versioned(MAP_KIND, key or f"{doc.get('space')}:?", doc, MAP_FORMAT, MAP_UPGRADES)
    if loaded is None or loaded.get("method") != method or loaded.get("params") != params:
        return None
    doc = loaded
    n = int(doc["n"])
    coords = _unb64(doc["coords"], "<f4").reshape(n, 2)
    fitted = np.unpackbits(_unb64(doc["fitted"], "u1"))[:n].astype(bool)
    mean = comps = None
    if "pca_mean" in doc:
        mean = _unb64(doc["pca_mean"], "<f4")
        comps = _unb64(doc["pca_components"], "<f4").reshape(2, -1)
    return StoredMap(decode_ids(doc, n), coords, fitted, method, params, dict(doc.get("resolved", {})),
                     mean, comps, float(doc.get("seconds", 0.0)), doc.get(REVISION_FIELD),
                     doc.get("params_hash"))
