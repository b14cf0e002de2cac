"""What "close" means in one embedding space: nearest-neighbour cosines of a sample, behind "no close match".

A cosine of 0.6 is a near-copy in one space and unrelated noise in another, so a fixed threshold
says nothing. The space itself does: for a bounded random sample of its points (SAMPLE, ~1k,
whatever the space's size) the store finds each one's nearest other point (VectorStore.neighbours:
its own index, batched), and the distribution of those cosines is what a typical nearest
neighbour looks like here. A search whose best hit is less similar than LEVEL (95 %) of the
sampled points are to their nearest neighbour has no close match. Computed once per space
revision and kept as a small JSON file per (project, space, filter) under cache_dir, like the
payload and vector caches: any write to the space moves the revision, and the next call
recalibrates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.filters import Filter
from core.store.base import VectorStore
from core.types import KEY

log = logging.getLogger(__name__)

SAMPLE = 1000  # query points of a calibration (the 5th percentile of 1k values is within ~1 point)
MIN_SAMPLE = 30  # fewer usable neighbour cosines: no verdict (a tiny space has no "typical")
LEVEL = 0.95  # no close match: the best hit is less similar than this share of items to their neighbour
# Points an unindexed (exact) search compares, all calibration queries together: a space whose
# index is still building gets fewer query points (never fewer than MIN_SAMPLE) instead of
# SAMPLE full scans (1k x 1M points would take minutes; 50 x 1M: seconds).
EXACT_BUDGET = 50_000_000
FORMAT = 1
_SUFFIX = ".calibration.json"  # only these files are ever trimmed
MAX_FILES = 256


@dataclass(frozen=True)
class Calibration:
    """Nearest-neighbour cosines of sampled points of a space. cosines: (m,) float32, ascending."""

    cosines: np.ndarray
    revision: str

    @property
    def usable(self) -> bool:
        """Enough neighbour cosines to say what is typical."""
        return len(self.cosines) >= MIN_SAMPLE

    def share_closer(self, cosine: float) -> float:
        """Share (0..1) of sampled points whose nearest neighbour is more similar than `cosine`."""
        if not len(self.cosines):
            return 0.0
        below_or_equal = int(np.searchsorted(self.cosines, np.float32(cosine), side="right"))
        return 1.0 - below_or_equal / len(self.cosines)

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1) of the nearest-neighbour cosines (NaN without any)."""
        return float(np.quantile(self.cosines, q)) if len(self.cosines) else float("nan")

    def no_close_match(self, best: float, level: float = LEVEL) -> bool:
        """True when `best` (the best hit's cosine) is less similar than `level` of the sampled
        points are to their nearest neighbour; False without a usable calibration."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        return self.usable and self.share_closer(best) >= level


def calibrate(
    store: VectorStore,
    project: str,
    space: str,
    ids: Sequence[str] | None = None,
    *,
    flt: Filter | None = None,
    sample: int = SAMPLE,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> Calibration:
    """The space's Calibration, from cache_dir when the space's revision is unchanged.

    ids: the points to draw the sample from (the dashboard has them already); None reads the ids
    of the points matching flt (a scroll of the whole space). flt also limits the neighbours.
    """
    if sample < MIN_SAMPLE:
        raise ValueError(f"sample must be >= {MIN_SAMPLE}, got {sample}")
    revision = store.revision(project, space)  # before reading: a write meanwhile shows next time
    path = _entry(cache_dir, project, space, flt, revision) if cache_dir is not None else None
    cached = _read(path, revision) if path is not None else None
    if cached is not None:
        return cached
    pool = list(ids) if ids is not None else list(store.payloads(project, space, flt, [KEY]).index)
    chosen = _draw(pool, _sample_size(store, project, space, sample), seed)
    cosines = np.empty(0, dtype=np.float32)
    if len(chosen) > 1:
        _, sims = store.neighbours(project, space, chosen, 1, flt=flt)
        first = sims[:, 0] if sims.size else np.empty(0, dtype=np.float32)
        cosines = np.sort(first[np.isfinite(first)]).astype(np.float32)
    log.info("calibrated %s/%s on %d points: median nearest-neighbour cosine %.3f", project, space,
             len(cosines), float(np.median(cosines)) if len(cosines) else float("nan"))
    result = Calibration(cosines, revision)
    if path is not None and store.revision(project, space) == revision:
        _write(path, result)
    return result


def _sample_size(store: VectorStore, project: str, space: str, sample: int) -> int:
    """sample, fewer where much of the space is unindexed (each query there is a full scan)."""
    indexed, total = store.index_status(project, space)
    exact = max(total - indexed, 1)
    return max(MIN_SAMPLE, min(sample, EXACT_BUDGET // exact))


def _draw(pool: Sequence[str], n: int, seed: int) -> list[str]:
    if len(pool) <= n:
        return list(pool)
    picks = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in np.sort(picks)]


# -- the cache: one small JSON file per (project, space, filter), named by the revision -----------
def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _entry(root: Path, project: str, space: str, flt: Filter | None, revision: str) -> Path:
    return Path(root).expanduser() / _digest(project, space, repr(flt)) / f"{_digest(revision)}{_SUFFIX}"


def _read(path: Path, revision: str) -> Calibration | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT or doc.get("revision") != revision:
            return None
        return Calibration(np.sort(np.asarray(doc["cosines"], dtype=np.float32)), revision)
    except (OSError, ValueError, KeyError, TypeError) as e:  # torn or foreign file: recalibrate
        log.warning("calibration cache %s unreadable (%s); recalibrating", path, e)
        return None


def _write(path: Path, calibration: Calibration) -> None:
    """Write atomically (a temp file renamed), then drop the selection's older revisions and trim."""
    doc = {"format": FORMAT, "revision": calibration.revision,
           "cosines": [round(float(c), 6) for c in calibration.cosines]}
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        temp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(temp, path)
    except OSError as e:  # a read-only or full disk: the calibration still serves this call
        temp.unlink(missing_ok=True)
        log.info("calibration not cached at %s: %s", path, e)
        return
    for other in path.parent.glob(f"*{_SUFFIX}"):
        if other != path:
            other.unlink(missing_ok=True)
    files = sorted(path.parent.parent.glob(f"*/*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[MAX_FILES:]:
        old.unlink(missing_ok=True)
