"""Which embedding space is best: the scorecard of a project's spaces on one shared sample, persisted per space.

evaluate_spaces() reads each space's vectors (core.pipeline.vector_cache.load_vectors) and labels
of the chosen datasets, scores a seeded sample of the labelled items (core.analysis.scorecard)
and keeps each space's row as a store document stamped with the space's revision, so the page
and the CLI reuse it until the space (or its persisted map) changes. The sample is chosen by a
seeded hash of the point ids: every space is scored on the same items wherever they exist in it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.analysis.scorecard import DEFAULT_K, MIN_LABELLED, best_space, score_space
from core.auth import Actor, Permission, require
from core.errors import NotEnoughDataError, NotFoundError
from core.pipeline.analysis_io import load_payload, resolve_datasets
from core.pipeline.freshness import REVISION_FIELD
from core.pipeline.map_doc import MAP_KIND, StoredMap, from_doc, map_key
from core.pipeline.maps import selection_filter
from core.pipeline.vector_cache import load_vectors
from core.projection.params import normalise_params
from core.store.base import VectorStore
from core.store.documents import FORMAT, read_document
from core.types import LABEL, Progress, SpaceInfo

log = logging.getLogger(__name__)

DOC_KIND = "scorecard"
SCORECARD_FORMAT = 1
DEFAULT_SAMPLE = 10_000
MAX_SAMPLE = 50_000  # the exact kNN graph and the probe stay under a minute on 2 cores
# The persisted map whose trustworthiness is reported: the first of these that exists (the
# Explore page's default first), over the same datasets and without a filter.
MAP_METHODS: tuple[str, ...] = ("umap", "tsne", "pca")
SCORE_COLUMNS: tuple[str, ...] = ("knn_accuracy", "probe_accuracy", "balanced_recall", "precision_at_k",
                                  "ari", "nmi", "trustworthiness")
COLUMNS: tuple[str, ...] = ("model", "dim", "items", "evaluated", "labelled", "classes", *SCORE_COLUMNS,
                            "clusters", "noise", "map", "note", "seconds")


@dataclass(frozen=True)
class Scorecard:
    """The scorecard of some spaces of a project on the same datasets and parameters.

    table: one row per space (index: space name), columns COLUMNS; recall: the linear probe's
    per-class recall, spaces x classes (NaN: the class is absent from that space's sample);
    best: the best space and best_by says by what (core.analysis.scorecard.best_space);
    missing: spaces with no up-to-date stored row (stored_scorecard only); params: sample, k, seed.
    """

    project: str
    datasets: list[str]
    params: dict[str, int]
    table: pd.DataFrame
    recall: pd.DataFrame
    best: str | None
    best_by: str
    missing: list[str] = field(default_factory=list)

    def best_line(self) -> str:
        """E.g. "Best space: pixels, by linear-probe accuracy 0.951 (kNN accuracy 0.972)"."""
        return f"Best space: {self.best}, by {self.best_by}" if self.best else f"No best space: {self.best_by}"

    def sample_line(self) -> str:
        """What the figures were computed on, in words."""
        p = self.params
        return (f"Scored on the labelled items of {', '.join(self.datasets)} (all items where a space "
                f"has fewer than {MIN_LABELLED} labels), at most {p['sample']:,} per space: a seeded "
                f"sample (seed {p['seed']}) when there are more; k = {p['k']} neighbours.")


def resolve_spaces(store: VectorStore, project: str, spaces: Sequence[str] | None) -> list[SpaceInfo]:
    """The requested spaces (in the order given), or all of the project; NotFoundError names the
    unknown project or spaces and what exists."""
    if project not in store.list_projects():
        raise NotFoundError(f"Project {project!r} not found; projects: {', '.join(store.list_projects()) or 'none'}")
    known = {s.name: s for s in store.list_spaces(project)}
    if not spaces:
        if not known:
            raise NotFoundError(f"Project {project!r} has no embedding space yet")
        return list(known.values())
    unknown = [s for s in spaces if s not in known]
    if unknown:
        raise NotFoundError(f"Space(s) {', '.join(map(repr, unknown))} not found in project {project!r}; "
                            f"it has: {', '.join(known) or 'none'}")
    return [known[s] for s in dict.fromkeys(spaces)]


def _params(sample: int, k: int, seed: int) -> dict[str, int]:
    if not 10 <= sample <= MAX_SAMPLE:
        raise ValueError(f"sample must be between 10 and {MAX_SAMPLE}, got {sample}")
    if not 1 <= k <= 100:
        raise ValueError(f"k must be between 1 and 100, got {k}")
    return {"sample": int(sample), "k": int(k), "seed": int(seed)}


def doc_key(space: str, datasets: Sequence[str], params: dict[str, int]) -> str:
    """`<space>:<hash(datasets, params)>` (the delete cascade reads the space from the key)."""
    identity = json.dumps({"datasets": sorted(datasets), **params}, sort_keys=True)
    return f"{space}:{hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()}"


def sample_rows(ids: np.ndarray, keep: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted rows of keep (n,) bool, at most `size`: those whose ids hash lowest under the seed,
    so every space picks the same items wherever they exist in it."""
    rows = np.flatnonzero(keep)
    if rows.size <= size:
        return rows
    salt = f"{seed}:".encode()
    keys = np.fromiter((int.from_bytes(hashlib.blake2b(salt + str(ids[r]).encode(), digest_size=8).digest(),
                                       "little") for r in rows), dtype=np.uint64, count=rows.size)
    return np.sort(rows[np.argsort(keys, kind="stable")[:size]])


def _map_doc_key(space: str, datasets: list[str], method: str) -> str:
    return map_key(space, datasets, method, normalise_params(method, None), None)


def _map_method(store: VectorStore, project: str, space: str, datasets: list[str]) -> str:
    """The method of the space's persisted map of the datasets (first of MAP_METHODS), or ""."""
    keys = set(store.list_documents(project, MAP_KIND))
    return next((m for m in MAP_METHODS if _map_doc_key(space, datasets, m) in keys), "")


def _map_of(store: VectorStore, project: str, space: str, datasets: list[str]) -> StoredMap | None:
    """That persisted map, or None."""
    method = _map_method(store, project, space, datasets)
    key = _map_doc_key(space, datasets, method) if method else ""
    doc = store.get_document(project, MAP_KIND, key) if method else None
    return from_doc(doc, method, normalise_params(method, None), key) if doc is not None else None


def _coords(stored: StoredMap | None, ids: np.ndarray) -> np.ndarray | None:
    """(n, 2) map positions of ids (NaN where the map lacks one), or None without a map."""
    if stored is None:
        return None
    row_of = {pid: i for i, pid in enumerate(stored.ids)}
    out = np.full((len(ids), 2), np.nan, dtype=np.float32)
    rows = np.array([row_of.get(str(pid), -1) for pid in ids], dtype=np.int64)
    out[rows >= 0] = stored.coords[rows[rows >= 0]]
    return out


def score_one(store: VectorStore, project: str, space: SpaceInfo, datasets: list[str], params: dict[str, int],
              *, cache_dir: Path | None = None, payload_cache: Path | None = None) -> dict[str, Any]:
    """The scorecard row of one space (a dict of COLUMNS plus "space" and "recall")."""
    start = time.perf_counter()
    revision = store.revision(project, space.name)
    block = load_vectors(store, project, space.name, selection_filter(datasets), cache_dir=cache_dir)
    if len(block) < 3:
        raise NotEnoughDataError(f"Space {space.name!r} of project {project!r} has {len(block)} item(s) in "
                                 f"{', '.join(datasets)}; a scorecard needs at least 3")
    payload = load_payload(store, project, space.name, datasets, cache_dir=payload_cache)
    labels = payload[LABEL].reindex(block.ids).to_numpy(dtype=object)
    labels = np.array([None if _blank(v) else str(v) for v in labels], dtype=object)
    has_label = labels != None  # noqa: E711 - elementwise on an object array
    rows = sample_rows(block.ids, has_label if has_label.sum() >= MIN_LABELLED else np.ones(len(block), bool),
                       params["sample"], params["seed"])
    stored_map = _map_of(store, project, space.name, datasets)
    scores = score_space(np.asarray(block.vectors[rows], dtype=np.float32), labels[rows],
                         coords=_coords(stored_map, block.ids[rows]), k=params["k"], seed=params["seed"])
    row = {"space": space.name, "model": space.model or "own vectors", "dim": space.dim, "items": len(block),
           "evaluated": int(rows.size), "map": stored_map.method if stored_map is not None else "",
           "seconds": round(time.perf_counter() - start, 2), REVISION_FIELD: revision}
    row.update({name: getattr(scores, name) for name in
                ("labelled", "classes", *SCORE_COLUMNS, "clusters", "noise", "note", "recall")})
    log.info("scorecard of %s/%s: %d of %d items in %.1f s", project, space.name, rows.size, len(block),
             row["seconds"])
    return row


def _blank(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) or value == ""


def evaluate_spaces(store: VectorStore, project: str, spaces: Sequence[str] | None = None,
                    datasets: Sequence[str] | None = None, *, actor: Actor, sample: int = DEFAULT_SAMPLE,
                    k: int = DEFAULT_K, seed: int = 0, force: bool = False, cache_dir: Path | None = None,
                    payload_cache: Path | None = None, progress: Progress | None = None) -> Scorecard:
    """The scorecard of `spaces` (None: every space of the project) on `datasets` (None: all).

    A space whose stored row is up to date (same revision, same map) is reused unless force.
    cache_dir / payload_cache: where vector blocks / payload frames are kept (settings.cache_dir
    / "vectors" and / "payloads"). progress(done, total) counts spaces. Raises NotFoundError
    (unknown project, space or dataset), NotEnoughDataError (a space with < 3 items),
    PermissionDeniedError unless actor may ANALYSE (viewers read stored_scorecard).
    """
    require(actor, Permission.ANALYSE, f"scoring the spaces of project {project!r}")
    params = _params(sample, k, seed)
    infos = resolve_spaces(store, project, spaces)
    names = resolve_datasets(store, project, datasets)
    rows = []
    for done, info in enumerate(infos):
        if progress is not None:
            progress(done, len(infos))
        key = doc_key(info.name, names, params)
        row, fresh = (None, False) if force else _stored_row(store, project, info.name, names, key)
        if row is None or not fresh:
            row = score_one(store, project, info, names, params, cache_dir=cache_dir, payload_cache=payload_cache)
            store.put_document(project, DOC_KIND, key, _to_doc(row, names, params))
        rows.append(row)
    if progress is not None:
        progress(len(infos), len(infos))
    return _scorecard(project, names, params, rows, [])


def stored_scorecard(store: VectorStore, project: str, spaces: Sequence[str] | None = None,
                     datasets: Sequence[str] | None = None, *, sample: int = DEFAULT_SAMPLE, k: int = DEFAULT_K,
                     seed: int = 0) -> Scorecard:
    """The persisted rows of spaces unchanged since (nothing computed). missing lists the spaces
    without one, and those whose map was fitted (or deleted) since: their row is kept, but its
    trustworthiness describes the old map."""
    params = _params(sample, k, seed)
    names = resolve_datasets(store, project, datasets)
    rows, missing = [], []
    for info in resolve_spaces(store, project, spaces):
        row, fresh = _stored_row(store, project, info.name, names, doc_key(info.name, names, params))
        if row is not None:
            rows.append(row)
        if not fresh:
            missing.append(info.name)
    return _scorecard(project, names, params, rows, missing)


def _to_doc(row: dict[str, Any], datasets: list[str], params: dict[str, int]) -> dict[str, Any]:
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    clean["recall"] = {c: (None if math.isnan(v) else v) for c, v in row["recall"].items()}
    return {**clean, FORMAT: SCORECARD_FORMAT, "datasets": datasets, "params": params}


def _stored_row(store: VectorStore, project: str, space: str, datasets: list[str],
                key: str) -> tuple[dict[str, Any] | None, bool]:
    """(the stored row, or None when absent or the space was written since; whether it is up to
    date: False too when the space's persisted map changed since, so its trustworthiness is stale)."""
    doc = read_document(store, project, DOC_KIND, key, SCORECARD_FORMAT)
    if doc is None or doc.get(REVISION_FIELD) != store.revision(project, space):
        return None, False
    row = {k: (math.nan if v is None and k in SCORE_COLUMNS + ("noise",) else v) for k, v in doc.items()}
    row["recall"] = {c: (math.nan if v is None else float(v)) for c, v in (doc.get("recall") or {}).items()}
    return row, doc.get("map", "") == _map_method(store, project, space, datasets)


def _natural(text: str) -> tuple[int, float, str]:
    return (0, float(text), text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else (1, 0.0, text)


def _scorecard(project: str, datasets: list[str], params: dict[str, int], rows: list[dict[str, Any]],
               missing: list[str]) -> Scorecard:
    table = pd.DataFrame([{c: r.get(c) for c in ("space", *COLUMNS)} for r in rows], columns=["space", *COLUMNS])
    table = table.set_index("space")
    for c in (*SCORE_COLUMNS, "noise"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype(float)
    with_labels = {r["space"]: r["recall"] for r in rows if r["recall"]}  # spaces without labels: no row
    recall = pd.DataFrame(with_labels).T if with_labels else pd.DataFrame()
    if not recall.empty:
        recall = recall[sorted(recall.columns, key=lambda c: _natural(str(c)))].astype(float)
    best, by = best_space(table)
    return Scorecard(project, datasets, params, table, recall, best, by, missing)
