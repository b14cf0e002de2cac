"""What every CLI command shares: exit codes, store options, settings, messages, confirmation, progress."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import Settings, load_settings
from core.display import shorten
from core.store.base import VectorStore
from core.types import Progress

EXIT_OK = 0
EXIT_FAILURE = 1  # a CoreError: bad input, store unreachable, model not loadable...
EXIT_USAGE = 2  # wrong arguments (argparse uses 2 too)
EXIT_PARTIAL = 3  # done, but some items were rejected
# An ingest report's status (core.pipeline.rejects.IngestReport.status) as an exit code.
EXIT_BY_STATUS = {"ok": EXIT_OK, "partial": EXIT_PARTIAL, "failed": EXIT_FAILURE}

PROGRESS_MODES = ("auto", "bar", "lines", "none")


def add_store_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """--store / --qdrant-url / --log-level. On sub-commands (suppress=True) they default to
    "not given", so `embedscope --store X ingest` and `embedscope ingest --store X` both work."""
    default: Any = argparse.SUPPRESS if suppress else None
    options: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
        (("--store",), dict(metavar="PATH", help="embedded store folder, or ':memory:' "
                            "(default: EMBEDSCOPE_QDRANT_PATH or <data dir>/qdrant)")),
        (("--qdrant-url",), dict(metavar="URL", help="use a Qdrant server instead of the embedded "
                                 "store (API key from EMBEDSCOPE_QDRANT_API_KEY)")),
        (("--log-level",), dict(metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR (default: "
                                "EMBEDSCOPE_LOG_LEVEL or INFO)")),
    )
    for flags, kwargs in options:
        parser.add_argument(*flags, default=default, **kwargs)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment (and .env), with --store / --qdrant-url winning."""
    overrides: dict[str, Any] = {}
    if getattr(args, "store", None):
        overrides["qdrant_path"] = args.store
    if getattr(args, "qdrant_url", None):
        overrides["qdrant_url"] = args.qdrant_url
    return load_settings(**overrides)


def with_data_roots(settings: Settings, *folders: Path) -> Settings:
    """The settings with extra allowed data roots. The CLI user names folders explicitly on the
    command line (an image folder, a manifest's folder, --data-root), so those count as allowed
    roots for that run; the dashboard never does this (it serves only configured roots)."""
    roots = tuple(settings.data_roots) + tuple(Path(f).expanduser().resolve() for f in folders)
    return settings.model_copy(update={"data_roots": roots})


def table_lines(title: str, frame: pd.DataFrame, columns: Sequence[str],
                formats: dict[str, str] | None = None) -> list[str]:
    """["", "title:", table] for the columns of frame that exist (nothing when it is empty).
    Floats print with 3 decimals unless `formats` gives a column its own (e.g. ".3g" for
    p-values); missing values print as blanks; long or multi-line text is shortened for display
    (core.display.shorten: a 100 kB label stays whole in the store, not on the terminal)."""
    if frame.empty:
        return []
    shown = frame[[c for c in columns if c in frame.columns]].copy()
    for c in shown.columns:
        spec = (formats or {}).get(c, ".3f")
        if pd.api.types.is_float_dtype(shown[c].dtype):
            shown[c] = shown[c].map(lambda v, spec=spec: "" if pd.isna(v) else format(v, spec))
        else:
            shown[c] = shown[c].map(lambda v: "" if _missing(v) else shorten(v))
    return ["", f"{title}:", shown.to_string(index=False)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def error(message: str) -> int:
    """Print `error: <message>` on stderr; return EXIT_FAILURE."""
    sys.stderr.write(f"error: {message.strip()}\n")
    return EXIT_FAILURE


def usage_error(command: str, message: str) -> int:
    """Print a usage problem the way argparse does; return EXIT_USAGE."""
    sys.stderr.write(f"embedscope {command}: error: {message}\n")
    return EXIT_USAGE


@contextmanager
def opened_store(settings: Settings) -> Iterator[VectorStore]:
    """The store the settings point at, closed afterwards (releases the embedded store's lock)."""
    from core.store import open_store

    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def confirm(question: str) -> bool | None:
    """Ask on stderr, read one line from stdin: True for y/yes, False for anything else, None when
    stdin is closed or empty (no one to ask: the caller must refuse and suggest --yes)."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        sys.stderr.write("\n")
        return None
    return line.strip().lower() in ("y", "yes")


@contextmanager
def progress_display(mode: str, label: str) -> Iterator[Progress]:
    """A progress(done, total) callback for the terminal: "bar" (tqdm on stderr), "lines" (one
    `label: done/total` line per call, for logs and scripts), "none", or "auto" (a bar on a
    terminal, else a line at most every 5 s and at the end)."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode must be one of {PROGRESS_MODES}, got {mode!r}")
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "throttled"
    if mode == "bar":
        with _bar(label) as callback:
            yield callback
        return
    last = [0.0]

    def line(done: int, total: int) -> None:
        now = time.monotonic()
        if mode == "lines" or (mode == "throttled" and (now - last[0] >= 5.0 or done >= total)):
            last[0] = now
            sys.stderr.write(f"{label}: {done}/{total}\n")
            sys.stderr.flush()

    yield (lambda done, total: None) if mode == "none" else line


@contextmanager
def _bar(label: str) -> Iterator[Progress]:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with tqdm(desc=label, unit="item", file=sys.stderr, dynamic_ncols=True) as bar, logging_redirect_tqdm():
        def update(done: int, total: int) -> None:
            if bar.total != total:
                bar.reset(total=total)
            bar.update(done - bar.n)

        yield update
