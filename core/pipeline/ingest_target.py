"""What every ingest shares: the space it writes to (created at its first write), screening the
input, progress, and the rejects report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.config import Settings
from core.curation.carry import carry_curation
from core.errors import CoreError
from core.ids import readable_key
from core.pipeline.rejects import IngestReport, write_rejects
from core.store.base import VectorStore
from core.types import Item, Progress, Reject, SpaceInfo

log = logging.getLogger(__name__)

_EXISTING_CHUNK = 4096  # ids per existing_ids call


def rejects_folder(settings: Settings) -> Path:
    """Where rejects CSVs go: <data_dir>/rejects."""
    return settings.data_dir / "rejects"


def screen(items: Sequence[Item], seen: set[str] | None = None) -> tuple[list[int], list[Reject]]:
    """(positions of the items to ingest, rejects): a key seen before in the same input (the first
    one wins) and text fields that no JSON payload can hold are rejected by name, never raised.
    seen: the keys of the input's earlier blocks (updated), when it is screened block by block."""
    seen = set() if seen is None else seen
    kept: list[int] = []
    rejects: list[Reject] = []
    for position, item in enumerate(items):
        fields = {"key": item.key, "uri": item.uri, "text": item.text, "label": item.label,
                  "prediction": item.prediction, "split": item.split}
        bad = [name for name, value in fields.items() if value is not None and readable_key(value) != value]
        if bad:
            shown = Item(readable_key(item.key), readable_key(item.uri) if item.uri else None)
            rejects.append(Reject(shown, f"{', '.join(bad)} not valid Unicode (lone surrogates)"))
        elif item.key in seen:
            rejects.append(Reject(item, f"duplicate key {item.key!r}: another item of this input has "
                                        "it (keys must be unique within a dataset)"))
        else:
            seen.add(item.key)
            kept.append(position)
    return kept, rejects


class Target:
    """The space an ingest writes to, created at its first write: a run that stores nothing (every
    item rejected, or failed before its first batch) leaves no empty space behind, and a space
    that existed before the run is never dropped."""

    def __init__(self, store: VectorStore, project: str, info: SpaceInfo) -> None:
        self.store, self.project, self.info = store, project, info
        self.existed = info.name in {s.name for s in store.list_spaces(project)}
        if self.existed:
            self.info = store.ensure_space(project, info)  # checks the size of the space that is there
        self.created = False

    def stored(self, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` already stored in the space (none when the space is new)."""
        found: set[str] = set()
        for start in range(0, len(ids) if self.existed else 0, _EXISTING_CHUNK):
            found |= self.store.existing_ids(self.project, self.info.name, ids[start:start + _EXISTING_CHUNK])
        return found

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        if not (self.existed or self.created):
            self.info = self.store.ensure_space(self.project, self.info)
            self.created = True
        # Labels / tags fixed since the manifest was written follow the item into this space.
        payloads = carry_curation(self.store, self.project, self.info.name, ids, payloads)
        self.store.upsert(self.project, self.info.name, ids, vectors, payloads)

    def drop_if_empty(self) -> None:
        """Drop the space this run created when it holds nothing (its first write failed)."""
        if not self.created:
            return
        try:
            if self.store.count(self.project, self.info.name) == 0:
                self.store.delete_space(self.project, self.info.name)
                log.info("dropped the empty space %s/%s this run created", self.project, self.info.name)
        except CoreError as e:  # the store failed: the error that brought us here matters more
            log.warning("could not drop the empty space %s/%s: %s", self.project, self.info.name, e)


def report_progress(progress: Progress | None, report: IngestReport, done: int) -> None:
    """Report progress: `done` items stored or skipped, plus the report's rejects, of its total."""
    log.debug("%s/%s: %d done, %d rejected of %d", report.project, report.dataset, done,
              len(report.rejects), report.total)
    if progress is not None:
        progress(done + len(report.rejects), report.total)


def finish_reports(reports: list[IngestReport], rejects_dir: Path) -> list[IngestReport]:
    """Write the shared rejects CSV once (named after the first space) and log each report."""
    path = write_rejects(reports[0], rejects_dir)
    for report in reports:
        report.rejects_path = path
        log.info("%s%s", report.summary(), f"; rejects in {path}" if path else "")
    if reports[0].timings:
        log.info("timings (s): %s", ", ".join(f"{k} {v:.2f}" for k, v in reports[0].timings.items()))
    return reports
