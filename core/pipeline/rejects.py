"""The outcome of an ingest: counts, per-item rejects, status, and the rejects CSV file."""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.export import csv_row
from core.types import Reject

Status = Literal["ok", "partial", "failed"]


@dataclass
class IngestReport:
    """What one ingest did. total = stored + skipped + len(rejects) once it has finished.

    skipped: items already in the space (a resumed or repeated ingest does not embed them again).
    rejects_path: the CSV (key, uri, reason) of the rejects, None when there were none.
    timings: seconds spent waiting for decoded batches ("wait"), in the model ("embed"),
    writing to the store ("store") and overall ("total").
    """

    project: str
    dataset: str
    space: str
    total: int = 0
    stored: int = 0
    skipped: int = 0
    rejects: list[Reject] = field(default_factory=list)
    rejects_path: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """"ok": nothing rejected; "partial": some rejected; "failed": every item rejected."""
        if not self.rejects:
            return "ok"
        return "partial" if self.stored + self.skipped > 0 else "failed"

    def summary(self) -> str:
        """One line for people, e.g. "pets/train [clip]: 200 items, 198 stored, 0 already
        stored, 2 rejected (partial)"."""
        return (
            f"{self.project}/{self.dataset} [{self.space}]: {self.total} items, {self.stored} stored, "
            f"{self.skipped} already stored, {len(self.rejects)} rejected ({self.status})"
        )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"


def write_rejects(report: IngestReport, directory: Path) -> Path | None:
    """Write report.rejects as CSV (key, uri, reason) under directory, set report.rejects_path and
    return it; None (no file) when nothing was rejected. Cells are quoted as CSV requires, so a key
    with a newline or a comma reads back as one cell."""
    if not report.rejects:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    stem = "-".join(
        [time.strftime("%Y%m%dT%H%M%S"), _safe(report.project), _safe(report.dataset), _safe(report.space)]
    )
    path = directory / f"{stem}.csv"
    counter = 1
    while path.exists():  # two ingests in the same second
        path = directory / f"{stem}-{counter}.csv"
        counter += 1
    # Quoted cells keep newlines inside keys; backslashreplace: a stray lone surrogate in a reason
    # (readers make keys valid UTF-8, see core.ids.readable_key) must not lose the whole file.
    with path.open("w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "uri", "reason"])
        for reject in report.rejects:  # keys and uris are file names: guard formula-like cells
            writer.writerow(csv_row([reject.key, reject.uri or "", reject.reason]))
    report.rejects_path = path
    return path
