"""The persisted form of a 2-D map: a store document with ids, coordinates and the fitted-id set.

Never a pickled model (fitted UMAP objects break across numba / umap versions): only arrays.
Coordinates and masks are base64 of raw little-endian bytes, which keeps a 100k-point map at
about 5 MB of JSON (ids dominate); the document area chunks large documents itself.
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
from core.store.documents import FORMAT, Upgrade, load_versioned

MAP_KIND = "map"
# The map document's format (its FORMAT field; also part of map_key). Bump it when the layout
# code changes results and add MAP_UPGRADES[old] = lambda doc: None, so persisted maps are
# refitted; bump it with a real upgrade step when only the document's shape changes.
MAP_FORMAT = 1
MAP_UPGRADES: dict[int, Upgrade] = {}


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

    def subset(self, keep: np.ndarray) -> StoredMap:
        """The rows where keep (n,) bool is True."""
        ids = [i for i, k in zip(self.ids, keep, strict=True) if k]
        return dataclasses.replace(self, ids=ids, coords=self.coords[keep], fitted=self.fitted[keep])


def filter_json(flt: Filter | None) -> str | None:
    """A canonical text form of a filter (None for no filter), part of the map's identity."""
    if not flt:
        return None
    return json.dumps(dataclasses.asdict(flt), sort_keys=True, default=str)


def map_key(space: str, datasets: Sequence[str], method: str, params: dict[str, Any],
            flt: Filter | None) -> str:
    """Document key of the map of (space, datasets, method, params, filter): `<space>:<hash>`."""
    identity = json.dumps(
        {"format": MAP_FORMAT, "datasets": sorted(datasets), "method": method, "params": params,
         "filter": filter_json(flt)},
        sort_keys=True,
    )
    return f"{space}:{hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()}"


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


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
        "ids": list(stored.ids),
        "coords": _b64(stored.coords, "<f4"),
        "fitted": _b64(np.packbits(stored.fitted.astype(bool)), "u1"),
        "seconds": round(stored.seconds, 3),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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
    return StoredMap(list(doc["ids"]), coords, fitted, method, params, dict(doc.get("resolved", {})),
                     mean, comps, float(doc.get("seconds", 0.0)))
